"""Carriers, their registered vehicles and their drivers.

Every function flushes and never commits; each change writes an audit event in the same
transaction. Errors are ``RegistryError`` subclasses that say what is wrong in one line.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.orm import Session

from compliance import geo, plates
from compliance.judgments import PlateColor, VehicleKind
from compliance.settings import Thresholds
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import (
    DuplicateCarrier,
    DuplicateDriver,
    DuplicatePlate,
    DuplicateSite,
    InvalidPlate,
    InvalidRegistration,
    InvalidThresholds,
    UnknownCarrier,
    UnknownDriver,
    UnknownSite,
    UnknownVehicle,
)
from compliance.store.models import Carrier, Driver, Site, Vehicle

_PLATE_MAX = 16
_EMBEDDING_DTYPE = np.dtype("<f4")


# Carriers


def add_carrier(
    session: Session,
    *,
    code: str,
    name: str,
    thresholds: Mapping[str, Any] | None = None,
    actor: str = SYSTEM,
) -> Carrier:
    code = code.strip()
    if not code or not name.strip():
        raise InvalidRegistration("a carrier needs a code and a name")
    if session.scalar(sa.select(Carrier.id).where(Carrier.code == code)) is not None:
        raise DuplicateCarrier(code)
    carrier = Carrier(code=code, name=name, thresholds=_checked_overrides(thresholds))
    session.add(carrier)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="carrier.add",
        subject_type="carrier",
        subject_id=carrier.id,
        after={"code": code, "name": name, "thresholds": carrier.thresholds},
    )
    return carrier


def get_carrier(session: Session, ref: str | int) -> Carrier:
    """By id (int) or code (str)."""
    if isinstance(ref, int):
        carrier = session.get(Carrier, ref)
    else:
        carrier = session.scalar(sa.select(Carrier).where(Carrier.code == ref))
    if carrier is None:
        raise UnknownCarrier(ref)
    return carrier


class UploadParties(NamedTuple):
    """Who and what an upload names, resolved within its carrier."""

    carrier_id: int
    driver_id: int
    vehicle_id: int | None
    registered_plate: str | None


def resolve_upload(
    session: Session, carrier: str | int, driver: str | int, *, vehicle_id: int | None, plate: str | None
) -> UploadParties:
    """The carrier (id or code), the driver (id or the carrier's reference) and the vehicle (id or
    registered plate; neither is fine) in one query; ``Unknown…`` for any that is not the carrier's."""
    named_vehicle = vehicle_id is not None or bool(plate)
    query = _resolve_query(isinstance(carrier, int), isinstance(driver, int), vehicle_id is not None, bool(plate))
    params = {
        "carrier": carrier,
        "driver": driver,
        "vehicle": vehicle_id if vehicle_id is not None else plates.normalise(plate or ""),
    }
    row = session.connection().execute(query, params).first()
    if row is None:
        raise UnknownCarrier(carrier)
    if row[1] is None:
        raise UnknownDriver(driver, row[0])
    if not named_vehicle:
        return UploadParties(row[0], row[1], None, None)
    if row[2] is None:
        raise UnknownVehicle(vehicle_id if vehicle_id is not None else plates.normalise(plate or ""), row[0])
    return UploadParties(row[0], row[1], row[2], row[3])


@functools.cache
def _resolve_query(carrier_by_id: bool, driver_by_id: bool, vehicle_by_id: bool, vehicle_by_plate: bool) -> sa.Select:
    # One statement object per shape, on Core tables, run on the session's connection: its cache
    # key is computed once, and no ORM machinery runs on the upload's hot path.
    carriers, drivers, vehicles = Carrier.__table__.c, Driver.__table__.c, Vehicle.__table__.c
    driver_on = drivers.carrier_id == carriers.id
    driver_on &= (drivers.id if driver_by_id else drivers.external_ref) == sa.bindparam("driver")
    query = sa.select(carriers.id, drivers.id).select_from(Carrier.__table__).outerjoin(Driver.__table__, driver_on)
    if vehicle_by_id or vehicle_by_plate:
        vehicle_on = vehicles.carrier_id == carriers.id
        vehicle_on &= (vehicles.id if vehicle_by_id else vehicles.registered_plate) == sa.bindparam("vehicle")
        query = query.add_columns(vehicles.id, vehicles.registered_plate).outerjoin(Vehicle.__table__, vehicle_on)
    return query.where((carriers.id if carrier_by_id else carriers.code) == sa.bindparam("carrier"))


def find_carrier(session: Session, code: str) -> Carrier | None:
    """The carrier with this code, or None."""
    return session.scalar(sa.select(Carrier).where(Carrier.code == code))


def list_carriers(session: Session) -> list[Carrier]:
    return list(session.scalars(sa.select(Carrier).order_by(Carrier.code)))


