"""What the service does around judging, shared by the API, the workers and the CLI: verdicts
announced to webhooks, batch audits run chunk by chunk."""
