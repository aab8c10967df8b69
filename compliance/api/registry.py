"""``/v1/drivers`` (with their licence photos) and ``/v1/vehicles`` (registered plate and colour)."""

from __future__ import annotations

from typing import Annotated, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, File, Form, Path, Query, UploadFile, status
from sqlalchemy.orm import Session

from compliance.api.deps import CallerDep, SettingsDep, StoreDep
from compliance.api.errors import not_found, photo_error, store_error
from compliance.api.schemas import DriverOut, DriverPage, ErrorResponse, VehicleIn, VehicleOut, VehiclePage
from compliance.photos import PhotoRejected, receive_photo
from compliance.settings import Settings
from compliance.store import registry
from compliance.store.errors import StoreError, UnknownDriver, UnknownVehicle
from compliance.store.models import Driver, Vehicle

router = APIRouter(prefix="/v1", tags=["registry"])

Registered = TypeVar("Registered", Driver, Vehicle)

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
After = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="the last id of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]

_ERRORS = {
    401: {"model": ErrorResponse, "description": "no valid API key"},
    404: {"model": ErrorResponse, "description": "no such driver or vehicle for this carrier"},
    409: {"model": ErrorResponse, "description": "already registered"},
    413: {"model": ErrorResponse, "description": "photo over the size or pixel limit"},
    415: {"model": ErrorResponse, "description": "not an image"},
    422: {"model": ErrorResponse, "description": "invalid field or photo"},
}


def _page(
    session: Session, model: type[Registered], carrier_id: int, after: int | None, limit: int
) -> tuple[list[Registered], int | None]:
    """One page of a carrier's drivers or vehicles by id, and the id to pass as ``after`` next."""
    query = sa.select(model).where(model.carrier_id == carrier_id)
    if after is not None:
        query = query.where(model.id > after)
    rows = list(session.scalars(query.order_by(model.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None


def _licence(upload: UploadFile, settings: Settings) -> bytes:
    data = upload.file.read(settings.max_upload_bytes + 1)
    try:
        return receive_photo(data, **settings.photo_limits).data
    except PhotoRejected as exc:
        raise photo_error(exc, "licence") from None


def _refused(exc: StoreError) -> Exception:
    error = store_error(exc)
    if isinstance(exc, ValueError) and "already registered" in str(exc):
        error.status, error.code = 409, "already_registered"
    return error


@router.post("/drivers", status_code=status.HTTP_201_CREATED, response_model=DriverOut, responses=_ERRORS)
def create_driver(
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    ref: Annotated[str | None, Form(min_length=1, max_length=128, description="the carrier's own reference")] = None,
    licence: Annotated[UploadFile | None, File(description="the driver's licence (ID) photo")] = None,
) -> DriverOut:
    """Register a driver, with the licence photo the face check compares against."""
    sha = store.blobs.put(_licence(licence, settings)) if licence is not None else None
    with store.sessions() as s, s.begin():
        try:
            driver = registry.add_driver(
                s, carrier_id=caller.carrier_id, name=name, external_ref=ref, licence_sha256=sha, actor=caller.actor
            )
        except StoreError as exc:
            raise _refused(exc) from None
        return DriverOut.of(driver)


@router.put("/drivers/{driver_id}/licence", response_model=DriverOut, responses=_ERRORS)
def replace_licence(
    driver_id: Id,
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    licence: Annotated[UploadFile, File(description="the driver's new licence (ID) photo")],
) -> DriverOut:
    _driver(store, caller.carrier_id, driver_id)
    sha = store.blobs.put(_licence(licence, settings))
    with store.sessions() as s, s.begin():
        return DriverOut.of(registry.set_driver_licence(s, driver_id, sha, actor=caller.actor, reason="API upload"))


def _driver(store: StoreDep, carrier_id: int, driver_id: int) -> DriverOut:
    with store.sessions() as s:
        try:
            return DriverOut.of(registry.get_driver(s, driver_id, carrier_id=carrier_id))
        except UnknownDriver:
            raise not_found("driver", driver_id) from None


@router.get("/drivers/{driver_id}", response_model=DriverOut, responses=_ERRORS)
def get_driver(driver_id: Id, caller: CallerDep, store: StoreDep) -> DriverOut:
    return _driver(store, caller.carrier_id, driver_id)


@router.get("/drivers", response_model=DriverPage, responses=_ERRORS)
def list_drivers(
    caller: CallerDep,
    store: StoreDep,
    after: After = None,
    limit: Limit = 100,
) -> DriverPage:
    with store.sessions() as s:
        rows, next_after = _page(s, Driver, caller.carrier_id, after, limit)
        return DriverPage(items=[DriverOut.of(d) for d in rows], next_after=next_after)


@router.post("/vehicles", status_code=status.HTTP_201_CREATED, response_model=VehicleOut, responses=_ERRORS)
def create_vehicle(body: VehicleIn, caller: CallerDep, store: StoreDep) -> VehicleOut:
    """Register a vehicle by its plate (and the plate's colour)."""
    with store.sessions() as s, s.begin():
        try:
            vehicle = registry.add_vehicle(
                s,
                carrier_id=caller.carrier_id,
                registered_plate=body.plate,
                plate_color=body.color,
                kind=body.kind,
                actor=caller.actor,
            )
        except StoreError as exc:
            raise _refused(exc) from None
        return VehicleOut.of(vehicle)


@router.get("/vehicles/{vehicle_id}", response_model=VehicleOut, responses=_ERRORS)
def get_vehicle(vehicle_id: Id, caller: CallerDep, store: StoreDep) -> VehicleOut:
    with store.sessions() as s:
        try:
            return VehicleOut.of(registry.get_vehicle(s, vehicle_id, carrier_id=caller.carrier_id))
        except UnknownVehicle:
            raise not_found("vehicle", vehicle_id) from None


@router.get("/vehicles", response_model=VehiclePage, responses=_ERRORS)
def list_vehicles(
    caller: CallerDep,
    store: StoreDep,
    after: After = None,
    limit: Limit = 100,
) -> VehiclePage:
    with store.sessions() as s:
        rows, next_after = _page(s, Vehicle, caller.carrier_id, after, limit)
        return VehiclePage(items=[VehicleOut.of(v) for v in rows], next_after=next_after)
