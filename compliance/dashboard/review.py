"""The review queue: one photo at a time, decided by keyboard, the next one opened at once.

A decision is a person's verdict recorded by ``record_review``: it becomes the current verdict,
the machine's stay in the history, and the audit trail gets who, when, before, after and why.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from compliance import plates
from compliance.dashboard.language import gettext
from compliance.dashboard.security import NotFound, Reviewer, Viewer, check_csrf
from compliance.dashboard.submissions import detail_context, scoped_submission
from compliance.dashboard.templating import render
from compliance.judgments import Answer, Judgments
from compliance.reports.queue import in_queue, next_in_queue, queue_size
from compliance.service.reviews import Review, ReviewConflict, record_review
from compliance.store.models import Submission
from compliance.store.pages import SubmissionFilter
from compliance.store.registry import find_carrier
from compliance.verdicts import Corrections, Outcome, ReasonCode

router = APIRouter()

# Offered first (keys 1-9) when overruling: what reviewers most often find.
QUICK_REASONS = (
    ReasonCode.PLATE_MISMATCH,
    ReasonCode.FACE_MISMATCH,
    ReasonCode.PERSON_MISSING,
    ReasonCode.VEHICLE_MISSING,
    ReasonCode.PLATE_UNREADABLE,
    ReasonCode.LOW_QUALITY_BLUR,
    ReasonCode.LOW_QUALITY_DARK,
    ReasonCode.DUPLICATE_PHOTO,
    ReasonCode.CAPTURE_TIME_OUTSIDE_WINDOW,
)


def _reason_choices() -> list[str]:
    quick = [r.value for r in QUICK_REASONS]
    return quick + sorted(r.value for r in ReasonCode if r.value not in quick)


def _scope(viewer: Viewer, session: Session, carrier: str) -> SubmissionFilter:
    """The queue is the viewer's carrier's; the operator's staff may pick one carrier by code."""
    if viewer.all_carriers and carrier:
        found = find_carrier(session, carrier)
        if found is None:
            raise NotFound("carrier")
        return SubmissionFilter(carrier_id=found.id)
    return SubmissionFilter(carrier_id=viewer.carrier_id)


def _queue_url(carrier: str, after: str | None = None) -> str:
    query = urlencode({k: v for k, v in (("carrier", carrier), ("after", after)) if v})
    return "/dashboard/review" + (f"?{query}" if query else "")


def _decided_judgments(submission: Submission) -> Judgments | None:
    """The judgments the current verdict was decided from: what the reviewer corrects."""
    current = submission.current_verdict
    if current is not None and current.judgment is not None:
        return Judgments.model_validate(current.judgment.data)
    return None


