"""Batch audit jobs: a carrier's decided submissions re-judged with the current models, each item
keeping the verdict before and after, so that the job reports how many changed, from what to what
and by which reasons.

Items are chosen once, when the job is made, and worked through in chunks by short tasks. A chunk
claims its items for a lease (``claim_items``): a task that dies leaves them pending, taken again
once the lease ends; two chunks running at once never take the same item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.audit import SYSTEM, record_event
from compliance.store.db import database_now
from compliance.store.errors import InvalidAuditJob, UnknownAuditJob
from compliance.store.models import (
    AuditItemStatus,
    AuditJob,
    AuditJobItem,
    AuditJobStatus,
    Submission,
    SubmissionStatus,
    utcnow,
)
from compliance.store.pages import SubmissionFilter
from compliance.store.registry import get_carrier, get_driver, get_vehicle
from compliance.verdicts import Outcome


def create_audit_job(
    session: Session,
    carrier_id: int,
    *,
    pipeline: str,
    since: datetime | None = None,
    until: datetime | None = None,
    driver_ids: Sequence[int] = (),
    vehicle_ids: Sequence[int] = (),
    actor: str = SYSTEM,
) -> AuditJob:
    """A job over the carrier's decided submissions created in [since, until) by any of the drivers
    or vehicles named (all when none are). A job that matches nothing is done at once."""
    carrier = get_carrier(session, carrier_id)
    for when in (since, until):
        if when is not None and when.utcoffset() is None:
            raise InvalidAuditJob(f"{when.isoformat()} has no time zone")
    if since is not None and until is not None and until <= since:
        raise InvalidAuditJob("the audit's date range ends before it starts")
    for driver_id in driver_ids:
        get_driver(session, driver_id, carrier_id=carrier.id)
    for vehicle_id in vehicle_ids:
        get_vehicle(session, vehicle_id, carrier_id=carrier.id)
    now = utcnow()
    job = AuditJob(
        carrier_id=carrier.id,
        pipeline=pipeline,
        criteria={
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "driver_ids": sorted(set(driver_ids)),
            "vehicle_ids": sorted(set(vehicle_ids)),
        },
        status=AuditJobStatus.QUEUED,
        total=0,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    where = SubmissionFilter(carrier_id=carrier.id, status=SubmissionStatus.DECIDED, since=since, until=until).where()
    if driver_ids:
        where.append(Submission.driver_id.in_(sorted(set(driver_ids))))
    if vehicle_ids:
        where.append(Submission.vehicle_id.in_(sorted(set(vehicle_ids))))
    chosen = sa.select(
        sa.literal(job.id, sa.String()),
        Submission.id,
        sa.literal(AuditItemStatus.PENDING.value, sa.String()),
    ).where(*where)
    insert = sa.insert(AuditJobItem.__table__).from_select(["job_id", "submission_id", "status"], chosen)
    session.execute(insert)
    # Counted, not taken from rowcount: drivers do not all report it for INSERT … SELECT.
    job.total = (
        session.scalar(sa.select(sa.func.count()).select_from(AuditJobItem).where(AuditJobItem.job_id == job.id)) or 0
    )
    if job.total == 0:
        job.status = AuditJobStatus.DONE
        job.finished_at = now
    session.flush()
    record_event(
        session,
        actor=actor,
        action="audit_job.create",
        subject_type="audit_job",
        subject_id=job.id,
        after={"carrier_id": carrier.id, "pipeline": pipeline, "criteria": job.criteria, "total": job.total},
    )
    return job


def get_audit_job(session: Session, job_id: str, *, carrier_id: int | None = None) -> AuditJob:
    job = session.get(AuditJob, job_id)
    if job is None or (carrier_id is not None and job.carrier_id != carrier_id):
        raise UnknownAuditJob(job_id)
    return job


def list_audit_jobs(session: Session, carrier_id: int | None, *, limit: int = 50) -> list[AuditJob]:
    """The carrier's jobs, newest first; ``carrier_id`` None: every carrier's (the operator's staff)."""
    query = sa.select(AuditJob)
    if carrier_id is not None:
        query = query.where(AuditJob.carrier_id == carrier_id)
    return list(session.scalars(query.order_by(AuditJob.created_at.desc(), AuditJob.id).limit(limit)))


def claim_items(session: Session, job_id: str, *, limit: int, lease_s: float) -> list[str]:
    """Take the next pending submissions of the job to re-judge, for ``lease_s`` (and mark the job
    running). An item another chunk holds is skipped: two chains of one job (a chunk re-queued while
    the first still ran) never judge one item twice. Rows locked by a concurrent claim are skipped on
    PostgreSQL (``FOR UPDATE SKIP LOCKED``); SQLite's write transactions take turns anyway."""
    now = database_now(session)
    job = get_audit_job(session, job_id)
    if job.status is AuditJobStatus.QUEUED:
        job.status = AuditJobStatus.RUNNING
        job.started_at = job.updated_at = now
        session.flush()
    query = (
        sa.select(AuditJobItem)
        .where(
            AuditJobItem.job_id == job_id,
            AuditJobItem.status == AuditItemStatus.PENDING,
            sa.or_(AuditJobItem.claimed_until.is_(None), AuditJobItem.claimed_until < now),
        )
        .order_by(AuditJobItem.submission_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    items = list(session.scalars(query))
    for item in items:
        item.claimed_until = now + timedelta(seconds=lease_s)
    session.flush()
    return [item.submission_id for item in items]


def release_items(session: Session, job_id: str, submission_ids: Sequence[str]) -> None:
    """Give back claimed items that are still pending (a chunk that stops on a transient error), so
    its retry takes them at once instead of after the lease."""
    _claim_pending(session, job_id, submission_ids, until=None)


def current_outcome(session: Session, submission_id: str) -> tuple[Outcome | None, list[str]]:
    submission = session.get_one(Submission, submission_id, populate_existing=True)
    verdict = submission.current_verdict
    if verdict is None:
        return None, []
    return verdict.outcome, sorted(verdict.reasons)


def record_item(
    session: Session,
    job_id: str,
    submission_id: str,
    *,
    before: tuple[Outcome | None, list[str]],
    after: tuple[Outcome | None, list[str]] | None,
    error: str | None = None,
) -> None:
    """Keep an item's verdict before and after (or its error)."""
    item = session.get_one(AuditJobItem, (job_id, submission_id), with_for_update=True)
    item.before_outcome, item.before_reasons = before[0], before[1]
    if after is not None:
        item.after_outcome, item.after_reasons = after[0], after[1]
        item.status = AuditItemStatus.DONE
        item.error = None
    else:
        item.status = AuditItemStatus.FAILED
        item.error = error
    item.claimed_until = None
    item.done_at = utcnow()
    session.flush()


def finish_if_complete(session: Session, job_id: str) -> bool:
    """Mark the job done once no item is pending; True when it is done."""
    job = session.get_one(AuditJob, job_id, with_for_update=True)
    if job.status is AuditJobStatus.DONE:
        return True
    left = session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditJobItem)
        .where(AuditJobItem.job_id == job_id, AuditJobItem.status == AuditItemStatus.PENDING)
    )
    job.updated_at = database_now(session)
    if left:
        session.flush()
        return False
    job.status = AuditJobStatus.DONE
    job.finished_at = utcnow()
    session.flush()
    record_event(
        session,
        actor=SYSTEM,
        action="audit_job.done",
        subject_type="audit_job",
        subject_id=job.id,
        after=progress(session, job_id).as_json(),
    )
    return True


def stalled_jobs(session: Session, *, stale_s: float, limit: int) -> list[str]:
    """Jobs not finished, without progress for ``stale_s`` and with no item held by a live chunk
    (their task was lost), by the database's clock. A job a chunk still works on is never stalled,
    however slow: re-queueing it would start a second chain."""
    now = database_now(session)
    live = sa.exists().where(
        AuditJobItem.job_id == AuditJob.id,
        AuditJobItem.status == AuditItemStatus.PENDING,
        AuditJobItem.claimed_until >= now,
    )
    return list(
        session.scalars(
            sa.select(AuditJob.id)
            .where(
                AuditJob.status != AuditJobStatus.DONE,
                AuditJob.updated_at < now - timedelta(seconds=stale_s),
                ~live,
            )
            .order_by(AuditJob.updated_at)
            .limit(limit)
        )
    )


def extend_claims(session: Session, job_id: str, submission_ids: Sequence[str], *, lease_s: float) -> None:
    """Keep claimed items that are still pending for another ``lease_s`` (the database's clock): a
    chunk with no time limit of its own (``compliance audit start --inline``) holds what it has yet
    to judge however long the items before took."""
    _claim_pending(session, job_id, submission_ids, until=database_now(session) + timedelta(seconds=lease_s))


def _claim_pending(session: Session, job_id: str, submission_ids: Sequence[str], *, until: datetime | None) -> None:
    if submission_ids:
        session.execute(
            sa.update(AuditJobItem)
            .where(
                AuditJobItem.job_id == job_id,
                AuditJobItem.submission_id.in_(list(submission_ids)),
                AuditJobItem.status == AuditItemStatus.PENDING,
            )
            .values(claimed_until=until)
        )


def touch(session: Session, job_id: str) -> None:
    """The job made progress now (the database's clock): the sweeper waits a stale period again."""
    get_audit_job(session, job_id).updated_at = database_now(session)


@dataclass(frozen=True, slots=True)
class Transition:
    before: str | None
    after: str | None
    count: int


@dataclass(frozen=True)
class AuditProgress:
    total: int
    pending: int
    done: int
    failed: int
    # Items whose outcome or reasons changed, and how: outcome transitions (changed ones only) and,
    # per reason code, how many verdicts gained or lost it.
    changed: int = 0
    transitions: list[Transition] = field(default_factory=list)
    reasons_added: dict[str, int] = field(default_factory=dict)
    reasons_removed: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "pending": self.pending,
            "done": self.done,
            "failed": self.failed,
            "changed": self.changed,
            "transitions": [{"from": t.before, "to": t.after, "count": t.count} for t in self.transitions],
            "reasons_added": self.reasons_added,
            "reasons_removed": self.reasons_removed,
        }


