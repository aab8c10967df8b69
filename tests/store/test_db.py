"""Engines: SQLite is set up for safety (foreign keys, WAL, queued writers); URLs get psycopg 3."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from compliance.store import db
from compliance.store.models import Vehicle, utcnow
from tests.conftest import POSTGRES_URL, postgres_unavailable
from tests.databases import postgres_schema


@pytest.fixture()
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    yield engine
    engine.dispose()


def test_a_bare_postgresql_url_gets_psycopg_3() -> None:
    assert db.database_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.database_url("postgres://u@h/d").drivername == "postgresql+psycopg"
    assert db.database_url("sqlite:///x.db").drivername == "sqlite"


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(sa.insert(Vehicle).values(carrier_id=404, registered_plate="京A12345", created_at=utcnow()))


def test_sqlite_uses_wal_and_a_busy_timeout(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS


def test_sqlite_readers_do_not_wait_for_a_writer(sqlite_engine: Engine) -> None:
    writer = db.session_factory(sqlite_engine)()
    writer.connection()  # BEGIN IMMEDIATE: holds the write lock
    try:
        with db.session_factory(sqlite_engine, read_only=True)() as reader:
            assert reader.execute(sa.text("SELECT count(*) FROM carriers")).scalar() == 0
    finally:
        writer.close()


@pytest.mark.postgres
def test_a_connection_killed_while_idle_is_replaced_on_checkout() -> None:
    """Busy connections skip the checkout ping; one idle past PING_AFTER_IDLE_S is pinged, and a
    dead one replaced before anyone uses it (PostgreSQL: a server that can drop a connection)."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_schema(POSTGRES_URL, "store_test") as database_url:
        _killed_while_idle_is_replaced(database_url)


def _killed_while_idle_is_replaced(database_url: str) -> None:
    engine = db.make_engine(database_url)
    admin = sa.create_engine(db.database_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            pid = c.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        with engine.connect() as c:  # back within the idle time: the same connection, not pinged
            assert c.execute(sa.text("SELECT pg_backend_pid()")).scalar() == pid
        with admin.connect() as a:
            a.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        time.sleep(db.PING_AFTER_IDLE_S + 0.1)
        with engine.connect() as c:
            assert c.execute(sa.text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        admin.dispose()
