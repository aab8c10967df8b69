"""Carriers, vehicles and drivers: lookups, uniqueness per carrier, thresholds, cached embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from compliance.settings import Thresholds
from compliance.store import audit, registry
from compliance.store.errors import (
    DuplicateCarrier,
    DuplicateDriver,
    DuplicatePlate,
    InvalidPlate,
    InvalidThresholds,
    RegistryError,
    UnknownCarrier,
    UnknownDriver,
    UnknownVehicle,
)
from tests.store.samples import Fleet


def test_carrier_by_code_and_by_id(session: Session) -> None:
    carrier = registry.add_carrier(session, code="acme", name="ACME Haulage")
    session.commit()
    assert registry.get_carrier(session, "acme").id == carrier.id
    assert registry.get_carrier(session, carrier.id).code == "acme"
    assert [c.code for c in registry.list_carriers(session)] == ["acme"]
    assert carrier.created_at.utcoffset() is not None


def test_unknown_and_duplicate_carriers(session: Session) -> None:
    registry.add_carrier(session, code="acme", name="ACME")
    with pytest.raises(DuplicateCarrier):
        registry.add_carrier(session, code="acme", name="Another ACME")
    with pytest.raises(UnknownCarrier) as caught:
        registry.get_carrier(session, "nobody")
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, RegistryError)
    assert "nobody" in str(caught.value)
    with pytest.raises(UnknownCarrier):
        registry.add_vehicle(session, carrier_id=999, registered_plate="京A12345")


def test_plates_are_normalised_and_unique_per_carrier(session: Session, fleet: Fleet) -> None:
    vehicle = registry.get_vehicle(session, fleet.vehicle_id)
    assert vehicle.registered_plate == "京A12345"
    # The same plate written another way is the same plate.
    with pytest.raises(DuplicatePlate) as caught:
        registry.add_vehicle(session, carrier_id=fleet.carrier_id, registered_plate="京ａ 12345")
    assert isinstance(caught.value, ValueError)
    assert registry.find_vehicle(session, fleet.carrier_id, "京a·12345") is not None
    # Another carrier may register it.
    other = registry.add_carrier(session, code="other", name="Other")
    registry.add_vehicle(session, carrier_id=other.id, registered_plate="京A12345", kind="truck")
    session.commit()
    assert registry.registered_plates(session, fleet.carrier_id) == ["京A12345"]
    assert registry.registered_plates(session, other.id) == ["京A12345"]


def test_bad_plates_and_kinds_are_refused(session: Session, fleet: Fleet) -> None:
    with pytest.raises(InvalidPlate):
        registry.add_vehicle(session, carrier_id=fleet.carrier_id, registered_plate=" · ")
    with pytest.raises(ValueError):
        registry.add_vehicle(session, carrier_id=fleet.carrier_id, registered_plate="沪B00001", kind="spaceship")


def test_vehicles_and_drivers_are_looked_up_within_their_carrier(session: Session, fleet: Fleet) -> None:
    other = registry.add_carrier(session, code="other", name="Other")
    with pytest.raises(UnknownVehicle):
        registry.get_vehicle(session, fleet.vehicle_id, carrier_id=other.id)
    with pytest.raises(UnknownDriver):
        registry.get_driver(session, fleet.driver_id, carrier_id=other.id)
    with pytest.raises(UnknownDriver):
        registry.get_driver(session, 12345)
    assert registry.get_driver(session, fleet.driver_id, carrier_id=fleet.carrier_id).name == "Li Wei"


def test_driver_refs_are_unique_per_carrier(session: Session, fleet: Fleet) -> None:
    with pytest.raises(DuplicateDriver):
        registry.add_driver(session, carrier_id=fleet.carrier_id, name="Someone", external_ref="D-1")
    # Drivers without a ref never collide.
    registry.add_driver(session, carrier_id=fleet.carrier_id, name="A")
    registry.add_driver(session, carrier_id=fleet.carrier_id, name="B")
    session.commit()
    assert len(registry.list_drivers(session, fleet.carrier_id)) == 4
    assert registry.find_driver(session, fleet.carrier_id, "D-2").name == "Wang Fang"


def test_carrier_threshold_overrides(session: Session) -> None:
    carrier = registry.add_carrier(session, code="strict", name="Strict", thresholds={"blur_min": 55})
    session.commit()
    base = Thresholds(plate_confidence_min=0.9)
    effective = registry.effective_thresholds(carrier, base)
    assert effective.blur_min == 55.0
    assert effective.plate_confidence_min == 0.9  # not overridden: the deployment's value
    assert carrier.thresholds == {"blur_min": 55.0}

    with pytest.raises(InvalidThresholds):
        registry.add_carrier(session, code="typo", name="Typo", thresholds={"blurr_min": 55})
    with pytest.raises(InvalidThresholds):
        registry.set_carrier_thresholds(session, carrier.id, {"min_short_side": "tall"})

    registry.set_carrier_thresholds(session, carrier.id, None, actor="ops", reason="back to defaults")
    session.commit()
    assert registry.effective_thresholds(carrier, base) == base
    events = audit.list_events(session, subject_type="carrier", subject_id=carrier.id)
    assert [e.action for e in events] == ["carrier.add", "carrier.thresholds"]
    assert events[-1].before == {"thresholds": {"blur_min": 55.0}}
    assert (events[-1].actor, events[-1].reason) == ("ops", "back to defaults")


def test_cached_embedding_belongs_to_its_model_and_licence(session: Session, fleet: Fleet) -> None:
    vector = np.linspace(-1, 1, 128, dtype=np.float32)
    registry.set_driver_embedding(session, fleet.driver_id, vector, model="sface-int8")
    session.commit()
    session.expire_all()
    driver = registry.get_driver(session, fleet.driver_id)
    np.testing.assert_array_equal(registry.cached_embedding(driver, "sface-int8"), vector)
    assert registry.cached_embedding(driver, "another-model") is None

    sha = "ab" * 32
    registry.set_driver_licence(session, fleet.driver_id, sha, actor="ops")
    session.commit()
    assert driver.licence_sha256 == sha
    assert registry.cached_embedding(driver, "sface-int8") is None  # it was the old photo's


def test_registry_changes_are_audited(session: Session, fleet: Fleet) -> None:
    actions = [(e.action, e.subject_type) for e in audit.list_events(session)]
    assert actions == [
        ("carrier.add", "carrier"),
        ("driver.add", "driver"),
        ("driver.add", "driver"),
        ("vehicle.add", "vehicle"),
    ]
