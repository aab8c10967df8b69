"""Downloads: the verdict table (CSV, XLSX) for any filter; SFT and DPO training files (zip).

The verdict table's headers are in the reader's language, with the reason codes explained in a
column of their own; ``?headers=codes`` keeps the code headers (and no more columns) that carriers'
scripts read.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from compliance.dashboard.filters import Filters, read_filters, reason_codes
from compliance.dashboard.language import N_, gettext, message_language, zone_name
from compliance.dashboard.security import BadRequest, NotFound, Reviewer, SignedIn, Viewer
from compliance.dashboard.templating import render
from compliance.reports import exports
from compliance.store.models import Role, SubmissionStatus
from compliance.store.pages import count_submissions
from compliance.store.registry import list_carriers
from compliance.training import export as training
from compliance.verdicts import Outcome

router = APIRouter()

TRAINING_KINDS = ("sft", "dpo")
HEADER_CHOICES = ("words", "codes")
# The verdict table's headers in words (compliance.reports.exports.COLUMNS are the codes).
HEADERS = {
    "submission": N_("submission"),
    "created": N_("uploaded"),
    "carrier": N_("carrier"),
    "site": N_("site"),
    "driver_ref": N_("driver ref"),
    "driver": N_("driver"),
    "plate": N_("plate"),
    "status": N_("status"),
    "verdict": N_("verdict"),
    "reasons": N_("reason codes"),
    exports.EXPLAINED: N_("what the reasons mean"),
    "decided_by": N_("decided by"),
    "decided": N_("decided at"),
    "pipelines_agree": N_("pipelines agree"),
    "disagree_on": N_("disagree on"),
    "job": N_("job"),
}


def export_layout(request: Request) -> exports.Layout:
    """``headers=codes``: today's code headers; else (``words``, the default) the reader's words."""
    choice = request.query_params.get("headers", "words")
    if choice not in HEADER_CHOICES:
        raise BadRequest(gettext("headers: choose one of %(choices)s", choices=", ".join(HEADER_CHOICES)))
    if choice == "codes":
        return exports.CODES
    return exports.Layout(
        headers={column: gettext(text) for column, text in HEADERS.items()},
        explain=message_language(),
        zone_name=zone_name(request.app.state.settings.dashboard_timezone),
        sheet=gettext("verdicts"),
    )


def _filters(request: Request, viewer: Viewer) -> tuple[Filters, list[object]]:
    with request.app.state.read_sessions() as s:
        filters = read_filters(request.query_params, viewer, s, request.app.state.report_zone)
        return filters, list_carriers(s) if viewer.all_carriers else []


def _stamp(filters: Filters) -> str:
    parts = [filters.carrier_code or "all", datetime.now().strftime("%Y%m%d-%H%M")]
    return "-".join(parts)


@router.get("/exports")
def exports_page(request: Request, viewer: SignedIn) -> Response:
    filters, carriers = _filters(request, viewer)
    count = None
    if not filters.errors:
        with request.app.state.read_sessions() as s:
            count = count_submissions(s, filters.where)
    return render(
        request,
        "exports.html",
        {
            "filters": filters,
            "carriers": carriers,
            "count": count,
            "statuses": [x.value for x in SubmissionStatus],
            "outcomes": [o.value for o in Outcome],
            "reasons": reason_codes(),
            "training": viewer.may(Role.REVIEWER),
        },
        status_code=400 if filters.errors else 200,
    )


def _checked(request: Request, viewer: Viewer) -> Filters:
    filters, _ = _filters(request, viewer)
    if filters.errors:
        raise BadRequest("; ".join(filters.errors))
    return filters


@router.get("/exports/verdicts.csv")
def verdicts_csv(request: Request, viewer: SignedIn) -> Response:
    filters = _checked(request, viewer)
    layout = export_layout(request)
    sessions = request.app.state.read_sessions
    zone = request.app.state.report_zone

    def chunks():
        with sessions() as s:
            yield from exports.csv_chunks(s, filters.where, zone, layout)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="verdicts-{_stamp(filters)}.csv"'},
    )


def _temporary_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="compliance-export-"))


@router.get("/exports/verdicts.xlsx")
def verdicts_xlsx(request: Request, viewer: SignedIn) -> Response:
    filters = _checked(request, viewer)
    layout = export_layout(request)
    folder = _temporary_folder()
    path = folder / "verdicts.xlsx"
    try:
        with request.app.state.read_sessions() as s:
            exports.write_xlsx(s, filters.where, request.app.state.report_zone, path, layout)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        filename=f"verdicts-{_stamp(filters)}.xlsx",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@router.get("/exports/training/{kind}.zip")
def training_zip(request: Request, kind: str, viewer: Reviewer) -> Response:
    """The SFT or DPO file with its images, from reviewed submissions of the viewer's scope."""
    if kind not in TRAINING_KINDS:
        raise NotFound("training export")
    filters = _checked(request, viewer)
    store = request.app.state.store
    folder = _temporary_folder()
    try:
        out = folder / kind
        with request.app.state.read_sessions() as s:
            export = training.export_sft if kind == "sft" else training.export_dpo
            summary = export(
                s,
                store.blobs,
                out,
                carrier_id=filters.where.carrier_id,
                since=filters.where.since,
                until=filters.where.until,
            )
        archive = folder / f"{kind}.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(out).as_posix())
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/zip",
        filename=f"{kind}-{_stamp(filters)}.zip",
        headers={"X-Records": str(summary.records), "X-Images": str(summary.images)},
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
