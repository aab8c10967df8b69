"""What was decided about submissions: judgments, verdict history, reviews and plate reviews.

Every function flushes and never commits; each change writes an audit event in the same
transaction. Recording is idempotent where a task may run twice: the same judgment (by pipeline
and model version) and the same machine verdict are each kept once, enforced by unique indexes
and ``INSERT … ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance import agreement, plates
from compliance.judgments import Judgments
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import InvalidVerdict, UnknownSubmission
from compliance.store.models import (
    MACHINE,
    JudgmentRecord,
    PlateReview,
    Submission,
    SubmissionReason,
    SubmissionStatus,
    VerdictRecord,
    utcnow,
)
from compliance.store.submissions import _insert_unless_present, _locked, set_status
from compliance.verdicts import Corrections, Outcome, ReasonCode, Verdict


def models_version(models: Mapping[str, str]) -> str:
    """A stable key for a set of models and their versions: the same models give the same key."""
    canonical = json.dumps(dict(sorted(models.items())), ensure_ascii=False, separators=(",", ":"))
    return "models-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def record_judgment(
    session: Session,
    submission_id: str,
    judgments: Judgments,
    *,
    model_version: str | None = None,
    actor: str = SYSTEM,
) -> JudgmentRecord:
    """Keep a pipeline's judgments. Recording the same (submission, pipeline, model version) again
    returns the first record unchanged. ``model_version`` defaults to ``models_version`` of the
    provenance's models."""
    if session.get(Submission, submission_id) is None:
        raise UnknownSubmission(submission_id)
    pipeline = judgments.provenance.pipeline
    version = model_version or models_version(judgments.provenance.models)
    new_id = _insert_unless_present(
        session,
        JudgmentRecord.__table__,
        {
            "submission_id": submission_id,
            "pipeline": pipeline,
            "model_version": version,
            "data": judgments.model_dump(mode="json"),
            "created_at": utcnow(),
        },
        conflict=("submission_id", "pipeline", "model_version"),
    )
    if new_id is not None:
        record_event(
            session,
            actor=actor,
            action="judgment.record",
            subject_type="submission",
            subject_id=submission_id,
            after={"judgment_id": new_id, "pipeline": pipeline, "model_version": version},
        )
        if pipeline in agreement.COMPARED:
            _compare_pipelines(session, submission_id)
        return session.get_one(JudgmentRecord, new_id)
    existing = session.scalar(
        sa.select(JudgmentRecord).where(
            JudgmentRecord.submission_id == submission_id,
            JudgmentRecord.pipeline == pipeline,
            JudgmentRecord.model_version == version,
        )
    )
    assert existing is not None
    return existing


def latest_judgments(session: Session, submission_id: str) -> dict[str, JudgmentRecord]:
    """Each pipeline's most recent judgments of the submission, by pipeline name."""
    records = session.scalars(
        sa.select(JudgmentRecord)
        .where(JudgmentRecord.submission_id == submission_id)
        .order_by(JudgmentRecord.created_at, JudgmentRecord.id)
    )
    return {r.pipeline: r for r in records}


def _compare_pipelines(session: Session, submission_id: str) -> None:
    """Keep the submission's copy of whether the baseline and the MLLM agree in step with their
    latest judgments, so that reports count agreement without reading JSON."""
    latest = latest_judgments(session, submission_id)
    if not all(p in latest for p in agreement.COMPARED):
        return
    first, second = (Judgments.model_validate(latest[p].data) for p in agreement.COMPARED)
    result = agreement.compare(first, second)
    session.execute(
        sa.update(Submission)
        .where(Submission.id == submission_id)
        .values(pipelines_agree=result.agree, pipelines_disagree_on=",".join(result.disagreeing) or None)
    )


def record_verdict(
    session: Session,
    submission_id: str,
    verdict: Verdict,
    *,
    model_version: str | None = None,
    decided_by: str = MACHINE,
    note: str | None = None,
    actor: str | None = None,
) -> VerdictRecord:
    """Keep a verdict (and the judgments it was decided from) and make it the current one.

    Older verdicts stay, marked not current. A machine verdict with the same (pipeline, model
    version, policy version) as an earlier one is the same decision: the earlier record is
    returned and nothing changes. A reviewer's verdict (``decided_by`` = their id) needs a note.
    """
    if decided_by != MACHINE and not (note and note.strip()):
        raise InvalidVerdict(f"reviewer {decided_by!r} must say why (note)")
    submission = _locked(session, submission_id)
    judgment = record_judgment(session, submission_id, verdict.judgments, model_version=model_version)
    values = {
        "submission_id": submission_id,
        "judgment_id": judgment.id,
        "outcome": verdict.outcome,
        "reasons": [r.value for r in verdict.reasons],
        "results": [r.model_dump(mode="json") for r in verdict.results],
        "policy_version": verdict.policy_version,
        "pipeline": judgment.pipeline,
        "model_version": judgment.model_version,
        "decided_by": decided_by,
        "note": note,
        "is_current": False,
        "created_at": utcnow(),
    }
    return _add_verdict(session, submission, values, actor=actor or decided_by)