def _page(
    request: Request,
    session: Session,
    viewer: Viewer,
    submission: Submission,
    *,
    where: SubmissionFilter,
    carrier: str,
    after: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    context = detail_context(session, request, viewer, submission)
    following = next_in_queue(session, where, after=submission.id, limit=1)
    decided = _decided_judgments(submission)
    current = submission.current_verdict
    context.update(
        in_queue=in_queue(session, submission.id),
        queue_size=queue_size(session, where),
        after=after or "",
        carrier_param=carrier,
        skip_url=_queue_url(carrier, submission.id),
        next_photo=f"/dashboard/submissions/{following[0].submission_id}/photo" if following else None,
        reason_choices=_reason_choices(),
        quick_reasons=[r.value for r in QUICK_REASONS],
        machine_plate=(decided.plate.text if decided else None) or "",
        machine_face=(decided.face.same_person.value if decided else Answer.UNKNOWN.value),
        verdict_id=current.id if current is not None else "",
        error=error,
    )
    return render(request, "review.html", context, status_code=status_code)


@router.get("/review")
def review_next(request: Request, viewer: Reviewer, after: str | None = None, carrier: str = "") -> Response:
    with request.app.state.read_sessions() as s:
        where = _scope(viewer, s, carrier)
        items = next_in_queue(s, where, after=after, limit=1)
        if not items and after:
            items = next_in_queue(s, where, limit=1)  # past the end: wrap round to what was skipped
        if not items:
            return render(request, "review_empty.html", {"carrier_param": carrier})
        submission = scoped_submission(s, viewer, items[0].submission_id)
        return _page(request, s, viewer, submission, where=where, carrier=carrier, after=after)


@router.get("/review/{submission_id}")
def review_one(request: Request, submission_id: str, viewer: Reviewer, carrier: str = "") -> Response:
    with request.app.state.read_sessions() as s:
        where = _scope(viewer, s, carrier)
        submission = scoped_submission(s, viewer, submission_id)
        return _page(request, s, viewer, submission, where=where, carrier=carrier, after=None)


@router.post("/review/{submission_id}", dependencies=[Depends(check_csrf)])
def decide(
    request: Request,
    submission_id: str,
    viewer: Reviewer,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    plate_text: Annotated[str, Form()] = "",
    same_person: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
    verdict_id: Annotated[str, Form()] = "",
    after: Annotated[str, Form()] = "",
    carrier: Annotated[str, Form()] = "",
) -> Response:
    def decided_meanwhile() -> Response:
        with request.app.state.read_sessions() as s:
            latest = scoped_submission(s, viewer, submission_id).current_verdict
            return refused(s, _decided_meanwhile(latest.decided_by if latest is not None else gettext("nobody")))

    def refused(s: Session, message: str) -> Response:
        where = _scope(viewer, s, carrier)
        submission = scoped_submission(s, viewer, submission_id)
        return _page(
            request, s, viewer, submission, where=where, carrier=carrier, after=after, error=message, status_code=400
        )

    with request.app.state.read_sessions() as s:
        _scope(viewer, s, carrier)
        submission = scoped_submission(s, viewer, submission_id)
        current = submission.current_verdict
        if current is None or str(current.id) != verdict_id or not in_queue(s, submission.id):
            by = current.decided_by if current is not None else gettext("nobody")
            return refused(s, _decided_meanwhile(by))
        if decision not in ("approve", "reject"):
            return refused(s, gettext("choose: approve (A) or reject with a reason (F)"))
        reasons: list[ReasonCode] = []
        if decision == "reject":
            if reason not in ReasonCode.__members__:
                return refused(s, gettext("a rejection needs a reason code: pick one (keys 1-9) and press F again"))
            reasons = [ReasonCode(reason)]
        try:
            corrections = _corrections(_decided_judgments(submission), plate_text, same_person)
        except (ValidationError, ValueError) as exc:
            message = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            return refused(s, gettext("correction refused: %(why)s", why=message))
        seen = current.id
    outcome = Outcome.PASS if decision == "approve" else Outcome.FAIL
    why = note.strip() or (
        "approved in the review queue" if decision == "approve" else f"rejected in the review queue: {reason}"
    )
    try:
        # The API's use case too: kept as the current verdict, and announced to the carrier's webhooks.
        record_review(
            request.app.state.store,
            request.app.state.publisher,
            submission_id,
            Review(outcome, why, reasons, corrections),
            reviewer=viewer.username,
            over_verdict=seen,
        )
    except ReviewConflict:
        return decided_meanwhile()
    return RedirectResponse(_queue_url(carrier, after or None), status_code=303)


def _decided_meanwhile(by: str) -> str:
    return gettext("this submission was decided meanwhile (by %(who)s): nothing was recorded", who=by)


def _corrections(decided: Judgments | None, plate_text: str, same_person: str) -> Corrections | None:
    """Only what the reviewer changed from what the machine said."""
    values: dict[str, object] = {}
    machine_plate = decided.plate.text if decided else None
    if plate_text.strip():
        typed = plates.normalise(plate_text)
        if not typed:
            raise ValueError(gettext("%(text)s holds no plate characters", text=repr(plate_text)))
        if typed != (machine_plate or ""):
            values["plate_text"] = typed
    if same_person:
        answer = Answer(same_person)
        if decided is None or answer != decided.face.same_person:
            values["same_person"] = answer
    corrections = Corrections.model_validate(values)
    return None if corrections.empty else corrections
