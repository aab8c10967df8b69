"""``/v1/audits``: batch re-judging of stored photos with the current models, with progress and a
diff against the verdicts they had."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from compliance.api.deps import CallerDep, PublisherDep, SettingsDep, StoreDep, requires
from compliance.api.errors import not_found, store_error
from compliance.api.schemas import AuditIn, AuditOut, ErrorResponse, links
from compliance.service.audits import start_audit
from compliance.store import audit_jobs
from compliance.store.errors import StoreError, UnknownAuditJob

log = logging.getLogger("compliance.api")

router = APIRouter(prefix="/v1/audits", tags=["audits"], dependencies=[Depends(requires("audit"))])

_ERRORS = {
    400: {"model": ErrorResponse, "description": "a body that cannot be parsed"},
    401: {"model": ErrorResponse, "description": "no valid API key"},
    403: {"model": ErrorResponse, "description": "the key lacks the 'audit' scope"},
    404: {"model": ErrorResponse, "description": "no such audit for this carrier"},
    422: {"model": ErrorResponse, "description": "invalid range, unknown driver or vehicle, unknown pipeline"},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AuditOut,
    responses=_ERRORS,
    openapi_extra=links(202, GetAudit=("get", "/v1/audits/{audit_id}", "audit_id")),
)
def create_audit(
    body: AuditIn, caller: CallerDep, store: StoreDep, settings: SettingsDep, publisher: PublisherDep
) -> AuditOut:
    """Re-judge the carrier's decided submissions in a date range (and of the drivers or vehicles
    named) with the current models. Runs on the audit queue; poll GET /v1/audits/{id}."""
    try:
        started = start_audit(
            store,
            publisher,
            settings,
            caller.carrier_id,
            pipeline=body.pipeline,
            since=body.since,
            until=body.until,
            driver_ids=body.driver_ids,
            vehicle_ids=body.vehicle_ids,
            actor=caller.actor,
        )
    except StoreError as exc:
        raise store_error(exc) from None
    return _audit(store, caller.carrier_id, started.job_id)


def _audit(store: StoreDep, carrier_id: int, job_id: str) -> AuditOut:
    with store.sessions() as s:
        try:
            job = audit_jobs.get_audit_job(s, job_id, carrier_id=carrier_id)
        except UnknownAuditJob:
            raise not_found("audit", job_id) from None
        return AuditOut.of(job, audit_jobs.progress(s, job_id))


@router.get("/{audit_id}", response_model=AuditOut, responses=_ERRORS)
def get_audit(
    audit_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,64}$")], caller: CallerDep, store: StoreDep
) -> AuditOut:
    """Progress, and the diff so far: how many verdicts changed, from what to what, by reason."""
    return _audit(store, caller.carrier_id, audit_id)


@router.get("", response_model=list[AuditOut], responses=_ERRORS)
def list_audits(caller: CallerDep, store: StoreDep, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[AuditOut]:
    with store.sessions() as s:
        return [
            AuditOut.of(job, audit_jobs.progress(s, job.id))
            for job in audit_jobs.list_audit_jobs(s, caller.carrier_id, limit=limit)
        ]