def carrier_codes(session: Session) -> dict[int, str]:
    """Every carrier's code, by id."""
    return dict(session.execute(sa.select(Carrier.id, Carrier.code)).tuples().all())


def set_carrier_thresholds(
    session: Session,
    carrier_id: int,
    overrides: Mapping[str, Any] | None,
    *,
    actor: str = SYSTEM,
    reason: str | None = None,
) -> Carrier:
    """Replace the carrier's overrides (None: back to the defaults)."""
    carrier = get_carrier(session, carrier_id)
    before = carrier.thresholds
    carrier.thresholds = _checked_overrides(overrides)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="carrier.thresholds",
        subject_type="carrier",
        subject_id=carrier.id,
        before={"thresholds": before},
        after={"thresholds": carrier.thresholds},
        reason=reason,
    )
    return carrier


def effective_thresholds(carrier: Carrier, base: Thresholds) -> Thresholds:
    """``base`` (the deployment's settings) with the carrier's overrides applied."""
    if not carrier.thresholds:
        return base
    return Thresholds.model_validate({**base.model_dump(), **carrier.thresholds})


def _checked_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not overrides:
        return None
    unknown = sorted(set(overrides) - set(Thresholds.model_fields))
    if unknown:
        raise InvalidThresholds(f"unknown threshold(s): {', '.join(unknown)}")
    try:
        checked = Thresholds.model_validate(dict(overrides))
    except ValidationError as exc:
        raise InvalidThresholds(f"invalid thresholds: {exc.errors()[0]['msg']}") from None
    # Keep only what was overridden, as validated, so later default changes still reach the carrier.
    return checked.model_dump(mode="json", include=set(overrides))


# Sites

_SITE_CODE_MAX = 128
# A site given a position without a radius: about a large depot's yard.
DEFAULT_SITE_RADIUS_M = 500.0
_SITE_RADIUS_MAX_M = 100_000.0


def add_site(
    session: Session,
    *,
    carrier_id: int,
    code: str,
    name: str,
    latitude: float | None = None,
    longitude: float | None = None,
    radius_m: float | None = None,
    actor: str = SYSTEM,
) -> Site:
    """A site of the carrier; its position (WGS-84, already converted) both or neither, its radius
    only with a position (``DEFAULT_SITE_RADIUS_M`` where none is given)."""
    carrier = get_carrier(session, carrier_id)
    code = code.strip()
    if not code or not name.strip():
        raise InvalidRegistration("a site needs a code and a name")
    if len(code) > _SITE_CODE_MAX:
        raise InvalidRegistration(f"site code {code!r} is longer than {_SITE_CODE_MAX} characters")
    if (latitude is None) != (longitude is None):
        raise InvalidRegistration("give a site's latitude and longitude both, or neither")
    if latitude is not None and longitude is not None and not geo.valid_position(latitude, longitude):
        raise InvalidRegistration(f"({latitude}, {longitude}) is not a position on the earth")
    if radius_m is not None and latitude is None:
        raise InvalidRegistration("a radius needs the site's position")
    if latitude is not None and radius_m is None:
        radius_m = DEFAULT_SITE_RADIUS_M
    if radius_m is not None and not (0 < radius_m <= _SITE_RADIUS_MAX_M):
        raise InvalidRegistration(f"a site's radius is more than 0 and at most {_SITE_RADIUS_MAX_M:.0f} m")
    if find_site(session, carrier.id, code) is not None:
        raise DuplicateSite(code, carrier.id)
    site = Site(carrier_id=carrier.id, code=code, name=name, latitude=latitude, longitude=longitude, radius_m=radius_m)
    session.add(site)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="site.add",
        subject_type="site",
        subject_id=site.id,
        after={
            "carrier_id": carrier.id,
            "code": code,
            "name": name,
            "latitude": latitude,
            "longitude": longitude,
            "radius_m": radius_m,
        },
    )
    return site


def find_site(session: Session, carrier_id: int, code: str) -> Site | None:
    return session.scalar(sa.select(Site).where(Site.carrier_id == carrier_id, Site.code == code))


def get_site(session: Session, site_id: int, *, carrier_id: int | None = None) -> Site:
    site = session.get(Site, site_id)
    if site is None or (carrier_id is not None and site.carrier_id != carrier_id):
        raise UnknownSite(str(site_id), carrier_id)
    return site


def list_sites(session: Session, carrier_id: int) -> list[Site]:
    return list(session.scalars(sa.select(Site).where(Site.carrier_id == carrier_id).order_by(Site.code)))


def check_site(session: Session, carrier_id: int, code: str) -> None:
    """``UnknownSite`` when the carrier registers sites and ``code`` is none of them; a carrier
    with none registered keeps free text."""
    if find_site(session, carrier_id, code) is not None:
        return
    if session.scalar(sa.select(Site.id).where(Site.carrier_id == carrier_id).limit(1)) is not None:
        raise UnknownSite(code, carrier_id)


