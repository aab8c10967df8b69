"""The two databases every store test runs against: a SQLite file and a PostgreSQL schema of its
own (PostgreSQL at COMPLIANCE_TEST_POSTGRES_URL; its tests skip, saying why, when it is down)."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from compliance.store import db, registry
from tests.store.samples import Fleet

POSTGRES_URL = os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL can't be used, or None when it can."""
    try:
        engine = sa.create_engine(db.database_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means skip, saying why
        return f"PostgreSQL not reachable at {POSTGRES_URL} (set COMPLIANCE_TEST_POSTGRES_URL): {exc}"
    return None


@functools.cache
def _postgres_admin() -> Engine:
    return sa.create_engine(db.database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema first on the
    search_path, dropped afterwards, so tests never see each other's tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    schema = f"store_test_{uuid.uuid4().hex[:12]}"
    admin = _postgres_admin()
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = db.database_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture()
def engine(database_url: str) -> Iterator[Engine]:
    """A database migrated to head, as the CLI leaves it."""
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    with db.session_factory(engine)() as session:
        yield session


@pytest.fixture()
def fleet(session: Session) -> Fleet:
    carrier = registry.add_carrier(session, code="acme", name="ACME Haulage")
    driver = registry.add_driver(session, carrier_id=carrier.id, name="Li Wei", external_ref="D-1")
    other = registry.add_driver(session, carrier_id=carrier.id, name="Wang Fang", external_ref="D-2")
    vehicle = registry.add_vehicle(session, carrier_id=carrier.id, registered_plate="京A·12345", plate_color="blue")
    session.commit()
    return Fleet(carrier.id, driver.id, other.id, vehicle.id)
