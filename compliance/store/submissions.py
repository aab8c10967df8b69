"""Submissions: creating them (idempotently, by key) and moving their status; reading one back.

Every function flushes and never commits; each change writes an audit event in the same
transaction. Recording is idempotent where a task may run twice: the same submission (by
idempotency key) is kept once, enforced by a unique index and ``INSERT … ON CONFLICT DO NOTHING``
(``_insert_unless_present``, which the verdicts module uses too).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from compliance import plates
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import IdempotencyConflict, InvalidSubmission, UnknownSubmission
from compliance.store.models import (
    HASH_BANDS,
    PhotoHashBand,
    Submission,
    SubmissionSource,
    SubmissionStatus,
    new_submission_id,
    utcnow,
)
from compliance.store.registry import get_driver, get_vehicle
from compliance.store.similar import _band_value, _checked_phash

_SHA256 = re.compile(r"[0-9a-f]{64}")


class CreatedSubmission(NamedTuple):
    submission: Submission
    # False when the idempotency key named an earlier submission, which is returned instead.
    created: bool


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


def submissions_by_id(session: Session, ids: Sequence[str]) -> dict[str, Submission]:
    """The submissions with these ids (those that exist), by id, each with its driver loaded."""
    query = sa.select(Submission).where(Submission.id.in_(ids)).options(selectinload(Submission.driver))
    return {submission.id: submission for submission in session.scalars(query)}