# Vehicles


def normalise_plate(plate: str) -> str:
    text = plates.normalise(plate)
    if not text:
        raise InvalidPlate(f"empty plate {plate!r}")
    if len(text) > _PLATE_MAX:
        raise InvalidPlate(f"plate {plate!r} is longer than {_PLATE_MAX} characters")
    return text


def add_vehicle(
    session: Session,
    *,
    carrier_id: int,
    registered_plate: str,
    plate_color: PlateColor | str | None = None,
    kind: VehicleKind | str | None = None,
    actor: str = SYSTEM,
) -> Vehicle:
    carrier = get_carrier(session, carrier_id)
    plate = normalise_plate(registered_plate)
    if find_vehicle(session, carrier.id, plate) is not None:
        raise DuplicatePlate(plate, carrier.id)
    vehicle = Vehicle(
        carrier_id=carrier.id,
        registered_plate=plate,
        plate_color=PlateColor(plate_color).value if plate_color is not None else None,
        kind=VehicleKind(kind).value if kind is not None else None,
    )
    session.add(vehicle)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="vehicle.add",
        subject_type="vehicle",
        subject_id=vehicle.id,
        after={
            "carrier_id": carrier.id,
            "registered_plate": plate,
            "plate_color": vehicle.plate_color,
            "kind": vehicle.kind,
        },
    )
    return vehicle


def get_vehicle(session: Session, vehicle_id: int, *, carrier_id: int | None = None) -> Vehicle:
    """The vehicle; with ``carrier_id``, only if it belongs to that carrier."""
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None or (carrier_id is not None and vehicle.carrier_id != carrier_id):
        raise UnknownVehicle(vehicle_id, carrier_id)
    return vehicle


def find_vehicle(session: Session, carrier_id: int, plate: str) -> Vehicle | None:
    return session.scalar(
        sa.select(Vehicle).where(Vehicle.carrier_id == carrier_id, Vehicle.registered_plate == plates.normalise(plate))
    )


def find_vehicle_ids(session: Session, plate: str, carrier_id: int | None = None) -> list[int]:
    """The vehicles registered with this plate (as typed: normalised here), within one carrier
    when ``carrier_id`` is given, else across carriers."""
    query = sa.select(Vehicle.id).where(Vehicle.registered_plate == plates.normalise(plate))
    if carrier_id is not None:
        query = query.where(Vehicle.carrier_id == carrier_id)
    return list(session.scalars(query).all())


def vehicles_by_id(session: Session, ids: Sequence[int]) -> list[Vehicle]:
    return list(session.scalars(sa.select(Vehicle).where(Vehicle.id.in_(ids))))


def list_vehicles(session: Session, carrier_id: int) -> list[Vehicle]:
    get_carrier(session, carrier_id)
    return list(session.scalars(sa.select(Vehicle).where(Vehicle.carrier_id == carrier_id).order_by(Vehicle.id)))


def page_vehicles(
    session: Session, carrier_id: int, *, after: int | None = None, limit: int = 100
) -> tuple[list[Vehicle], int | None]:
    """One page of the carrier's vehicles by id, and the id to pass as ``after`` next (None on the last)."""
    return _page(session, Vehicle, carrier_id, after, limit)


def registered_plates(session: Session, carrier_id: int) -> list[str]:
    """The carrier's fleet: what a plate reading may match when no vehicle was claimed."""
    return list(
        session.scalars(
            sa.select(Vehicle.registered_plate)
            .where(Vehicle.carrier_id == carrier_id)
            .order_by(Vehicle.registered_plate)
        )
    )


# Drivers


def add_driver(
    session: Session,
    *,
    carrier_id: int,
    name: str,
    external_ref: str | None = None,
    licence_sha256: str | None = None,
    actor: str = SYSTEM,
) -> Driver:
    carrier = get_carrier(session, carrier_id)
    if not name.strip():
        raise InvalidRegistration("a driver needs a name")
    if external_ref is not None and find_driver(session, carrier.id, external_ref) is not None:
        raise DuplicateDriver(external_ref, carrier.id)
    driver = Driver(carrier_id=carrier.id, name=name, external_ref=external_ref, licence_sha256=licence_sha256)
    session.add(driver)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="driver.add",
        subject_type="driver",
        subject_id=driver.id,
        after={
            "carrier_id": carrier.id,
            "name": name,
            "external_ref": external_ref,
            "licence_sha256": licence_sha256,
        },
    )
    return driver


