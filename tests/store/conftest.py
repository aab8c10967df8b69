"""Store fixtures on top of ``database_url`` (tests/conftest.py): every store test runs against a
SQLite file and a PostgreSQL schema of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from compliance.store import db, registry
from tests.store.samples import Fleet


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
