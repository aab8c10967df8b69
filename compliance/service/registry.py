"""Registering a carrier, its drivers (with their licence photos), its vehicles and its sites, and
replacing a driver's licence photo.

The API and the CLI both come through here, so each rule lives once: every change is one
transaction with its audit event, and a licence photo is written only for a row that is being
committed. The row is written first (the store refuses a duplicate reference, another carrier's
driver, a bad plate), then the photo is made durable before the commit: a refusal leaves no file
behind, and a photo that cannot be written rolls the row back, so no driver points at a photo that
is not there. The store's errors propagate for the entry point to translate.

What is returned is the row as committed, loaded and detached (the sessions do not expire on
commit): read its columns, not its relationships.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compliance import geo
from compliance.judgments import PlateColor, VehicleKind
from compliance.photos import Photo, ReceivedPhoto
from compliance.service.intake import InvalidUpload, refuse_control_characters
from compliance.store import Store, registry
from compliance.store.errors import InvalidRegistration
from compliance.store.models import Carrier, Driver, Site, Vehicle


def _plain_text(**fields: object) -> None:
    """``InvalidRegistration`` for a name, reference or plate holding a control character."""
    try:
        refuse_control_characters(**fields)
    except InvalidUpload as exc:
        raise InvalidRegistration(str(exc)) from None


def add_carrier(store: Store, *, code: str, name: str, actor: str) -> Carrier:
    """A new carrier; ``DuplicateCarrier`` if the code is taken."""
    _plain_text(code=code, name=name)
    with store.sessions() as s, s.begin():
        return registry.add_carrier(s, code=code, name=name, actor=actor)


def set_thresholds(
    store: Store, carrier: str | int, overrides: Mapping[str, Any] | None, *, actor: str, reason: str | None
) -> Carrier:
    """Replace the carrier's (id or code) threshold overrides; None or empty: back to the defaults."""
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        return registry.set_carrier_thresholds(s, found.id, overrides, actor=actor, reason=reason)


def add_driver(
    store: Store,
    carrier: str | int,
    *,
    name: str,
    ref: str | None = None,
    licence: Photo | ReceivedPhoto | None,
    actor: str,
) -> Driver:
    """A new driver of the carrier (id or code), with the licence photo the face check compares
    against; ``DuplicateDriver`` if the carrier's reference is taken, and then no file is written."""
    _plain_text(name=name, ref=ref)
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        driver = registry.add_driver(
            s,
            carrier_id=found.id,
            name=name,
            external_ref=ref,
            licence_sha256=licence.sha256 if licence is not None else None,
            actor=actor,
        )
        if licence is not None:
            # Durable before the row that points at it is committed; a failure rolls the row back.
            store.blobs.put(licence.data)
    if licence is not None:
        store.blobs.confirm(licence.sha256, licence.data)  # committed: still there (PhotoStore.confirm)
    return driver


def replace_licence(
    store: Store,
    carrier_id: int,
    driver_id: int,
    licence: Photo | ReceivedPhoto,
    *,
    actor: str,
    reason: str | None,
) -> Driver:
    """The driver's new licence photo (the cached face embedding of the old one goes);
    ``UnknownDriver`` if there is no such driver or they drive for another carrier, and then no
    file is written."""
    with store.sessions() as s, s.begin():
        registry.get_driver(s, driver_id, carrier_id=carrier_id)  # the carrier's, or UnknownDriver
        driver = registry.set_driver_licence(s, driver_id, licence.sha256, actor=actor, reason=reason)
        store.blobs.put(licence.data)
    store.blobs.confirm(licence.sha256, licence.data)  # committed: still there (PhotoStore.confirm)
    return driver


def add_vehicle(
    store: Store,
    carrier: str | int,
    *,
    plate: str,
    color: PlateColor | str | None = None,
    kind: VehicleKind | str | None = None,
    actor: str,
) -> Vehicle:
    """A new vehicle of the carrier (id or code) by its plate, normalised; ``DuplicatePlate`` if the
    carrier has it already however it is written, ``InvalidPlate`` if it is empty or too long."""
    _plain_text(plate=plate)
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        return registry.add_vehicle(
            s, carrier_id=found.id, registered_plate=plate, plate_color=color, kind=kind, actor=actor
        )


def add_site(
    store: Store,
    carrier: str | int,
    *,
    code: str,
    name: str,
    latitude: float | None = None,
    longitude: float | None = None,
    radius_m: float | None = None,
    datum: geo.Datum | str = geo.Datum.WGS84,
    actor: str,
) -> Site:
    """A new site of the carrier (id or code). A position entered in GCJ-02 (what Chinese map apps
    show) is kept in WGS-84, what phones' EXIF GPS records; ``DuplicateSite`` if the code is taken."""
    _plain_text(code=code, name=name)
    try:
        datum = geo.Datum(datum)
    except ValueError:
        raise InvalidRegistration(f"unknown datum {datum!r}; choose wgs84 or gcj02") from None
    if latitude is not None and longitude is not None and geo.valid_position(latitude, longitude):
        position = geo.to_wgs84(geo.Position(latitude, longitude), datum)
        latitude, longitude = position.latitude, position.longitude
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        return registry.add_site(
            s,
            carrier_id=found.id,
            code=code,
            name=name,
            latitude=latitude,
            longitude=longitude,
            radius_m=radius_m,
            actor=actor,
        )