def progress(session: Session, job_id: str) -> AuditProgress:
    """Counts by item status, and the diff of the items done so far against their earlier verdicts."""
    counts = dict(
        session.execute(
            sa.select(AuditJobItem.status, sa.func.count())
            .where(AuditJobItem.job_id == job_id)
            .group_by(AuditJobItem.status)
        ).all()
    )
    pending = counts.get(AuditItemStatus.PENDING, 0)
    done = counts.get(AuditItemStatus.DONE, 0)
    failed = counts.get(AuditItemStatus.FAILED, 0)
    transitions: Counter[tuple[str | None, str | None]] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    changed = 0
    rows = session.execute(
        sa.select(
            AuditJobItem.before_outcome,
            AuditJobItem.after_outcome,
            AuditJobItem.before_reasons,
            AuditJobItem.after_reasons,
        ).where(AuditJobItem.job_id == job_id, AuditJobItem.status == AuditItemStatus.DONE)
    )
    for before, after, before_reasons, after_reasons in rows:
        old, new = set(before_reasons or []), set(after_reasons or [])
        if not _changed(before, after, old, new):
            continue
        changed += 1
        if before != after:
            transitions[(before.value if before else None, after.value if after else None)] += 1
        added.update(new - old)
        removed.update(old - new)
    return AuditProgress(
        total=pending + done + failed,
        pending=pending,
        done=done,
        failed=failed,
        changed=changed,
        transitions=[Transition(b, a, n) for (b, a), n in sorted(transitions.items(), key=lambda kv: -kv[1])],
        reasons_added=dict(sorted(added.items())),
        reasons_removed=dict(sorted(removed.items())),
    )


