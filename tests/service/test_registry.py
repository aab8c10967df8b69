"""Registering drivers and vehicles (``compliance.service.registry``), on SQLite and PostgreSQL: a
licence photo is kept only with the row that points at it, so whatever is refused leaves no file
behind, and a photo that cannot be written leaves no row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from compliance.photos import Photo, read_photo_file
from compliance.service import registry as registering
from compliance.settings import Settings
from compliance.store import Store, audit
from compliance.store.errors import (
    DuplicateDriver,
    DuplicatePlate,
    InvalidRegistration,
    UnknownCarrier,
    UnknownDriver,
)
from compliance.store.models import Driver, Vehicle
from tests.service.conftest import SAMPLES, Carrier, add_carrier


def photo(name: str) -> Photo:
    return read_photo_file(SAMPLES / name, max_bytes=20_000_000, max_pixels=50_000_000)


@pytest.fixture()
def fleet(database_url: str, tmp_path: Path) -> Iterator[tuple[Store, Carrier, Carrier]]:
    store = Store.open(Settings(database_url=database_url, blob_dir=tmp_path / "blobs"))
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    other = add_carrier(store, "OTHER", "B-1", "licence_a.jpg", "皖A195K9")
    yield store, acme, other
    store.engine.dispose()


def blobs(store: Store) -> set[Path]:
    return {p for p in Path(store.blobs.root).rglob("*") if p.is_file()}


def count(store: Store, model: type) -> int:
    with store.sessions() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def test_a_driver_is_kept_with_the_licence_photo_and_its_audit_event(fleet) -> None:  # type: ignore[no-untyped-def]
    store, acme, _ = fleet
    licence = photo("licence_b.jpg")
    driver = registering.add_driver(store, "ACME", name="Li Wei", ref="D-9", licence=licence, actor="tests")
    assert (driver.carrier_id, driver.external_ref, driver.licence_sha256) == (acme.id, "D-9", licence.sha256)
    assert store.blobs.exists(licence.sha256)
    with store.sessions() as s:
        assert [e.action for e in audit.list_events(s, subject_type="driver", subject_id=driver.id)] == ["driver.add"]
    without = registering.add_driver(store, acme.id, name="No Photo", licence=None, actor="tests")
    assert without.licence_sha256 is None and without.external_ref is None


def test_a_duplicate_ref_leaves_no_new_file_in_the_blob_folder(fleet) -> None:  # type: ignore[no-untyped-def]
    store, acme, _ = fleet
    before, drivers = blobs(store), count(store, Driver)
    unseen = photo("licence_b.jpg")  # no blob holds these bytes yet
    assert not store.blobs.exists(unseen.sha256)
    with pytest.raises(DuplicateDriver, match="A-1"):
        registering.add_driver(store, "ACME", name="Again", ref=acme.driver_ref, licence=unseen, actor="tests")
    with pytest.raises(UnknownCarrier):
        registering.add_driver(store, "NOPE", name="Nobody", ref="N-1", licence=unseen, actor="tests")
    assert blobs(store) == before and count(store, Driver) == drivers


def test_a_photo_that_cannot_be_written_leaves_no_driver(fleet, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    store, acme, _ = fleet
    drivers = count(store, Driver)

    def full(data: bytes) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.blobs, "put", full)
    with pytest.raises(OSError, match="No space"):
        registering.add_driver(store, acme.id, name="Li Wei", ref="D-9", licence=photo("licence_b.jpg"), actor="tests")
    with pytest.raises(OSError, match="No space"):
        registering.replace_licence(store, acme.id, acme.driver_id, photo("licence_b.jpg"), actor="tests", reason="x")
    assert count(store, Driver) == drivers
    with store.sessions() as s:
        assert s.get(Driver, acme.driver_id).licence_sha256 != photo("licence_b.jpg").sha256  # type: ignore[union-attr]


def test_a_licence_is_replaced_only_for_the_carriers_own_driver(fleet) -> None:  # type: ignore[no-untyped-def]
    store, acme, other = fleet
    before = blobs(store)
    unseen = photo("licence_b.jpg")
    with pytest.raises(UnknownDriver):
        registering.replace_licence(store, acme.id, other.driver_id, unseen, actor="tests", reason="theirs")
    with pytest.raises(UnknownDriver):
        registering.replace_licence(store, acme.id, 999_999, unseen, actor="tests", reason="nobody")
    assert blobs(store) == before
    with store.sessions() as s:
        assert s.get(Driver, other.driver_id).licence_sha256 != unseen.sha256  # type: ignore[union-attr]

    driver = registering.replace_licence(store, acme.id, acme.driver_id, unseen, actor="tests", reason="renewed")
    assert driver.licence_sha256 == unseen.sha256 and driver.embedding_model is None
    assert store.blobs.exists(unseen.sha256)
    with store.sessions() as s:
        events = audit.list_events(s, subject_type="driver", subject_id=acme.driver_id)
        assert [(e.action, e.reason) for e in events][-1] == ("driver.licence", "renewed")


def test_vehicles_by_plate_however_written(fleet) -> None:  # type: ignore[no-untyped-def]
    store, acme, other = fleet
    vehicle = registering.add_vehicle(store, "ACME", plate="京A·12345", color="yellow", kind="truck", actor="tests")
    assert (vehicle.carrier_id, vehicle.registered_plate, vehicle.plate_color, vehicle.kind) == (
        acme.id,
        "京A12345",
        "yellow",
        "truck",
    )
    vehicles = count(store, Vehicle)
    with pytest.raises(DuplicatePlate):
        registering.add_vehicle(store, acme.id, plate="京A12345", actor="tests")
    assert count(store, Vehicle) == vehicles
    assert registering.add_vehicle(store, other.id, plate="京A12345", actor="tests").carrier_id == other.id


def test_control_characters_in_names_refs_and_plates_are_refused(fleet) -> None:  # type: ignore[no-untyped-def]
    store, _, _ = fleet
    before, drivers, vehicles = blobs(store), count(store, Driver), count(store, Vehicle)
    unseen = photo("licence_b.jpg")
    with pytest.raises(InvalidRegistration, match="name holds a control character"):
        registering.add_driver(store, "ACME", name="Li\x1b[2JWei", ref="D-9", licence=unseen, actor="tests")
    with pytest.raises(InvalidRegistration, match="ref holds a control character"):
        registering.add_driver(store, "ACME", name="Li Wei", ref="D\x009", licence=unseen, actor="tests")
    with pytest.raises(InvalidRegistration, match="plate holds a control character"):
        registering.add_vehicle(store, "ACME", plate="皖A\x07UJ299", actor="tests")
    assert (blobs(store), count(store, Driver), count(store, Vehicle)) == (before, drivers, vehicles)
