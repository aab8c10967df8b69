"""Submissions waiting for a verdict, as the queue's keepers see them: an upload is committed QUEUED
and goes back to RECEIVED (``unqueue``) if its task could not be published; the sweeper finds
those whose task the broker lost and marks them queued again (``mark_queued``).

The database is the source of truth and the queue only a hint: anything unfinished here is either
in the broker or found again by ``stuck``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.audit import SYSTEM, record_event
from compliance.store.models import Submission, SubmissionStatus, database_clock

UNFINISHED = (SubmissionStatus.RECEIVED, SubmissionStatus.QUEUED, SubmissionStatus.PROCESSING)


@dataclass(frozen=True, slots=True)
class Waiting:
    submission_id: str
    pipeline: str | None
    status: SubmissionStatus
    attempts: int


def mark_queued(
    session: Session,
    submission_ids: list[str],
    *,
    from_statuses: tuple[SubmissionStatus, ...],
    actor: str = SYSTEM,
    reason: str | None = None,
) -> int:
    """-> QUEUED for submissions whose task the sweeper just published again, if still in
    ``from_statuses`` (a worker may already have started). Returns how many moved."""
    if not submission_ids:
        return 0
    rows = session.execute(
        sa.update(Submission)
        .where(Submission.id.in_(submission_ids), Submission.status.in_(from_statuses))
        .values(status=SubmissionStatus.QUEUED, updated_at=database_clock())
        .returning(Submission.id, Submission.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    for submission_id, attempts in rows:
        record_event(
            session,
            actor=actor,
            action="submission.status",
            subject_type="submission",
            subject_id=submission_id,
            after={"status": SubmissionStatus.QUEUED.value, "attempts": attempts},
            reason=reason,
        )
    return len(rows)


def unqueue(session: Session, submission_id: str, *, actor: str = SYSTEM) -> bool:
    """QUEUED -> RECEIVED for a submission whose task could not be published (the broker down), if
    nothing took it meanwhile; the sweeper publishes it later. Returns whether it moved."""
    moved = session.execute(
        sa.update(Submission)
        .where(Submission.id == submission_id, Submission.status == SubmissionStatus.QUEUED)
        .values(status=SubmissionStatus.RECEIVED, updated_at=database_clock())
        .returning(Submission.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is not None:
        record_event(
            session,
            actor=actor,
            action="submission.status",
            subject_type="submission",
            subject_id=submission_id,
            before={"status": SubmissionStatus.QUEUED.value},
            after={"status": SubmissionStatus.RECEIVED.value, "attempts": moved[0]},
            reason="not published: the broker is unreachable",
        )
    return moved is not None


def _waiting(query: sa.Select[tuple[Submission]], session: Session) -> list[Waiting]:
    return [Waiting(s.id, s.pipeline, s.status, s.attempts) for s in session.scalars(query)]


def never_queued(session: Session, *, before: datetime, limit: int) -> list[Waiting]:
    """RECEIVED before ``before``: accepted while the broker was down (or the API died before it
    could publish)."""
    query = (
        sa.select(Submission)
        .where(Submission.status == SubmissionStatus.RECEIVED, Submission.updated_at < before)
        .order_by(Submission.updated_at)
        .limit(limit)
    )
    return _waiting(query, session)


def stale(session: Session, *, before: datetime, limit: int) -> list[Waiting]:
    """QUEUED or PROCESSING with no change since ``before``."""
    query = (
        sa.select(Submission)
        .where(
            Submission.status.in_([SubmissionStatus.QUEUED, SubmissionStatus.PROCESSING]),
            Submission.updated_at < before,
        )
        .order_by(Submission.updated_at)
        .limit(limit)
    )
    return _waiting(query, session)


def unfinished(session: Session, *, before: datetime, limit: int, after_id: str | None = None) -> list[Waiting]:
    """Every unfinished submission last changed before ``before``, by id (resume after ``after_id``)."""
    query = sa.select(Submission).where(Submission.status.in_(UNFINISHED), Submission.updated_at < before)
    if after_id is not None:
        query = query.where(Submission.id > after_id)
    return _waiting(query.order_by(Submission.id).limit(limit), session)


def retryable_failures(session: Session, *, before: datetime, max_attempts: int, limit: int) -> list[Waiting]:
    """FAILED before ``before`` with attempts left: the task's own retries ran out or were lost."""
    query = (
        sa.select(Submission)
        .where(
            Submission.status == SubmissionStatus.FAILED,
            Submission.attempts < max_attempts,
            Submission.updated_at < before,
        )
        .order_by(Submission.updated_at)
        .limit(limit)
    )
    return _waiting(query, session)


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(Submission.status, sa.func.count()).group_by(Submission.status)).all()
    return {status.value: n for status, n in rows}


def count_by_outcome(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(Submission.outcome, sa.func.count())
        .where(Submission.outcome.is_not(None))
        .group_by(Submission.outcome)
    ).all()
    return {outcome.value: n for outcome, n in rows}
