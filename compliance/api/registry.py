"""``/v1/drivers`` (with their licence photos), ``/v1/vehicles`` (registered plate and colour) and
``/v1/sites`` (code, name, position and radius)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile, status

from compliance.api.deps import CallerDep, SettingsDep, StoreDep, requires
from compliance.api.errors import not_found, photo_error, store_error
from compliance.api.schemas import (
    DriverOut,
    DriverPage,
    ErrorResponse,
    SiteIn,
    SiteList,
    SiteOut,
    VehicleIn,
    VehicleOut,
    VehiclePage,
    links,
)
from compliance.photos import PhotoRejected, ReceivedPhoto, receive_photo
from compliance.service import registry as registering
from compliance.settings import Settings
from compliance.store import registry
from compliance.store.errors import StoreError, UnknownDriver, UnknownSite, UnknownVehicle

router = APIRouter(prefix="/v1", tags=["registry"], dependencies=[Depends(requires("registry"))])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
After = Annotated[int | None, Query(ge=0, le=2**31 - 1, description="the last id of the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]

_ERRORS = {
    400: {"model": ErrorResponse, "description": "a body that cannot be parsed (JSON or multipart)"},
    401: {"model": ErrorResponse, "description": "no valid API key"},
    403: {"model": ErrorResponse, "description": "the key lacks the 'registry' scope"},
    404: {"model": ErrorResponse, "description": "no such driver, vehicle or site for this carrier"},
    409: {"model": ErrorResponse, "description": "already registered"},
    413: {"model": ErrorResponse, "description": "photo over the size or pixel limit"},
    415: {"model": ErrorResponse, "description": "not an image"},
    422: {"model": ErrorResponse, "description": "invalid field or photo"},
}


def _licence(upload: UploadFile, settings: Settings) -> ReceivedPhoto:
    data = upload.file.read(settings.max_upload_bytes + 1)
    try:
        return receive_photo(data, **settings.photo_limits)
    except PhotoRejected as exc:
        raise photo_error(exc, "licence") from None


def _refused(exc: StoreError) -> Exception:
    error = store_error(exc)
    if isinstance(exc, ValueError) and "already registered" in str(exc):
        error.status, error.code = 409, "already_registered"
    return error


@router.post(
    "/drivers",
    status_code=status.HTTP_201_CREATED,
    response_model=DriverOut,
    responses=_ERRORS,
    openapi_extra=links(
        201,
        GetDriver=("get", "/v1/drivers/{driver_id}", "driver_id"),
        ReplaceLicence=("put", "/v1/drivers/{driver_id}/licence", "driver_id"),
    ),
)
def create_driver(
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    ref: Annotated[str | None, Form(min_length=1, max_length=128, description="the carrier's own reference")] = None,
    licence: Annotated[UploadFile | None, File(description="the driver's licence (ID) photo")] = None,
) -> DriverOut:
    """Register a driver, with the licence photo the face check compares against."""
    photo = _licence(licence, settings) if licence is not None else None
    try:
        driver = registering.add_driver(store, caller.carrier_id, name=name, ref=ref, licence=photo, actor=caller.actor)
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
    """Replace a driver's licence photo (the face check's cached embedding of the old one goes)."""
    photo = _licence(licence, settings)
    try:
        driver = registering.replace_licence(
            store, caller.carrier_id, driver_id, photo, actor=caller.actor, reason="API upload"
        )
    except UnknownDriver:
        raise not_found("driver", driver_id) from None
    return DriverOut.of(driver)


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
        rows, next_after = registry.page_drivers(s, caller.carrier_id, after=after, limit=limit)
        return DriverPage(items=[DriverOut.of(d) for d in rows], next_after=next_after)


@router.post(
    "/vehicles",
    status_code=status.HTTP_201_CREATED,
    response_model=VehicleOut,
    responses=_ERRORS,
    openapi_extra=links(201, GetVehicle=("get", "/v1/vehicles/{vehicle_id}", "vehicle_id")),
)
def create_vehicle(body: VehicleIn, caller: CallerDep, store: StoreDep) -> VehicleOut:
    """Register a vehicle by its plate (and the plate's colour)."""
    try:
        vehicle = registering.add_vehicle(
            store, caller.carrier_id, plate=body.plate, color=body.color, kind=body.kind, actor=caller.actor
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
        rows, next_after = registry.page_vehicles(s, caller.carrier_id, after=after, limit=limit)
        return VehiclePage(items=[VehicleOut.of(v) for v in rows], next_after=next_after)


@router.post(
    "/sites",
    status_code=status.HTTP_201_CREATED,
    response_model=SiteOut,
    responses=_ERRORS,
    openapi_extra=links(201, GetSite=("get", "/v1/sites/{site_id}", "site_id")),
)
def create_site(body: SiteIn, caller: CallerDep, store: StoreDep) -> SiteOut:
    """Register a site (what an upload's `site` names once the carrier has any), with an optional
    position (WGS-84, or GCJ-02 as Chinese map apps show it) and radius."""
    try:
        site = registering.add_site(
            store,
            caller.carrier_id,
            code=body.code,
            name=body.name,
            latitude=body.lat,
            longitude=body.lon,
            radius_m=body.radius_m,
            datum=body.datum,
            actor=caller.actor,
        )
    except StoreError as exc:
        raise _refused(exc) from None
    return SiteOut.of(site)


@router.get("/sites/{site_id}", response_model=SiteOut, responses=_ERRORS)
def get_site(site_id: Id, caller: CallerDep, store: StoreDep) -> SiteOut:
    with store.sessions() as s:
        try:
            return SiteOut.of(registry.get_site(s, site_id, carrier_id=caller.carrier_id))
        except UnknownSite:
            raise not_found("site", site_id) from None


@router.get("/sites", response_model=SiteList, responses=_ERRORS)
def list_sites(caller: CallerDep, store: StoreDep) -> SiteList:
    with store.sessions() as s:
        return SiteList(items=[SiteOut.of(site) for site in registry.list_sites(s, caller.carrier_id)])
