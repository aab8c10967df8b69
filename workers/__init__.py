"""Celery app and tasks (the service issue): thin wrappers over compliance's pipelines, checks and store."""
