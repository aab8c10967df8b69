"""``/v1/submissions``: upload a photo (validated, stored, queued), read it back, list, review."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, File, Header, Path, Query, Response, UploadFile, status

from compliance import metrics
from compliance.api.deps import CallerDep, LanguageDep, PublisherDep, SettingsDep, StoreDep, requires
from compliance.api.errors import ApiError, invalid, not_found, photo_error, store_error
from compliance.api.schemas import (
    Accepted,
    ErrorResponse,
    ReviewIn,
    SubmissionDetail,
    SubmissionPageOut,
    SubmissionSummary,
    links,
)
from compliance.api.uploads import UploadForm, upload_form
from compliance.photos import PhotoRejected, receive_photo
from compliance.service import intake
from compliance.service.reviews import Review, record_review
from compliance.store import pages, submissions
from compliance.store.errors import InvalidCursor, StoreError, UnknownSubmission
from compliance.store.models import EARLIEST, LATEST, SubmissionStatus, storable_time
from compliance.verdicts import Outcome, ReasonCode

log = logging.getLogger("compliance.api")

router = APIRouter(prefix="/v1/submissions", tags=["submissions"])

# Uploading and reading need 'submit'; a review needs 'review' (a driver app's key cannot pass its own uploads).
_SUBMIT = [Depends(requires("submit"))]
_REVIEW = [Depends(requires("review"))]

SubmissionId = Annotated[str, Path(pattern=r"^[0-9A-Za-z-]{1,64}$", description="the id given at upload")]

# Printable, no spaces: UUIDs, ULIDs and the like. Longer than the column would be cut, so refused.
IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_ERRORS = {
    400: {"model": ErrorResponse, "description": "malformed header, or a body that cannot be parsed"},
    401: {"model": ErrorResponse, "description": "no valid API key"},
    403: {"model": ErrorResponse, "description": "the key lacks the scope: 'submit', or 'review' to review"},
    404: {"model": ErrorResponse, "description": "no such submission for this carrier"},
    409: {"model": ErrorResponse, "description": "Idempotency-Key reused with another photo"},
    413: {"model": ErrorResponse, "description": "photo over the size or pixel limit"},
    415: {"model": ErrorResponse, "description": "not an image, or a format that is not accepted"},
    422: {"model": ErrorResponse, "description": "invalid field, unknown driver or vehicle, undecodable photo"},
}


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise invalid("invalid_value", f"{name} needs a UTC offset, e.g. 2026-11-25T08:00:00+08:00")
    if value is not None and not storable_time(value):
        raise invalid(
            "invalid_value", f"{name} is outside the times the store holds ({EARLIEST.year}-{LATEST.year - 1})"
        )
    return value


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=_ERRORS,
    dependencies=_SUBMIT,
    summary="Upload a photo of a driver by the vehicle",
    openapi_extra=links(
        202,
        GetSubmission=("get", "/v1/submissions/{submission_id}", "submission_id"),
        ReviewSubmission=("post", "/v1/submissions/{submission_id}/review", "submission_id"),
    ),
)
def create_submission(
    response: Response,
    caller: CallerDep,
    store: StoreDep,
    settings: SettingsDep,
    publisher: PublisherDep,
    photo: Annotated[UploadFile, File(description="the scene photo: the driver by the vehicle")],
    form: Annotated[UploadForm, Depends(upload_form)],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", description="1-128 of A-Z a-z 0-9 . _ : -")
    ] = None,
) -> Accepted:
    """Validates the photo and fields, stores the photo (content-addressed) and the submission,
    queues it for judging and answers at once. The same Idempotency-Key with the same photo
    returns the same submission; with another photo it is a 409."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1-128 of A-Z a-z 0-9 . _ : -")
    with metrics.timed("accept.validate"):
        upload = form.upload(caller, idempotency_key=idempotency_key)
        data = photo.file.read(settings.max_upload_bytes + 1)
        try:
            scene = receive_photo(data, **settings.photo_limits)
        except PhotoRejected as exc:
            metrics.UPLOADS.labels("rejected").inc()
            raise photo_error(exc) from None
    with metrics.timed("accept.store"):
        try:
            accepted = intake.receive(store, publisher, settings, scene, upload)
        except StoreError as exc:
            metrics.UPLOADS.labels("rejected").inc()
            raise store_error(exc) from None
    response.headers["Location"] = f"/v1/submissions/{accepted.submission_id}"
    metrics.UPLOADS.labels("accepted" if accepted.created else "replayed").inc()
    return Accepted(id=accepted.submission_id, status=accepted.status, created=accepted.created)


