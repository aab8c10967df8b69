"""The use cases: one function per thing a person or a system does, called by every entry point
(the API, the dashboard, the CLI, the workers) so that each rule lives once.

- ``intake``: accept an upload (the job window, the pipeline asked for, idempotency; queued, or
  left RECEIVED for the sweeper when the broker is down).
- ``reviews``: record a person's verdict, and announce it.
- ``audits``: start a batch audit, advance it chunk by chunk; the diff is the store's.
- ``verdicts``: judge a stored submission, decide, keep, announce to the carrier's webhooks; and
  judge queued work (the attempts rule).
- ``registry``: carriers, drivers with their licence photos, vehicles.
- ``webhooks``: a verdict's signed body and one delivery attempt (webhook delivery lives here).
- ``sweeper``: publish again what the broker lost.
- ``transient``: the errors that mean "try again later".
"""
