"""Submissions and what was decided about them: judgments, verdict history, near-duplicates.

Every function flushes and never commits; each change writes an audit event in the same
transaction. Recording is idempotent where a task may run twice: the same submission (by
idempotency key), the same judgment (by pipeline and model version) and the same machine verdict
are each kept once, enforced by unique indexes and ``INSERT … ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from compliance import agreement, plates
from compliance.judgments import Judgments
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import (
    IdempotencyConflict,
    InvalidCursor,
    InvalidSubmission,
    InvalidVerdict,
    UnknownSubmission,
)
from compliance.store.models import (
    HASH_BAND_BITS,
    HASH_BANDS,
    MACHINE,
    JudgmentRecord,
    PhotoHashBand,
    PlateReview,
    Submission,
    SubmissionReason,
    SubmissionSource,
    SubmissionStatus,
    UtcDateTime,
    VerdictRecord,
    new_submission_id,
    utcnow,
)
from compliance.store.registry import get_driver, get_vehicle
from compliance.verdicts import Corrections, Outcome, ReasonCode, Verdict

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PHASH = re.compile(r"[0-9a-f]{16}")
_HASH_BITS = HASH_BANDS * HASH_BAND_BITS
_BAND_MASK = (1 << HASH_BAND_BITS) - 1


class CreatedSubmission(NamedTuple):
    submission: Submission
    # False when the idempotency key named an earlier submission, which is returned instead.
    created: bool


class SimilarPhoto(NamedTuple):
    submission: Submission
    distance: int


# Creating and moving submissions


def create_submission(
    session: Session,
    *,
    carrier_id: int,
    driver_id: int,
    photo_sha256: str,
    photo_phash: str,
    source: SubmissionSource | str,
    vehicle_id: int | None = None,
    claimed_plate: str | None = None,
    capture_time: datetime | None = None,
    job_id: str | None = None,
    site: str | None = None,
    job_start: datetime | None = None,
    job_end: datetime | None = None,
    idempotency_key: str | None = None,
    pipeline: str | None = None,
    status: SubmissionStatus = SubmissionStatus.RECEIVED,
    submission_id: str | None = None,
    actor: str = SYSTEM,
) -> CreatedSubmission:
    """Record an accepted photo (already in the blob store under ``photo_sha256``).

    ``capture_time`` is the EXIF time as read: naive (camera-local) or with the camera's offset.
    ``job_start``/``job_end`` must be timezone-aware.
    """
    source = SubmissionSource(source)
    status = SubmissionStatus(status)
    if not _SHA256.fullmatch(photo_sha256):
        raise InvalidSubmission(f"photo_sha256 is not a SHA-256 hex digest: {photo_sha256!r}")
    phash = _checked_phash(photo_phash)
    if (job_start is None) != (job_end is None):
        raise InvalidSubmission("a job window needs both a start and an end")
    for when in (job_start, job_end):
        if when is not None and when.utcoffset() is None:
            raise InvalidSubmission(f"job window time {when.isoformat()} has no time zone")
    if job_start is not None and job_end is not None and job_end < job_start:
        raise InvalidSubmission("the job window ends before it starts")
    driver = get_driver(session, driver_id, carrier_id=carrier_id)
    if vehicle_id is not None:
        get_vehicle(session, vehicle_id, carrier_id=carrier_id)

    if idempotency_key is not None:
        earlier = _by_idempotency_key(session, carrier_id, idempotency_key)
        if earlier is not None:
            return CreatedSubmission(_same_request(earlier, photo_sha256, idempotency_key), False)

    now = utcnow()
    offset = capture_time.utcoffset() if capture_time is not None else None
    values: dict[str, Any] = {
        "id": submission_id or new_submission_id(),
        "carrier_id": carrier_id,
        "driver_id": driver.id,
        "vehicle_id": vehicle_id,
        "claimed_plate": (plates.normalise(claimed_plate) or None) if claimed_plate is not None else None,
        "photo_sha256": photo_sha256,
        "photo_phash": phash,
        "capture_time": capture_time.replace(tzinfo=None) if capture_time is not None else None,
        "capture_utc_offset_minutes": int(offset.total_seconds() // 60) if offset is not None else None,
        "job_id": job_id,
        "site": site,
        "job_start": job_start,
        "job_end": job_end,
        "source": source,
        "status": status,
        "attempts": 0,
        "idempotency_key": idempotency_key,
        "pipeline": pipeline,
        "created_at": now,
        "updated_at": now,
    }
    if idempotency_key is None:
        new_id = session.execute(sa.insert(Submission).values(values).returning(Submission.id)).scalar_one()
    else:
        new_id = _insert_unless_present(
            session, Submission.__table__, values, conflict=("carrier_id", "idempotency_key"), returning="id"
        )
        if new_id is None:  # a concurrent request with the same key got there first
            earlier = _by_idempotency_key(session, carrier_id, idempotency_key)
            assert earlier is not None
            return CreatedSubmission(_same_request(earlier, photo_sha256, idempotency_key), False)

    value = int(phash, 16)
    session.add_all(
        PhotoHashBand(submission_id=new_id, band=band, value=_band_value(value, band), carrier_id=carrier_id)
        for band in range(HASH_BANDS)
    )
    session.flush()
    submission = session.get_one(Submission, new_id)
    record_event(
        session,
        actor=actor,
        action="submission.create",
        subject_type="submission",
        subject_id=new_id,
        after=_snapshot(submission),
    )
    return CreatedSubmission(submission, True)


def find_by_idempotency_key(session: Session, carrier_id: int, key: str, photo_sha256: str) -> Submission | None:
    """The earlier submission sent with this key, if any; ``IdempotencyConflict`` if it had another photo."""
    earlier = _by_idempotency_key(session, carrier_id, key)
    return _same_request(earlier, photo_sha256, key) if earlier is not None else None


def _by_idempotency_key(session: Session, carrier_id: int, key: str) -> Submission | None:
    return session.scalar(
        sa.select(Submission).where(Submission.carrier_id == carrier_id, Submission.idempotency_key == key)
    )


def _same_request(earlier: Submission, photo_sha256: str, key: str) -> Submission:
    if earlier.photo_sha256 != photo_sha256:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was used for submission {earlier.id} with a different photo"
        )
    return earlier


def _snapshot(submission: Submission) -> dict[str, Any]:
    return {
        "carrier_id": submission.carrier_id,
        "driver_id": submission.driver_id,
        "vehicle_id": submission.vehicle_id,
        "claimed_plate": submission.claimed_plate,
        "photo_sha256": submission.photo_sha256,
        "photo_phash": submission.photo_phash,
        "capture_time": submission.captured_at.isoformat() if submission.captured_at else None,
        "job_id": submission.job_id,
        "site": submission.site,
        "job_start": submission.job_start.isoformat() if submission.job_start else None,
        "job_end": submission.job_end.isoformat() if submission.job_end else None,
        "source": submission.source.value,
        "status": submission.status.value,
        "idempotency_key": submission.idempotency_key,
        "pipeline": submission.pipeline,
    }


def set_status(
    session: Session,
    submission_id: str,
    status: SubmissionStatus | str,
    *,
    error: str | None = None,
    actor: str = SYSTEM,
    reason: str | None = None,
) -> Submission:
    """Move a submission on. Entering ``processing`` counts an attempt; ``error`` is kept as
    ``last_error`` (earlier errors stay in the audit trail)."""
    status = SubmissionStatus(status)
    submission = _locked(session, submission_id)
    before = {"status": submission.status.value, "attempts": submission.attempts}
    submission.status = status
    if status is SubmissionStatus.PROCESSING:
        submission.attempts += 1
    if error is not None:
        submission.last_error = error
    session.flush()
    record_event(
        session,
        actor=actor,
        action="submission.status",
        subject_type="submission",
        subject_id=submission.id,
        before=before,
        after={"status": status.value, "attempts": submission.attempts, "error": error},
        reason=reason,
    )
    return submission


def _locked(session: Session, submission_id: str) -> Submission:
    # Row lock on PostgreSQL so that concurrent workers on one submission take turns; SQLite's
    # BEGIN IMMEDIATE already serialises writers.
    submission = session.scalar(sa.select(Submission).where(Submission.id == submission_id).with_for_update())
    if submission is None:
        raise UnknownSubmission(submission_id)
    return submission


# Judgments and verdicts


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
    record_event(
        session,
        actor=actor,
        action="verdict.record",
        subject_type="submission",
        subject_id=submission.id,
        before={
            "status": status_before.value,
            "verdict_id": previous.id if previous else None,
            "outcome": previous.outcome.value if previous else None,
        },
        after={
            "status": submission.status.value,
            "verdict_id": record.id,
            "outcome": record.outcome.value,
            "reasons": record.reasons,
            "decided_by": record.decided_by,
            "pipeline": record.pipeline,
            "model_version": record.model_version,
            "policy_version": record.policy_version,
            "corrections": record.corrections,
        },
        reason=record.note,
    )
    return record


def _copy_current_verdict(session: Session, submission: Submission, record: VerdictRecord) -> None:
    """Keep the submission's copy of its current verdict (outcome, time, decider, reasons) in step."""
    submission.outcome = record.outcome
    submission.decided_at = record.created_at
    submission.decided_by = record.decided_by
    submission.verdict_seconds = max(0, int((record.created_at - submission.created_at).total_seconds()))
    session.execute(sa.delete(SubmissionReason).where(SubmissionReason.submission_id == submission.id))
    codes = sorted(set(record.reasons))
    if codes:
        session.execute(
            sa.insert(SubmissionReason),
            [
                {
                    "submission_id": submission.id,
                    "reason": c,
                    "carrier_id": submission.carrier_id,
                    "created_at": submission.created_at,
                }
                for c in codes
            ],
        )
    session.execute(sa.delete(PlateReview).where(PlateReview.submission_id == submission.id))
    if record.decided_by != MACHINE:
        review = _plate_review(session, submission, record)
        if review is not None:
            session.execute(sa.insert(PlateReview).values(review))
    session.flush()
    session.expire(submission, ["reasons"])


