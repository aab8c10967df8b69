"""Batch audits: the jobs with their progress, a form to start one, and a job's page that follows
its progress live and, once done, shows its diff against the verdicts the submissions had.

A job is made by ``audit_jobs.create_audit_job`` and published to the audit queue exactly as
POST /v1/audits does; when the broker cannot be reached the job stays queued and the sweeper
publishes it later. Starting one needs the admin role: an audit spends model time on a whole
carrier's photos and replaces the current verdicts that the new models decide otherwise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from compliance.dashboard.filters import find_driver_id, find_vehicle_id, parse_day
from compliance.dashboard.language import N_, gettext
from compliance.dashboard.security import Admin, NotFound, SignedIn, Viewer, check_csrf
from compliance.dashboard.templating import render
from compliance.reports.period import ReportZone
from compliance.service import audits as audit_service
from compliance.store import audit_jobs, registry
from compliance.store.errors import StoreError, UnknownAuditJob
from compliance.store.models import AuditJob, AuditJobStatus, Role
from compliance.store.registry import list_carriers
from compliance.store.submissions import submissions_by_id

log = logging.getLogger(__name__)

router = APIRouter()

JOBS_LISTED = 50
CHANGED_SHOWN = 200
FAILED_SHOWN = 50
DEFAULT_DAYS = 30
_JOB_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
_NOTICE = "audit_notice"  # a message for the next page of one job, kept in the session


@dataclass
class AuditForm:
    """The start form as typed, to fill it again when something is refused."""

    carrier: str = ""
    since: str = ""
    until: str = ""
    driver: str = ""
    plate: str = ""
    pipeline: str = ""


@dataclass(frozen=True)
class JobRow:
    job: AuditJob
    counts: audit_jobs.ItemCounts
    carrier_code: str
    period: str


def _instant(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def period_text(criteria: dict[str, Any], zone: ReportZone) -> str:
    """The job's date range as people read it: whole days (the end day included) when it is made of
    whole days in the reports' zone, as the dashboard's form makes it; else the instants."""
    since, until = _instant(criteria.get("since")), _instant(criteria.get("until"))
    if since is None and until is None:
        return gettext("all time")
    start = gettext("the beginning")
    if since is not None:
        local = zone.local(since)
        start = local.date().isoformat() if local.time() == time(0) else local.strftime("%Y-%m-%d %H:%M")
    end = gettext("now")
    if until is not None:
        local = zone.local(until)
        if local.time() == time(0):
            end = (local.date() - timedelta(days=1)).isoformat()
        else:
            end = gettext("before %(when)s", when=local.strftime("%Y-%m-%d %H:%M"))
    return f"{start} → {end}"


def _scoped_job(session: Session, viewer: Viewer, job_id: str) -> AuditJob:
    """The job if the viewer may see it; "not found" otherwise, exactly as for no job."""
    if not _JOB_ID.fullmatch(job_id):
        raise NotFound("audit")
    try:
        return audit_jobs.get_audit_job(session, job_id, carrier_id=viewer.carrier_id)
    except UnknownAuditJob:
        raise NotFound("audit") from None


def _default_form(request: Request) -> AuditForm:
    today = request.app.state.report_zone.today()
    return AuditForm(
        since=(today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
        until=today.isoformat(),
        pipeline=request.app.state.settings.service_pipeline,
    )


def _list_page(
    request: Request, viewer: Viewer, form: AuditForm, *, errors: list[str] | None = None, status_code: int = 200
) -> Response:
    zone = request.app.state.report_zone
    with request.app.state.read_sessions() as s:
        jobs = audit_jobs.list_audit_jobs(s, viewer.carrier_id, limit=JOBS_LISTED)
        counts = audit_jobs.item_counts(s, [job.id for job in jobs])
        codes = registry.carrier_codes(s)
        rows = [JobRow(job, counts[job.id], codes[job.carrier_id], period_text(job.criteria, zone)) for job in jobs]
        context = {
            "rows": rows,
            "form": form,
            "errors": errors or [],
            "may_start": viewer.may(Role.ADMIN),
            "carriers": list_carriers(s) if viewer.all_carriers else [],
            "pipelines": audit_service.pipeline_choices(),
            "listed": JOBS_LISTED,
        }
        return render(request, "audits.html", context, status_code=status_code)


@router.get("/audits")
def audits_page(request: Request, viewer: SignedIn) -> Response:
    return _list_page(request, viewer, _default_form(request))


@router.post("/audits", dependencies=[Depends(check_csrf)])
def start_audit(
    request: Request,
    viewer: Admin,
    carrier: Annotated[str, Form()] = "",
    since: Annotated[str, Form()] = "",
    until: Annotated[str, Form()] = "",
    driver: Annotated[str, Form()] = "",
    plate: Annotated[str, Form()] = "",
    pipeline: Annotated[str, Form()] = "",
) -> Response:
    form = AuditForm(*(v.strip() for v in (carrier, since, until, driver, plate, pipeline)))
    zone: ReportZone = request.app.state.report_zone
    errors: list[str] = []

    since_day = parse_day(form.since, "since", errors) if form.since else None
    until_day = parse_day(form.until, "until", errors) if form.until else None
    if since_day and until_day and until_day < since_day:
        errors.append(gettext("until is before since"))
    if form.pipeline not in audit_service.pipeline_choices():
        errors.append(
            gettext("pipeline: choose one of %(choices)s", choices=", ".join(audit_service.pipeline_choices()))
        )
    with request.app.state.read_sessions() as s:
        carrier_id = viewer.carrier_id
        if carrier_id is None:
            found = registry.find_carrier(s, form.carrier) if form.carrier else None
            carrier_id = found.id if found is not None else None
            if carrier_id is None:
                errors.append(gettext("carrier: choose the carrier whose photos to audit"))
        driver_id = find_driver_id(form.driver, carrier_id, s, errors) if form.driver and carrier_id else None
        vehicle_id = find_vehicle_id(form.plate, carrier_id, s, errors) if form.plate and carrier_id else None
    if errors:
        return _list_page(request, viewer, form, errors=errors, status_code=400)
    assert carrier_id is not None

    try:
        started = audit_service.start_audit(
            request.app.state.store,
            request.app.state.publisher,
            request.app.state.settings,
            carrier_id,
            pipeline=form.pipeline,
            since=zone.start_of(since_day) if since_day else None,
            # The form's end day is included, as people read a range of days.
            until=zone.start_of(until_day + timedelta(days=1)) if until_day else None,
            driver_ids=[driver_id] if driver_id else [],
            vehicle_ids=[vehicle_id] if vehicle_id else [],
            actor=viewer.username,
        )
    except StoreError as exc:
        return _list_page(request, viewer, form, errors=[str(exc)], status_code=400)
    if started.total and not started.published:
        request.session[_NOTICE] = {
            "job": started.job_id,
            # Worded when shown, in the language of the page that shows it.
            "text": N_("The queue could not be reached: the audit is saved and starts when the sweeper finds it."),
        }
    return RedirectResponse(f"/dashboard/audits/{started.job_id}", status_code=303)


@router.get("/audits/{job_id}")
def audit_page(request: Request, job_id: str, viewer: SignedIn) -> Response:
    zone = request.app.state.report_zone
    with request.app.state.read_sessions() as s:
        job = _scoped_job(s, viewer, job_id)
        notice = request.session.get(_NOTICE)
        if isinstance(notice, dict) and notice.get("job") == job.id:
            request.session.pop(_NOTICE)
        else:
            notice = None
        progress = audit_jobs.progress(s, job.id)
        changed = audit_jobs.changed_items(s, job.id, limit=CHANGED_SHOWN)
        failed = audit_jobs.failed_items(s, job.id, limit=FAILED_SHOWN)
        shown = [item.submission_id for item in (*changed, *failed)]
        submissions = submissions_by_id(s, shown)
        criteria = job.criteria
        context = {
            "job": job,
            "done": job.status is AuditJobStatus.DONE,
            "carrier_code": registry.get_carrier(s, job.carrier_id).code,
            "period": period_text(criteria, zone),
            "drivers": registry.drivers_by_id(s, criteria.get("driver_ids") or []),
            "vehicles": registry.vehicles_by_id(s, criteria.get("vehicle_ids") or []),
            "p": progress,
            "finished": progress.done + progress.failed,
            "reasons": sorted(set(progress.reasons_added) | set(progress.reasons_removed)),
            "changed": changed,
            "failed": failed,
            "submissions": submissions,
            "changed_shown": CHANGED_SHOWN,
            "notice": gettext(notice["text"]) if notice else None,
        }
        return render(request, "audit.html", context)


@router.get("/audits/{job_id}/progress")
def audit_progress(request: Request, job_id: str, viewer: SignedIn) -> Response:
    """What the job's page polls: its status and items by status (no diff: cheap at any size)."""
    with request.app.state.read_sessions() as s:
        job = _scoped_job(s, viewer, job_id)
        counts = audit_jobs.item_counts(s, [job.id])[job.id]
        body = {"id": job.id, "status": job.status.value, "total": job.total, **asdict(counts)}
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