def get_driver(session: Session, driver_id: int, *, carrier_id: int | None = None) -> Driver:
    """The driver; with ``carrier_id``, only if they drive for that carrier."""
    driver = session.get(Driver, driver_id)
    if driver is None or (carrier_id is not None and driver.carrier_id != carrier_id):
        raise UnknownDriver(driver_id, carrier_id)
    return driver


def find_driver(session: Session, carrier_id: int, external_ref: str) -> Driver | None:
    return session.scalar(sa.select(Driver).where(Driver.carrier_id == carrier_id, Driver.external_ref == external_ref))


_MAX_ID = 2**31 - 1
# The audit action a licence photo's change is recorded under (the driver page reads it back).
LICENCE_ACTION = "driver.licence"


def row_id(text: str) -> int | None:
    """The row id ``text`` spells, or None: ASCII digits only ("²" is a digit to str.isdigit), and
    an id a column can hold (1 to 2**31 - 1)."""
    if text.isascii() and text.isdigit() and 0 < int(text) <= _MAX_ID:
        return int(text)
    return None


def find_driver_ids(session: Session, ref: str, carrier_id: int | None = None) -> list[int]:
    """The drivers ``ref`` names: by id (``#12``, or digits; digits that are no id are tried as a
    reference) or by the carrier's reference; within one carrier when ``carrier_id`` is given."""
    query = sa.select(Driver.id)
    if carrier_id is not None:
        query = query.where(Driver.carrier_id == carrier_id)
    by_id = row_id(ref.removeprefix("#"))
    if by_id is not None:
        found = session.scalars(query.where(Driver.id == by_id)).all()
        if found:
            return list(found)
    return list(session.scalars(query.where(Driver.external_ref == ref)).all())


def drivers_by_id(session: Session, ids: Sequence[int]) -> list[Driver]:
    return list(session.scalars(sa.select(Driver).where(Driver.id.in_(ids))))


def list_drivers(session: Session, carrier_id: int) -> list[Driver]:
    get_carrier(session, carrier_id)
    return list(session.scalars(sa.select(Driver).where(Driver.carrier_id == carrier_id).order_by(Driver.id)))


def page_drivers(
    session: Session, carrier_id: int, *, after: int | None = None, limit: int = 100
) -> tuple[list[Driver], int | None]:
    """One page of the carrier's drivers by id, and the id to pass as ``after`` next (None on the last)."""
    return _page(session, Driver, carrier_id, after, limit)


_Registered = TypeVar("_Registered", Driver, Vehicle)


def _page(
    session: Session, model: type[_Registered], carrier_id: int, after: int | None, limit: int
) -> tuple[list[_Registered], int | None]:
    query = sa.select(model).where(model.carrier_id == carrier_id)
    if after is not None:
        query = query.where(model.id > after)
    rows = list(session.scalars(query.order_by(model.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None


def set_driver_licence(
    session: Session,
    driver_id: int,
    licence_sha256: str | None,
    *,
    actor: str = SYSTEM,
    reason: str | None = None,
) -> Driver:
    """A new licence photo; the cached embedding was of the old one, so it goes."""
    driver = get_driver(session, driver_id)
    before = {"licence_sha256": driver.licence_sha256, "embedding_model": driver.embedding_model}
    driver.licence_sha256 = licence_sha256
    driver.face_embedding = None
    driver.embedding_model = None
    session.flush()
    record_event(
        session,
        actor=actor,
        action=LICENCE_ACTION,
        subject_type="driver",
        subject_id=driver.id,
        before=before,
        after={"licence_sha256": licence_sha256, "embedding_model": None},
        reason=reason,
    )
    return driver


def set_driver_embedding(
    session: Session,
    driver_id: int,
    vector: Sequence[float] | np.ndarray,
    *,
    model: str,
    actor: str = SYSTEM,
) -> Driver:
    """Cache the face embedding of the driver's licence photo, as computed by ``model``."""
    driver = get_driver(session, driver_id)
    array = np.asarray(vector, dtype=_EMBEDDING_DTYPE).reshape(-1)
    if array.size == 0 or not np.isfinite(array).all():
        raise InvalidRegistration("a face embedding must be a non-empty vector of finite numbers")
    before = {"embedding_model": driver.embedding_model}
    driver.face_embedding = array.tobytes()
    driver.embedding_model = model
    session.flush()
    record_event(
        session,
        actor=actor,
        action="driver.embedding",
        subject_type="driver",
        subject_id=driver.id,
        before=before,
        after={"embedding_model": model, "dimensions": int(array.size), "licence_sha256": driver.licence_sha256},
    )
    return driver


def cached_embedding(driver: Driver, model: str) -> np.ndarray | None:
    """The cached embedding if ``model`` made it; None if there is none or another model made it."""
    if driver.face_embedding is None or driver.embedding_model != model:
        return None
    return np.frombuffer(driver.face_embedding, dtype=_EMBEDDING_DTYPE).copy()
