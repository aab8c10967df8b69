"""Scratch PostgreSQL schemas for tests and benches: each run gets tables no one else sees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from compliance.store import db


@contextmanager
def postgres_schema(base_url: str, prefix: str = "test") -> Iterator[str]:
    """A fresh schema, first on the search_path of every connection to the URL given back, dropped
    with everything in it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(db.database_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = db.database_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