def record_review(
    session: Session,
    submission_id: str,
    *,
    reviewer: str,
    outcome: Outcome | str,
    note: str,
    reasons: Sequence[ReasonCode | str] = (),
    corrections: Corrections | None = None,
) -> VerdictRecord:
    """A person's decision where there is no new machine verdict to record: it takes the
    pipeline, versions, judgment and check results of the verdict it overrides. ``corrections``
    say what the photo really shows where the machine got it wrong (training data, reports)."""
    if reviewer == MACHINE:
        raise InvalidVerdict(f"{MACHINE!r} is not a reviewer")
    if not note.strip():
        raise InvalidVerdict(f"reviewer {reviewer!r} must say why (note)")
    submission = _locked(session, submission_id)
    overridden = _current_verdict(session, submission_id)
    values = {
        "submission_id": submission_id,
        "judgment_id": overridden.judgment_id if overridden else None,
        "outcome": Outcome(outcome),
        "reasons": [ReasonCode(r).value for r in reasons],
        "results": overridden.results if overridden else [],
        "policy_version": overridden.policy_version if overridden else "",
        "pipeline": overridden.pipeline if overridden else "",
        "model_version": overridden.model_version if overridden else "",
        "decided_by": reviewer,
        "note": note,
        "corrections": corrections.model_dump(mode="json", exclude_none=True) if corrections else None,
        "is_current": False,
        "created_at": utcnow(),
    }
    return _add_verdict(session, submission, values, actor=reviewer)


def _add_verdict(session: Session, submission: Submission, values: dict[str, Any], *, actor: str) -> VerdictRecord:
    table = VerdictRecord.__table__
    if values["decided_by"] == MACHINE:
        new_id = _insert_unless_present(
            session,
            table,
            values,
            conflict=("submission_id", "pipeline", "model_version", "policy_version"),
            # A literal, not a bound parameter: once psycopg prepares the statement (its 5th run on a
            # connection) a parameter no longer matches the partial index's predicate.
            where=sa.text(f"decided_by = '{MACHINE}'"),
        )
        if new_id is None:
            existing = session.scalar(
                sa.select(VerdictRecord).where(
                    VerdictRecord.submission_id == values["submission_id"],
                    VerdictRecord.pipeline == values["pipeline"],
                    VerdictRecord.model_version == values["model_version"],
                    VerdictRecord.policy_version == values["policy_version"],
                    VerdictRecord.decided_by == MACHINE,
                )
            )
            assert existing is not None
            if submission.status is not SubmissionStatus.DECIDED:
                # A re-delivered task moved it back to processing; the decision already stands.
                set_status(session, submission.id, SubmissionStatus.DECIDED, actor=actor, reason="already decided")
            return existing
    else:
        new_id = session.execute(sa.insert(table).values(values).returning(table.c.id)).scalar_one()

    previous = _current_verdict(session, submission.id)
    # Clear the old flag before setting the new one: at most one current verdict is a unique index.
    session.execute(
        sa.update(VerdictRecord)
        .where(VerdictRecord.submission_id == submission.id, VerdictRecord.is_current.is_(True))
        .values(is_current=False)
    )
    session.execute(sa.update(VerdictRecord).where(VerdictRecord.id == new_id).values(is_current=True))
    status_before = submission.status
    submission.status = SubmissionStatus.DECIDED
    session.flush()
    record = session.get_one(VerdictRecord, new_id, populate_existing=True)
    _copy_current_verdict(session, submission, record)
    before, after = verdict_event(
        _verdict_values(record),
        status_before=status_before.value,
        previous_id=previous.id if previous else None,
        previous_outcome=previous.outcome if previous else None,
    )
    record_event(
        session,
        actor=actor,
        action="verdict.record",
        subject_type="submission",
        subject_id=submission.id,
        before=before,
        after=after,
        reason=record.note,
    )
    return record


def _copy_current_verdict(session: Session, submission: Submission, record: VerdictRecord) -> None:
    """Keep the submission's copy of its current verdict (outcome, time, decider, reasons) in step."""
    person = record.decided_by != MACHINE
    vehicle = submission.vehicle if person else None
    rows = current_verdict_rows(
        _verdict_values(record),
        carrier_id=submission.carrier_id,
        submitted_at=submission.created_at,
        judged_plate=_judged_plate(session, record) if person else None,
        registered_plate=vehicle.registered_plate if vehicle is not None else None,
        registered_colour=vehicle.plate_color if vehicle is not None else None,
    )
    for name, value in rows.submission.items():
        setattr(submission, name, value)
    session.execute(sa.delete(SubmissionReason).where(SubmissionReason.submission_id == submission.id))
    if rows.reasons:
        session.execute(sa.insert(SubmissionReason), rows.reasons)
    session.execute(sa.delete(PlateReview).where(PlateReview.submission_id == submission.id))
    if rows.plate_review is not None:
        session.execute(sa.insert(PlateReview).values(rows.plate_review))
    session.flush()
    session.expire(submission, ["reasons"])