def _plate_review(session: Session, submission: Submission, record: VerdictRecord) -> dict[str, Any] | None:
    plate: dict[str, Any] = {}
    if record.judgment_id is not None:
        data = session.execute(
            sa.select(JudgmentRecord.data).where(JudgmentRecord.id == record.judgment_id)
        ).scalar_one()
        plate = data.get("plate") or {}
    vehicle = submission.vehicle
    return plate_review_row(
        submission_id=submission.id,
        carrier_id=submission.carrier_id,
        created_at=submission.created_at,
        reading=plate.get("text"),
        read_colour=plate.get("color"),
        corrections=record.corrections,
        registered_plate=vehicle.registered_plate if vehicle is not None else None,
        registered_colour=vehicle.plate_color if vehicle is not None else None,
    )


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


def _insert_unless_present(
    session: Session,
    table: sa.Table,
    values: dict[str, Any],
    *,
    conflict: Sequence[str],
    where: sa.ColumnElement[bool] | None = None,
    returning: str = "id",
) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING: the new row's key, or None if the row was already there.
    Race-free where a check-then-insert is not."""
    dialect = session.connection().dialect.name
    if dialect == "postgresql":
        insert: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect}")
    statement = (
        insert.values(values)
        .on_conflict_do_nothing(index_elements=list(conflict), index_where=where)
        .returning(table.c[returning])
    )
    return session.execute(statement).scalar_one_or_none()


# Reading


def get_submission(session: Session, submission_id: str) -> Submission:
    """The submission with its judgments and verdict history (oldest first) loaded."""
    submission = session.scalar(
        sa.select(Submission)
        .where(Submission.id == submission_id)
        .options(
            selectinload(Submission.judgments),
            selectinload(Submission.verdicts),
            selectinload(Submission.driver),
            selectinload(Submission.vehicle),
        )
    )
    if submission is None:
        raise UnknownSubmission(submission_id)
    return submission


@dataclass(frozen=True, kw_only=True)
class SubmissionFilter:
    """What a list or a report is narrowed to; every field left None matches everything.

    ``outcome`` and ``reason`` are the current verdict's; ``since``/``until`` bound ``created_at``
    (inclusive, exclusive) and must be timezone-aware; ``reviewed`` True keeps submissions whose
    current verdict a person gave, False those the machine decided or nobody has yet;
    ``pipelines_agree`` False keeps those on which the two pipelines' judgments disagree.
    """

    carrier_id: int | None = None
    status: SubmissionStatus | str | Sequence[SubmissionStatus | str] | None = None
    outcome: Outcome | str | Sequence[Outcome | str] | None = None
    reason: ReasonCode | str | Sequence[ReasonCode | str] | None = None
    driver_id: int | None = None
    vehicle_id: int | None = None
    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    reviewed: bool | None = None
    # False keeps submissions on which the baseline and the MLLM disagree, True those they agree on.
    pipelines_agree: bool | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.carrier_id is not None:
            clauses.append(Submission.carrier_id == self.carrier_id)
        if self.status is not None:
            clauses.append(Submission.status.in_([SubmissionStatus(v) for v in _many(self.status)]))
        if self.outcome is not None:
            clauses.append(Submission.outcome.in_([Outcome(v) for v in _many(self.outcome)]))
        if self.reason is not None:
            codes = [ReasonCode(v).value for v in _many(self.reason)]
            clauses.append(
                Submission.id.in_(sa.select(SubmissionReason.submission_id).where(SubmissionReason.reason.in_(codes)))
            )
        if self.driver_id is not None:
            clauses.append(Submission.driver_id == self.driver_id)
        if self.vehicle_id is not None:
            clauses.append(Submission.vehicle_id == self.vehicle_id)
        if self.site is not None:
            clauses.append(Submission.site == self.site)
        if self.since is not None:
            clauses.append(Submission.created_at >= self.since)
        if self.until is not None:
            clauses.append(Submission.created_at < self.until)
        if self.reviewed is True:
            clauses.append(sa.and_(Submission.decided_by.is_not(None), Submission.decided_by != MACHINE))
        elif self.reviewed is False:
            clauses.append(sa.or_(Submission.decided_by.is_(None), Submission.decided_by == MACHINE))
        if self.pipelines_agree is not None:
            clauses.append(Submission.pipelines_agree.is_(self.pipelines_agree))
        return clauses


def _many(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


# Sort keys a list may be ordered by. Each sorts by (key, created_at, id) so that the order is total
# and a page can resume after its last row (keyset pagination: no OFFSET scan at 100,000 rows).
# Nullable keys sort as '' so that a row-value comparison never meets NULL.
# Enums are read as their plain strings (type_coerce changes no SQL, so indexes still serve).
SORT_KEYS: dict[str, sa.ColumnElement[Any]] = {
    "created_at": Submission.created_at,
    "status": sa.type_coerce(Submission.status, sa.String()),
    "outcome": sa.func.coalesce(sa.type_coerce(Submission.outcome, sa.String()), ""),
    "site": sa.func.coalesce(Submission.site, ""),
    "plate": sa.func.coalesce(Submission.claimed_plate, ""),
}


class SubmissionPage(NamedTuple):
    items: list[Submission]
    # Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


def page_submissions(
    session: Session,
    where: SubmissionFilter = SubmissionFilter(),
    *,
    sort: str = "created_at",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> SubmissionPage:
    """One page of submissions matching ``where``, in ``sort`` order, after ``cursor``.

    Driver, vehicle and the current verdict are loaded with each row. Raises ``InvalidCursor`` for
    a cursor this function did not hand out (or one from another sort).
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"cannot sort by {sort!r}; choose from {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000, not {limit}")
    key = SORT_KEYS[sort]
    columns = (key, Submission.created_at, Submission.id)
    query = (
        sa.select(Submission)
        .where(*where.where())
        .options(selectinload(Submission.driver), selectinload(Submission.vehicle), selectinload(Submission.verdicts))
    )
    if cursor is not None:
        after = _decode_cursor(cursor, sort)
        key_type = UtcDateTime() if sort == "created_at" else sa.String()
        values = [sa.literal(after[0], key_type), sa.literal(after[1], UtcDateTime()), sa.literal(after[2])]
        position = sa.tuple_(*columns)
        query = query.where(position < sa.tuple_(*values) if descending else position > sa.tuple_(*values))
    query = query.order_by(*(c.desc() if descending else c.asc() for c in columns)).limit(limit + 1)
    rows = list(session.scalars(query))
    if len(rows) <= limit:
        return SubmissionPage(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    sort_value = session.execute(sa.select(key).where(Submission.id == last.id)).scalar_one()
    return SubmissionPage(rows, _encode_cursor(sort, sort_value, last.created_at, last.id))


def count_submissions(session: Session, where: SubmissionFilter = SubmissionFilter()) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(Submission).where(*where.where())).scalar_one()


