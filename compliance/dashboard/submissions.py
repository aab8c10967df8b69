"""The submissions list (filter, sort, keyset pages), one submission in full, and its photos."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from PIL import Image
from sqlalchemy.orm import Session

from compliance import geo
from compliance.agreement import COMPARED
from compliance.dashboard.filters import read_filters, reason_codes
from compliance.dashboard.security import NotFound, SignedIn, Viewer
from compliance.dashboard.templating import render
from compliance.judgments import Judgments
from compliance.photos import ExifFacts, PhotoRejected, edited_by, rendition
from compliance.reports import overlay
from compliance.reports.queue import in_queue
from compliance.reports.side_by_side import judgment_rows
from compliance.store import audit
from compliance.store.blobs import HEADER_BYTES, PhotoStore
from compliance.store.errors import InvalidCursor, MissingBlob, UnknownSubmission
from compliance.store.models import MACHINE, Role, Site, Submission, SubmissionStatus
from compliance.store.pages import SORT_KEYS, count_submissions, page_submissions, reasons_of
from compliance.store.registry import carrier_codes, find_site, list_carriers
from compliance.store.submissions import get_submission
from compliance.store.verdicts import latest_judgments
from compliance.verdicts import Outcome

router = APIRouter()


@router.get("/submissions")
def submissions_page(request: Request, viewer: SignedIn, cursor: str | None = None) -> Response:
    settings = request.app.state.settings
    zone = request.app.state.report_zone
    with request.app.state.read_sessions() as s:
        filters = read_filters(request.query_params, viewer, s, zone)
        context = {
            "filters": filters,
            "carriers": list_carriers(s) if viewer.all_carriers else [],
            "statuses": [x.value for x in SubmissionStatus],
            "outcomes": [o.value for o in Outcome],
            "reasons": reason_codes(),
            "sorts": list(SORT_KEYS),
            "rows": [],
            "total": None,
            "next_cursor": None,
            "cursor": cursor,
        }
        if filters.errors:
            return render(request, "submissions.html", context, status_code=400)
        try:
            page = page_submissions(
                s,
                filters.where,
                sort=filters.sort,
                descending=filters.descending,
                cursor=cursor,
                limit=settings.dashboard_page_size,
            )
        except InvalidCursor:
            filters.errors.append("that page link is out of date: start again from the first page")
            return render(request, "submissions.html", context, status_code=400)
        context.update(
            rows=page.items,
            reasons_of=reasons_of(s, [x.id for x in page.items]),
            carrier_codes=carrier_codes(s),
            total=count_submissions(s, filters.where),
            next_cursor=page.next_cursor,
        )
        return render(request, "submissions.html", context)


def scoped_submission(session: Session, viewer: Viewer, submission_id: str) -> Submission:
    """The submission if the viewer may see it; "not found" otherwise, exactly as for no submission."""
    try:
        submission = get_submission(session, submission_id)
    except UnknownSubmission:
        raise NotFound("submission") from None
    if not viewer.can_see(submission):
        raise NotFound("submission")
    return submission


@dataclass(frozen=True)
class PipelineView:
    name: str
    judgments: Judgments
    shapes: list[overlay.Shape]
    licence_shapes: list[overlay.Shape]


def pipeline_views(session: Session, submission_id: str) -> list[PipelineView]:
    """Each pipeline's latest judgments, the baseline and the MLLM first."""
    latest = latest_judgments(session, submission_id)
    order = [p for p in COMPARED if p in latest] + sorted(p for p in latest if p not in COMPARED)
    views = []
    for name in order:
        judgments = Judgments.model_validate(latest[name].data)
        views.append(PipelineView(name, judgments, overlay.scene_shapes(judgments), overlay.licence_shapes(judgments)))
    return views


_ORIENTATION = 0x0112  # EXIF tag; values 5-8 turn the image a quarter
_QUARTER_TURNS = (5, 6, 7, 8)


def oriented_size(source: bytes | Path) -> tuple[int, int]:
    """An image's size once its EXIF orientation is applied, read from its header alone."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        width, height = image.size
        if image.getexif().get(_ORIENTATION) in _QUARTER_TURNS:
            width, height = height, width
        return width, height


def licence_photo_size(blobs: PhotoStore, sha256: str) -> tuple[int, int] | None:
    """The licence photo's oriented size from its header alone (one ranged read of the store), the
    whole photo only where the header runs past that (a huge EXIF block); None if it is gone."""
    try:
        header = blobs.head(sha256, HEADER_BYTES)  # a store that is away is said so, not retried twice
        try:
            return oriented_size(header)
        except Exception:  # the header did not fit, PIL could not tell: any parse error, read it all
            return oriented_size(blobs.get(sha256))
    except MissingBlob:
        return None


def photo_size(views: list[PipelineView], data: bytes | None) -> tuple[int, int] | None:
    """The scene photo's size as the pipelines saw it (EXIF orientation applied)."""
    for view in views:
        if view.judgments.quality.width and view.judgments.quality.height:
            return view.judgments.quality.width, view.judgments.quality.height
    return oriented_size(data) if data is not None else None


