"""Storage: the database is the source of truth.

- ``db``: engines, sessions, Alembic upgrade to head.
- ``models``: the ORM.
- ``blobs``: content-addressed photo files.
- ``registry``: carriers, vehicles, drivers.
- ``submissions``: submissions, judgments, verdict history, near-duplicate search.
- ``audit``: the append-only audit trail.
- ``errors``: the domain errors (lookups are ``LookupError``, bad input ``ValueError``).
"""