def _owned(store: StoreDep, caller: CallerDep, submission_id: str, language: LanguageDep) -> SubmissionDetail:
    with store.sessions() as s:
        try:
            sub = submissions.get_submission(s, submission_id)
        except UnknownSubmission:
            raise not_found("submission", submission_id) from None
        if sub.carrier_id != caller.carrier_id:
            raise not_found("submission", submission_id)
        return SubmissionDetail.of(sub, language)


@router.get("/{submission_id}", response_model=SubmissionDetail, responses=_ERRORS, dependencies=_SUBMIT)
def get_submission(
    submission_id: SubmissionId, caller: CallerDep, store: StoreDep, language: LanguageDep
) -> SubmissionDetail:
    """Status, the current verdict with its reasons (codes, and their explanations in the language
    of Accept-Language), each pipeline's judgments and the verdict history."""
    return _owned(store, caller, submission_id, language)


@router.get("", response_model=SubmissionPageOut, responses=_ERRORS, dependencies=_SUBMIT)
def list_submissions(
    caller: CallerDep,
    store: StoreDep,
    language: LanguageDep,
    status_: Annotated[list[SubmissionStatus] | None, Query(alias="status")] = None,
    verdict: Annotated[list[Outcome] | None, Query(description="the current verdict's outcome")] = None,
    reason: Annotated[list[ReasonCode] | None, Query()] = None,
    driver_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    vehicle_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    site: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="created at or after, with a UTC offset")] = None,
    until: Annotated[datetime | None, Query(description="created before, with a UTC offset")] = None,
    reviewed: Annotated[bool | None, Query()] = None,
    sort: Annotated[str, Query(pattern="^(created_at|status|outcome|site|plate)$")] = "created_at",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    count: Annotated[bool, Query(description="also count every match (slower)")] = False,
) -> SubmissionPageOut:
    """The carrier's submissions, filtered, one page at a time (keyset cursor)."""
    where = pages.SubmissionFilter(
        carrier_id=caller.carrier_id,
        status=status_ or None,
        outcome=verdict or None,
        reason=reason or None,
        driver_id=driver_id,
        vehicle_id=vehicle_id,
        site=site,
        since=_aware("since", since),
        until=_aware("until", until),
        reviewed=reviewed,
    )
    with store.sessions() as s:
        try:
            page = pages.page_submissions(s, where, sort=sort, descending=order == "desc", cursor=cursor, limit=limit)
        except InvalidCursor as exc:
            raise invalid("invalid_cursor", str(exc)) from None
        total = pages.count_submissions(s, where) if count else None
        return SubmissionPageOut(
            items=[SubmissionSummary.of(sub, language) for sub in page.items], next_cursor=page.next_cursor, total=total
        )


@router.post(
    "/{submission_id}/review",
    status_code=status.HTTP_201_CREATED,
    response_model=SubmissionDetail,
    responses=_ERRORS,
    dependencies=_REVIEW,
    openapi_extra=links(201, GetSubmission=("get", "/v1/submissions/{submission_id}", "submission_id")),
)
def review_submission(
    submission_id: SubmissionId,
    review: ReviewIn,
    caller: CallerDep,
    store: StoreDep,
    publisher: PublisherDep,
    language: LanguageDep,
) -> SubmissionDetail:
    """A person's verdict over the machine's (with a note, and corrections of what the photo shows)."""
    try:
        record_review(
            store,
            publisher,
            submission_id,
            Review(review.outcome, review.note, review.reasons, review.corrections),
            reviewer=caller.actor,
            carrier_ids=frozenset({caller.carrier_id}),
        )
    except UnknownSubmission:
        raise not_found("submission", submission_id) from None
    return _owned(store, caller, submission_id, language)