def _verdict_values(record: VerdictRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _VERDICT_FIELDS}


_VERDICT_FIELDS = (
    "id",
    "submission_id",
    "outcome",
    "reasons",
    "decided_by",
    "pipeline",
    "model_version",
    "policy_version",
    "corrections",
    "created_at",
)


def _judged_plate(session: Session, record: VerdictRecord) -> dict[str, Any] | None:
    """The plate reading in the judgments the verdict was decided from."""
    if record.judgment_id is None:
        return None
    data = session.execute(sa.select(JudgmentRecord.data).where(JudgmentRecord.id == record.judgment_id)).scalar_one()
    return data.get("plate")


class CurrentVerdictRows(NamedTuple):
    """What making a verdict current writes besides the verdict row itself."""

    # The submission's copy of its current verdict: outcome, decided_at, decided_by, verdict_seconds.
    submission: dict[str, Any]
    # submission_reasons rows: the verdict's reason codes, once each, sorted.
    reasons: list[dict[str, Any]]
    # The plate_reviews row: a person's verdict on a plate that is known; else None.
    plate_review: dict[str, Any] | None


def current_verdict_rows(
    verdict: Mapping[str, Any],
    *,
    carrier_id: int,
    submitted_at: datetime,
    judged_plate: Mapping[str, Any] | None = None,
    registered_plate: str | None = None,
    registered_colour: str | None = None,
) -> CurrentVerdictRows:
    """The rows that make ``verdict`` (a verdicts row's values) its submission's current one.

    The one place this bookkeeping is done: ``_add_verdict`` writes these rows for one verdict at
    a time, ``compliance.demo_data`` for thousands at once. ``judged_plate`` is the plate reading
    in the judgments the verdict was decided from; ``registered_*`` the claimed vehicle's plate.
    """
    submission_id = verdict["submission_id"]
    decided_at: datetime = verdict["created_at"]
    columns = {
        "outcome": verdict["outcome"],
        "decided_at": decided_at,
        "decided_by": verdict["decided_by"],
        "verdict_seconds": max(0, int((decided_at - submitted_at).total_seconds())),
    }
    reasons = [
        {"submission_id": submission_id, "reason": code, "carrier_id": carrier_id, "created_at": submitted_at}
        for code in sorted(set(verdict["reasons"]))
    ]
    review = None
    if verdict["decided_by"] != MACHINE:
        plate = judged_plate or {}
        review = plate_review_row(
            submission_id=submission_id,
            carrier_id=carrier_id,
            created_at=submitted_at,
            reading=plate.get("text"),
            read_colour=plate.get("color"),
            corrections=verdict.get("corrections"),
            registered_plate=registered_plate,
            registered_colour=registered_colour,
        )
    return CurrentVerdictRows(columns, reasons, review)


def verdict_event(
    verdict: Mapping[str, Any],
    *,
    status_before: str,
    previous_id: int | None,
    previous_outcome: Outcome | str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit event's before and after for making ``verdict`` (a verdicts row's values) current."""
    before = {
        "status": status_before,
        "verdict_id": previous_id,
        "outcome": Outcome(previous_outcome).value if previous_outcome is not None else None,
    }
    after = {
        "status": SubmissionStatus.DECIDED.value,
        "verdict_id": verdict["id"],
        "outcome": Outcome(verdict["outcome"]).value,
        "reasons": verdict["reasons"],
        "decided_by": verdict["decided_by"],
        "pipeline": verdict["pipeline"],
        "model_version": verdict["model_version"],
        "policy_version": verdict["policy_version"],
        "corrections": verdict["corrections"],
    }
    return before, after


def plate_review_row(
    *,
    submission_id: str,
    carrier_id: int,
    created_at: datetime,
    reading: str | None,
    read_colour: str | None,
    corrections: Mapping[str, Any] | None,
    registered_plate: str | None,
    registered_colour: str | None,
) -> dict[str, Any] | None:
    """The plate_reviews row for a person's verdict on a plate ``reading``: the reading was right
    when the person let it stand; the true plate is their correction, else the reading, else the
    registered plate; the colour is the registered vehicle's, else the person's, else the reading's.
    None when nothing is known of the plate."""
    corrections = corrections or {}
    corrected = corrections.get("plate_text")
    truth = corrected or reading or registered_plate
    if not truth:
        return None
    colour = registered_colour or corrections.get("plate_color") or read_colour
    return {
        "submission_id": submission_id,
        "carrier_id": carrier_id,
        "created_at": created_at,
        "colour": colour or "unknown",
        "province": plates.parse(truth).province or truth[:1],
        "read_right": reading is not None and (corrected is None or corrected == reading),
    }


def _current_verdict(session: Session, submission_id: str) -> VerdictRecord | None:
    return session.scalar(
        sa.select(VerdictRecord).where(VerdictRecord.submission_id == submission_id, VerdictRecord.is_current.is_(True))
    )