def _encode_cursor(sort: str, value: Any, created_at: datetime, submission_id: str) -> str:
    if isinstance(value, StrEnum):
        value = value.value
    elif isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, created_at.isoformat(), submission_id], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, created_at, submission_id = json.loads(raw)
        when = datetime.fromisoformat(created_at)
        if got_sort != sort or not isinstance(submission_id, str) or when.utcoffset() is None:
            raise ValueError
        if sort == "created_at":
            value = datetime.fromisoformat(value)
        elif not isinstance(value, str):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor(cursor) from None
    return value, when, submission_id


def list_submissions(
    session: Session,
    *,
    carrier_id: int | None = None,
    status: SubmissionStatus | str | Sequence[SubmissionStatus | str] | None = None,
    outcome: Outcome | str | Sequence[Outcome | str] | None = None,
    driver_id: int | None = None,
    vehicle_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[Submission]:
    """Submissions matching every filter given (see ``SubmissionFilter``), by offset; for long
    lists use ``page_submissions``. Verdicts are loaded."""
    where = SubmissionFilter(
        carrier_id=carrier_id,
        status=status,
        outcome=outcome,
        driver_id=driver_id,
        vehicle_id=vehicle_id,
        since=since,
        until=until,
    )
    query = sa.select(Submission).where(*where.where()).options(selectinload(Submission.verdicts))
    order = (
        (Submission.created_at.desc(), Submission.id.desc()) if newest_first else (Submission.created_at, Submission.id)
    )
    query = query.order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# Near-duplicate photos


def _checked_phash(phash_hex: str) -> str:
    phash = phash_hex.strip().lower()
    if not _PHASH.fullmatch(phash):
        raise InvalidSubmission(f"photo_phash is not 16 hex digits (a 64-bit hash): {phash_hex!r}")
    return phash


def _band_value(value: int, band: int) -> int:
    # Band 0 is the hash's first two hex digits.
    return (value >> (_HASH_BITS - HASH_BAND_BITS * (band + 1))) & _BAND_MASK


def _within(value: int, radius: int) -> list[int]:
    return [v for v in range(1 << HASH_BAND_BITS) if (v ^ value).bit_count() <= radius]


def similar_photo_probe(carrier_id: int | None, phash_hex: str, max_distance: int) -> sa.Select[tuple[str]]:
    """The ids of every submission that may be within ``max_distance`` of ``phash_hex``, read
    from the band index alone.

    The 64 bits are split into ``HASH_BANDS`` bands, so a pair at distance d differs in at most
    d // HASH_BANDS bits in some band (pigeonhole). Probing each band for the values within that
    radius of the query's band therefore misses no match; for d <= 7 it is an exact lookup of
    one value per band.
    """
    if not 0 <= max_distance <= _HASH_BITS:
        raise ValueError(f"max_distance must be between 0 and {_HASH_BITS}, not {max_distance}")
    value = int(_checked_phash(phash_hex), 16)
    radius = max_distance // HASH_BANDS
    probes = []
    for band in range(HASH_BANDS):
        wanted = _within(_band_value(value, band), radius)
        probe = sa.select(PhotoHashBand.submission_id).where(
            PhotoHashBand.band == band,
            PhotoHashBand.value == wanted[0] if len(wanted) == 1 else PhotoHashBand.value.in_(wanted),
        )
        if carrier_id is not None:
            probe = probe.where(PhotoHashBand.carrier_id == carrier_id)
        probes.append(probe)
    # One indexed probe per band; UNION drops the ids found by several bands.
    return sa.union(*probes)  # type: ignore[return-value]


def find_similar_photos(
    session: Session,
    carrier_id: int | None,
    phash_hex: str,
    max_distance: int,
    exclude_submission_id: str | None = None,
    *,
    created_before: datetime | None = None,
) -> list[SimilarPhoto]:
    """Earlier submissions whose photo hash is within ``max_distance`` bits of ``phash_hex``,
    nearest first (``carrier_id`` None: across carriers). Pass the submission's own id as
    ``exclude_submission_id`` and its ``created_at`` as ``created_before`` when re-deciding it."""
    value = int(_checked_phash(phash_hex), 16)
    candidates = similar_photo_probe(carrier_id, phash_hex, max_distance).subquery()
    # Two steps: hashes of the candidates only (cheap), then whole rows of the true matches.
    query = sa.select(Submission.id, Submission.photo_phash).where(
        Submission.id.in_(sa.select(candidates.c.submission_id))
    )
    if exclude_submission_id is not None:
        query = query.where(Submission.id != exclude_submission_id)
    if created_before is not None:
        query = query.where(Submission.created_at < created_before)
    distances = {}
    for submission_id, phash in session.execute(query):
        distance = (int(phash, 16) ^ value).bit_count()
        if distance <= max_distance:
            distances[submission_id] = distance
    if not distances:
        return []
    matches = session.scalars(sa.select(Submission).where(Submission.id.in_(distances)))
    found = [SimilarPhoto(submission, distances[submission.id]) for submission in matches]
    found.sort(key=lambda s: (s.distance, s.submission.created_at, s.submission.id))
    return found