@dataclass(frozen=True, slots=True)
class PhotoOrigin:
    """Where and how the photo was taken, as its EXIF says, beside the registered site it names."""

    exif: ExifFacts
    site: Site | None  # the registered site the upload names; None: free text or none
    distance_m: float | None  # from the photo's position to the site's, where both are known
    editor: str | None  # the known editor EXIF Software names


def photo_origin(session: Session, submission: Submission) -> PhotoOrigin:
    exif = ExifFacts.stored(
        submission.exif_findings, submission.gps_latitude, submission.gps_longitude, submission.gps_time
    )
    site = find_site(session, submission.carrier_id, submission.site) if submission.site else None
    distance = None
    if site is not None and site.latitude is not None and site.longitude is not None and exif.has_position:
        assert exif.latitude is not None and exif.longitude is not None
        distance = geo.distance_m(
            geo.Position(exif.latitude, exif.longitude), geo.Position(site.latitude, site.longitude)
        )
    return PhotoOrigin(exif, site, distance, edited_by(exif.software))


def detail_context(session: Session, request: Request, viewer: Viewer, submission: Submission) -> dict[str, object]:
    store = request.app.state.store
    views = pipeline_views(session, submission.id)
    try:
        photo_data: bytes | None = store.blobs.get(submission.photo_sha256)
    except MissingBlob:
        photo_data = None
    licence_sha = submission.driver.licence_sha256
    has_licence = bool(licence_sha) and store.blobs.exists(licence_sha)
    licence_size = licence_photo_size(store.blobs, licence_sha) if has_licence else None
    return {
        "s": submission,
        "carrier": submission.carrier,
        "views": views,
        "rows": judgment_rows([v.judgments for v in views]) if views else [],
        "size": photo_size(views, photo_data),
        "has_photo": photo_data is not None,
        "has_licence": has_licence,
        "licence_size": licence_size,
        "verdicts": list(reversed(submission.verdicts)),
        "events": audit.list_events(session, subject_type="submission", subject_id=submission.id),
        "reasons": [r.reason for r in submission.reasons],
        "reviewable": viewer.may(Role.REVIEWER) and in_queue(session, submission.id),
        "machine": MACHINE,
        "origin": photo_origin(session, submission),
    }


@router.get("/submissions/{submission_id}")
def submission_page(request: Request, submission_id: str, viewer: SignedIn) -> Response:
    with request.app.state.read_sessions() as s:
        submission = scoped_submission(s, viewer, submission_id)
        return render(request, "submission.html", detail_context(s, request, viewer, submission))


# Renditions of photos a browser cannot show as stored, by digest: a reviewer going back and forth
# between a submission and the queue must not cost a decode each time. About 64 x 0.5 MiB at most.
_RENDITIONS: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
_RENDITIONS_KEPT = 64
_RENDITIONS_LOCK = threading.Lock()


def image_response(request: Request, sha256: str | None, what: str = "photo") -> Response:
    """The photo as the pipelines saw it (turned by its EXIF orientation, so the boxes fit), as a
    browser can show it; a 404 naming ``what`` when there is none or it is not stored."""
    if not sha256:
        raise NotFound(what)
    with _RENDITIONS_LOCK:
        shown = _RENDITIONS.get(sha256)
        if shown is not None:
            _RENDITIONS.move_to_end(sha256)
    if shown is None:
        try:
            data = request.app.state.store.blobs.get(sha256)
            shown = rendition(data, **request.app.state.settings.photo_limits)
        except (MissingBlob, PhotoRejected):  # gone, or stored before today's limits: not shown
            raise NotFound(what) from None
        if shown[0] is not data:
            with _RENDITIONS_LOCK:
                _RENDITIONS[sha256] = shown
                while len(_RENDITIONS) > _RENDITIONS_KEPT:
                    _RENDITIONS.popitem(last=False)
    data, kind = shown
    # Private: the photo is only for people allowed to see the submission.
    return Response(data, media_type=f"image/{kind}", headers={"Cache-Control": "private, max-age=3600"})


@router.get("/submissions/{submission_id}/photo")
def submission_photo(request: Request, submission_id: str, viewer: SignedIn) -> Response:
    with request.app.state.read_sessions() as s:
        sha = scoped_submission(s, viewer, submission_id).photo_sha256
    return image_response(request, sha)


@router.get("/submissions/{submission_id}/licence")
def submission_licence(request: Request, submission_id: str, viewer: SignedIn) -> Response:
    with request.app.state.read_sessions() as s:
        sha = scoped_submission(s, viewer, submission_id).driver.licence_sha256
    return image_response(request, sha, "licence photo")
