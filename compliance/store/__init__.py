"""Storage: the database is the source of truth.

- ``db``: engines, sessions, Alembic upgrade to head.
- ``models``: the ORM.
- ``blobs``: the photo store: content-addressed photos in a folder or an S3-compatible bucket.
- ``references``: which photo hashes the database refers to (what the orphan sweep keeps).
- ``registry``: carriers, vehicles, drivers.
- ``submissions``: creating submissions and moving their status; one submission read back.
- ``verdicts``: judgments, verdict history, reviewers' decisions and plate reviews.
- ``pages``: submissions by filter: keyset pages, counts, offset lists.
- ``similar``: near-duplicate photo search over the hash bands.
- ``audit``: the append-only audit trail.
- ``errors``: the domain errors (lookups are ``LookupError``, bad input ``ValueError``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from compliance.settings import Settings
from compliance.store.blobs import PhotoStore, open_photo_store
from compliance.store.db import make_engine, session_factory, upgrade


@dataclass(frozen=True)
class Store:
    """The database (source of truth) and the photos: what every use case reads and writes."""

    engine: Engine
    sessions: sessionmaker[Session]
    blobs: PhotoStore

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Store:
        if migrate:
            upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        return cls(engine=engine, sessions=session_factory(engine), blobs=open_photo_store(settings))
