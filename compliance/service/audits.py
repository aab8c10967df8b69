"""Batch audits: re-judge a carrier's stored photos with the current models, and diff the verdicts.

``start_audit`` is what the API, the dashboard and the CLI call; the job then advances chunk by
chunk (``advance``: the audit queue's task, or ``compliance audit --inline``), each chunk
re-judging a few pending items, keeping their verdicts before and after, announcing the verdicts
that changed and queueing the next chunk. The diff is read from the store (``audit_jobs.progress``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from compliance.pipelines import choices, get_pipelines, pipeline_names
from compliance.queue.publisher import Publisher, published
from compliance.service.transient import TRANSIENT_ERRORS
from compliance.service.verdicts import announce, rejudge
from compliance.settings import Settings
from compliance.store import Store, audit_jobs, registry
from compliance.store.errors import InvalidAuditJob
from compliance.store.models import AuditJobStatus, storable_time

# A claim outlives its chunk's task time limit by this much: the worker has killed the task by then.
_LEASE_SLACK_S = 30.0


def pipeline_choices() -> tuple[str, ...]:
    """What an audit may be run with: every registered pipeline, ``both`` and ``cascade``."""
    return tuple(str(c) for c in choices())


@dataclass(frozen=True, slots=True)
class Started:
    job_id: str
    total: int  # submissions to re-judge (0: done at once)
    published: bool  # False: the broker was down; the sweeper starts it


def start_audit(
    store: Store,
    publisher: Publisher,
    settings: Settings,
    carrier: int | str,
    *,
    pipeline: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    driver_ids: Sequence[int] = (),
    vehicle_ids: Sequence[int] = (),
    actor: str,
    queue: bool = True,
) -> Started:
    """Create the job over the carrier's decided submissions and queue its first chunk (unless
    ``queue`` is False: the caller runs it inline). ``pipeline`` None is the deployment's default."""
    for name, when in (("since", since), ("until", until)):
        if when is not None and not storable_time(when):
            raise InvalidAuditJob(f"{name} is outside the times the store holds, or has no UTC offset")
    # Only no pipeline at all means the default: an empty name is as unknown as any other.
    chosen = settings.service_pipeline if pipeline is None else pipeline
    try:
        pipeline_names(chosen)
    except ValueError:
        raise InvalidAuditJob(f"unknown pipeline {chosen!r}; choose from {', '.join(choices())}") from None
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        job = audit_jobs.create_audit_job(
            s,
            found.id,
            pipeline=chosen,
            since=since,
            until=until,
            driver_ids=driver_ids,
            vehicle_ids=vehicle_ids,
            actor=actor,
        )
        started = Started(job.id, job.total, published=False)
        waiting = job.status is AuditJobStatus.QUEUED
    if waiting and queue:
        sent = published(lambda: publisher.audit(started.job_id), f"audit {started.job_id}")
        return Started(started.job_id, started.total, sent)
    return started


def advance(
    store: Store,
    publisher: Publisher,
    settings: Settings,
    job_id: str,
    *,
    queue_next: bool = True,
    on_item: Callable[[str], None] | None = None,
) -> bool:
    """One chunk: re-judge, announce the verdicts that are new, queue the next chunk while items
    remain. Returns whether this chain goes on: not when another chunk holds every pending item
    (that chain goes on instead; the sweeper re-queues the job if it dies)."""
    chunk = run_chunk(store, settings, job_id, on_item=on_item)
    for submission_id in chunk.rejudged:
        announce(store, publisher, submission_id)
    goes_on = chunk.more and chunk.claimed > 0
    if goes_on and queue_next:
        publisher.audit(job_id)  # a broker that is down fails the task, which retries
    return goes_on


@dataclass
class Chunk:
    more: bool  # items are still pending
    claimed: int = 0  # items this chunk took (0: none was free, another chunk holds the rest)
    judged: int = 0
    # Submissions re-judged: the caller announces their current verdicts (only new ones go out).
    rejudged: list[str] = field(default_factory=list)


def run_chunk(
    store: Store,
    settings: Settings,
    job_id: str,
    *,
    limit: int | None = None,
    on_item: Callable[[str], None] | None = None,
) -> Chunk:
    actor = f"audit:{job_id}"
    with store.sessions() as s, s.begin():
        job = audit_jobs.get_audit_job(s, job_id)
        pipeline_name = job.pipeline
        # Leased for as long as a chunk's task may run: one the worker killed frees its items then.
        lease_s = settings.task_time_limit_s + _LEASE_SLACK_S
        pending = audit_jobs.claim_items(s, job_id, limit=limit or settings.audit_chunk, lease_s=lease_s)
    chunk = Chunk(more=True, claimed=len(pending))
    if pending:
        pipelines = get_pipelines(pipeline_name, settings)
    for index, submission_id in enumerate(pending):
        with store.sessions() as s:
            before = audit_jobs.current_outcome(s, submission_id)
        try:
            rejudge(store, settings, submission_id, pipelines, actor=actor, choice=pipeline_name)
        except TRANSIENT_ERRORS:
            # The task retries the chunk; the items left stay pending, free for the retry at once.
            with store.sessions() as s, s.begin():
                audit_jobs.release_items(s, job_id, pending[index:])
            raise
        except Exception as exc:  # one photo's failure is kept on its item; the job goes on
            with store.sessions() as s, s.begin():
                audit_jobs.record_item(
                    s, job_id, submission_id, before=before, after=None, error=f"{type(exc).__name__}: {exc}"
                )
        else:
            with store.sessions() as s, s.begin():
                after = audit_jobs.current_outcome(s, submission_id)
                audit_jobs.record_item(s, job_id, submission_id, before=before, after=after)
            chunk.rejudged.append(submission_id)
        with store.sessions() as s, s.begin():
            # One item at a time the lease is renewed: an inline chunk has no task time limit.
            audit_jobs.extend_claims(s, job_id, pending[index + 1 :], lease_s=lease_s)
        chunk.judged += 1
        if on_item is not None:
            on_item(submission_id)
    with store.sessions() as s, s.begin():
        chunk.more = not audit_jobs.finish_if_complete(s, job_id)
    return chunk
