"""Engines, sessions and migrations.

The schema is Alembic's (``migrations/``): ``upgrade(url)`` brings a database to head and is what
the CLI and the embedded API call on start; in production it is a step of its own (``compliance db
upgrade``) and every API host, worker and sweeper only checks, with ``require_head``, that the
database is at the revision its code expects. ``Base.metadata.create_all`` is not used outside tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

# Installed next to the package (pyproject packages "migrations*") and in a checkout alike.
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same for every process migrating one database.
_MIGRATION_LOCK_KEY = 0x636F6D70


def database_url(url: str | URL) -> URL:
    """Parse ``url``; a bare ``postgresql://`` gets psycopg 3, the driver this project ships."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True) -> Engine:
    """An engine set up for this store.

    SQLite: foreign keys enforced, WAL (readers never block the writer), a busy timeout, and
    ``BEGIN IMMEDIATE`` so that read-then-write transactions queue for the write lock instead of
    failing on a stale snapshot. A read-only caller may pass the execution option
    ``sqlite_begin="DEFERRED"`` (see ``session_factory(read_only=True)``).
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, echo=echo)
        _configure_sqlite(engine, foreign_keys=sqlite_foreign_keys)
        return engine
    engine = sa.create_engine(parsed, echo=echo)
    _ping_when_idle(engine)
    return engine


# A pooled connection back in use within this many seconds is not pinged on checkout. A server that
# restarted since fails it anyway; the pool then drops every connection it holds (SQLAlchemy
# invalidates the whole pool on a disconnect), so at most one request per process sees the error,
# as with pool_pre_ping it would be one in flight at the restart.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping`` for connections that sat idle: a busy process (an API under load checks a
    connection out several times per request) no longer pays a round trip per checkout."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is not None and time.monotonic() - checked_in_at < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError("the pooled connection was dead")


def _configure_sqlite(engine: Engine, *, foreign_keys: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling starts transactions late and breaks SAVEPOINT;
        # turn it off and let the "begin" hook below emit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            # FULL, not WAL's usual NORMAL: an accepted submission must survive a power cut.
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


def session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit. Repository functions flush but never
    commit: wrap a unit of work in ``with factory() as s, s.begin(): ...``."""
    bind = engine.execution_options(sqlite_begin="DEFERRED") if read_only else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic's config without alembic.ini, so an installed package can migrate too."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.attributes["url"] = database_url(url)
    return cfg


def _run_alembic(url: str | URL, action: str, revision: str) -> None:
    # Foreign keys off on SQLite while migrating: batch mode rebuilds tables by copy and drop.
    engine = make_engine(url, sqlite_foreign_keys=False)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Several processes may start at once; one migrates, the others then find head.
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            getattr(command, action)(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (head by default); a no-op when it is there."""
    _run_alembic(url, "upgrade", revision)


def downgrade(url: str | URL, revision: str = "base") -> None:
    _run_alembic(url, "downgrade", revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaMismatch(RuntimeError):
    """The database is not at the revision this code expects: a host must not start on it."""


def require_head(url: str | URL) -> None:
    """Raise ``SchemaMismatch`` (one line, saying what to run) unless the database at ``url`` is at
    this code's head revision. Old code on a newer schema, or new code before the migration step,
    would read and write columns that are not there."""
    engine = make_engine(url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    if current != head:
        at = f"at revision {current}" if current else "not migrated"
        raise SchemaMismatch(
            f"the database is {at} but this code expects {head}: "
            "run `compliance db upgrade` (the migrations step) with the code that expects it, then start again"
        )


def prepare_schema(url: str | URL, *, migrate: bool) -> None:
    """What a host does with the schema on start: migrate it when ``migrate`` (the embedded
    default, ``COMPLIANCE_MIGRATE_ON_START``), then refuse to go on unless it is at head."""
    if migrate:
        try:
            upgrade(url)
        except CommandError as exc:  # a revision this code does not know: a newer version migrated it
            raise SchemaMismatch(
                f"the database is at a revision this code does not know ({exc}): "
                "start the version that migrated it, or `compliance db upgrade` with this one's migrations"
            ) from None
    require_head(url)


def database_now(session: Session | sa.Connection) -> datetime:
    """The database's clock, aware UTC. Rows are compared with it, never with this host's clock:
    another host wrote them, and hosts' clocks drift apart."""
    from compliance.store.models import database_clock

    return session.execute(sa.select(database_clock())).scalar_one()


@contextmanager
def alone(engine: Engine, key: int) -> Iterator[bool]:
    """Whether this process is the only one doing the work ``key`` names, across hosts: a
    PostgreSQL session advisory lock, held for the block (True) or held by another (False). SQLite
    has one host and no such lock: always True."""
    with engine.connect() as connection:
        if connection.dialect.name != "postgresql":
            yield True
            return
        got = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        try:
            yield got
        finally:
            if got:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                connection.commit()