def _changed(before: Outcome | None, after: Outcome | None, old: set[str], new: set[str]) -> bool:
    return before != after or old != new


@dataclass(frozen=True, slots=True)
class ItemCounts:
    pending: int = 0
    done: int = 0
    failed: int = 0

    @property
    def finished(self) -> int:
        return self.done + self.failed


def item_counts(session: Session, job_ids: Sequence[str]) -> dict[str, ItemCounts]:
    """Items by status for each job, in one GROUP BY: the progress of a list of jobs without their diffs."""
    if not job_ids:
        return {}
    found: dict[str, dict[str, int]] = {job_id: {} for job_id in job_ids}
    for job_id, item_status, count in session.execute(
        sa.select(AuditJobItem.job_id, AuditJobItem.status, sa.func.count())
        .where(AuditJobItem.job_id.in_(list(job_ids)))
        .group_by(AuditJobItem.job_id, AuditJobItem.status)
    ):
        found[job_id][AuditItemStatus(item_status).value] = count
    return {job_id: ItemCounts(**counts) for job_id, counts in found.items()}


def changed_items(session: Session, job_id: str, *, limit: int) -> list[AuditJobItem]:
    """The first ``limit`` items (by submission id) whose outcome or reasons the audit changed."""
    found: list[AuditJobItem] = []
    rows = session.scalars(
        sa.select(AuditJobItem)
        .where(AuditJobItem.job_id == job_id, AuditJobItem.status == AuditItemStatus.DONE)
        .order_by(AuditJobItem.submission_id)
        .execution_options(yield_per=500)
    )
    with rows:  # closed early once enough are found (a server-side cursor on PostgreSQL)
        for item in rows:
            old, new = set(item.before_reasons or []), set(item.after_reasons or [])
            if _changed(item.before_outcome, item.after_outcome, old, new):
                found.append(item)
                if len(found) >= limit:
                    break
    return found


def failed_items(session: Session, job_id: str, *, limit: int) -> list[AuditJobItem]:
    """Items that could not be re-judged, with their errors."""
    return list(
        session.scalars(
            sa.select(AuditJobItem)
            .where(AuditJobItem.job_id == job_id, AuditJobItem.status == AuditItemStatus.FAILED)
            .order_by(AuditJobItem.submission_id)
            .limit(limit)
        )
    )
