"""Alembic environment. The database URL comes, first found, from: a connection handed over by
``compliance.store.db.upgrade``; ``alembic -x url=...``; ``COMPLIANCE_DATABASE_URL`` through
``compliance.settings.Settings``."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.engine import URL, Connection

from compliance.settings import Settings
from compliance.store.db import database_url, make_engine
from compliance.store.models import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def _url() -> URL:
    given = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    return database_url(given or Settings().database_url)


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations spell the column type out, so they never import the models they migrate.
    if type_ == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        **kwargs,
    )


def run_migrations_offline() -> None:
    url = _url()
    _configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    # SQLite can't ALTER most things; batch mode rebuilds the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(_url(), sqlite_foreign_keys=False)
    try:
        with engine.connect() as connection:
            _run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
