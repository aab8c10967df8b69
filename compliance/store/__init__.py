"""Storage: the database is the source of truth.

- ``db``: engines, sessions, Alembic upgrade to head.
- ``models``: the ORM.
- ``blobs``: content-addressed photo files.
- ``registry``: carriers, vehicles, drivers.
- ``submissions``: creating submissions and moving their status; one submission read back.
- ``verdicts``: judgments, verdict history, reviewers' decisions and plate reviews.
- ``pages``: submissions by filter: keyset pages, counts, offset lists.
- ``similar``: near-duplicate photo search over the hash bands.
- ``audit``: the append-only audit trail.
- ``errors``: the domain errors (lookups are ``LookupError``, bad input ``ValueError``).
"""
