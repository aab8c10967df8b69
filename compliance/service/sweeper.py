"""The sweeper: finds work the broker lost and queues it again. It is what makes a Redis that keeps
nothing on disk safe, and it talks to the database and the broker directly, so it works exactly when
the queue does not. With RabbitMQ (durable quorum queues) step 1 never fires; the others still
matter: an upload accepted while the broker was down waits, RECEIVED, for step 2.

Each sweep:
1. If the broker lost its data since the last sweep (Redis: its marker key is gone after a restart,
   a flush), every submission left unfinished before the broker started is queued again.
2. RECEIVED past ``sweep_received_after_s``: accepted while the broker was down.
3. QUEUED or PROCESSING past ``sweep_stale_after_s`` while their queue is empty: a lost message.
4. FAILED with attempts left, past ``sweep_stale_after_s``: the task's own retries ran out.
5. Webhook deliveries and audit jobs whose next step is overdue.

Queueing twice is harmless (tasks are idempotent); queueing never is what this prevents. A cascade
submission is queued at the stage it waits for (``verdicts.cascade_waits_for``): the baseline's (CPU)
queue until the baseline's judgments are stored, the MLLM's (GPU) queue once it was escalated.

The sweeper process exports the global gauges (queue depths, submissions by status, current verdicts
by outcome) on ``sweeper_metrics_port``: one exporter for the whole deployment, where every API
replica exporting them made a sum of replicas count them several times.

The sweeper process also removes photo files nothing refers to (``compliance.service.orphans``),
at its own slower cadence (``orphan_sweep_interval_s``) in a thread of its own, so a long walk of
the blob folder never holds up re-queueing.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from compliance import metrics
from compliance.pipeline import CASCADE
from compliance.queue.app import AUDIT
from compliance.queue.publisher import BrokerUnavailable, Publisher
from compliance.queue.routing import Route, routes
from compliance.service.orphans import sweep_photos_every
from compliance.service.verdicts import cascade_waits_for
from compliance.settings import Settings
from compliance.store import Store, audit_jobs, backlog, webhooks
from compliance.store.backlog import UNFINISHED, Waiting
from compliance.store.db import alone, database_now
from compliance.store.models import SubmissionStatus

log = logging.getLogger("compliance.sweeper")

ACTOR = "sweeper"
# Any constant: one sweeper at a time per database.
_SWEEP_LOCK_KEY = 0x73776565
# Clocks of the broker and this host may differ a little; requeueing a little more is harmless.
_CLOCK_SLACK = timedelta(seconds=5)


@dataclass
class Sweep:
    broker_restarted: bool = False
    requeued: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0
    audits: int = 0
    skipped: str | None = None  # why nothing was done (another sweeper, the broker down)

    @property
    def total(self) -> int:
        return sum(self.requeued.values())


def sweep_once(store: Store, settings: Settings, publisher: Publisher) -> Sweep:
    result = Sweep()
    with alone(store.engine, _SWEEP_LOCK_KEY) as only_sweeper:
        if not only_sweeper:
            result.skipped = "another sweeper is sweeping"
            return result
        try:
            _sweep(store, settings, publisher, result)
        except BrokerUnavailable as exc:
            result.skipped = f"broker unavailable: {exc}"
    return result


def _sweep(store: Store, settings: Settings, publisher: Publisher, result: Sweep) -> None:
    try:
        lost_since = publisher.lost_data_since()
        depths = publisher.queue_depths()
    except Exception as exc:  # redis-py and amqp raise several kinds; all mean the broker is not there
        raise BrokerUnavailable(str(exc)) from exc
    with store.sessions() as s:
        # Rows were written by other hosts: their ages are read on the database's clock, not this host's.
        now = database_now(s)
    limit = settings.sweep_batch

    if lost_since is not None:
        result.broker_restarted = True
        started = datetime.fromtimestamp(lost_since, UTC) + _CLOCK_SLACK
        after: str | None = None
        while True:
            with store.sessions() as s:
                page = backlog.unfinished(s, before=started, limit=limit, after_id=after)
            if not page:
                break
            _requeue(store, settings, publisher, page, "broker_restart", UNFINISHED, result)
            after = page[-1].submission_id
        # Marked only once everything it lost is queued again: a sweep cut short repeats this step.
        publisher.mark_broker()

    with store.sessions() as s:
        received = backlog.never_queued(s, before=now - timedelta(seconds=settings.sweep_received_after_s), limit=limit)
    _requeue(store, settings, publisher, received, "received", (SubmissionStatus.RECEIVED,), result)

    stale_before = now - timedelta(seconds=settings.sweep_stale_after_s)
    with store.sessions() as s:
        stale = backlog.stale(s, before=stale_before, limit=limit)
        failed = backlog.retryable_failures(s, before=stale_before, max_attempts=settings.max_attempts, limit=limit)
    # A stale message may still wait behind others; only an empty queue proves it lost.
    lost = [w for w in stale if all(depths.get(r.queue, 0) == 0 for r in _routes(store, settings, w))]
    _requeue(store, settings, publisher, lost, "stale", (SubmissionStatus.QUEUED, SubmissionStatus.PROCESSING), result)
    _requeue(store, settings, publisher, failed, "failed", (SubmissionStatus.FAILED,), result)

    overdue = now - timedelta(seconds=settings.sweep_received_after_s)
    with store.sessions() as s:
        due = webhooks.due_deliveries(s, before=overdue, limit=limit)
        # A chunk waiting in the queue, or one running (its items claimed), is not lost: re-queueing
        # it would start a second chain of the job.
        stalled = (
            audit_jobs.stalled_jobs(s, stale_s=settings.sweep_stale_after_s, limit=limit)
            if depths.get(AUDIT, 0) == 0
            else []
        )
    for delivery_id in due:
        publisher.deliver(delivery_id)
        result.deliveries += 1
    for job_id in stalled:
        publisher.audit(job_id)
        with store.sessions() as s, s.begin():
            audit_jobs.touch(s, job_id)  # one re-queue per stale period
        result.audits += 1


def _pipeline(waiting: Waiting, settings: Settings) -> str:
    return waiting.pipeline or settings.service_pipeline


def _routes(store: Store, settings: Settings, waiting: Waiting) -> tuple[Route, ...]:
    """Where the submission's work waits: every route of its pipeline choice, or a cascade's one stage."""
    choice = _pipeline(waiting, settings)
    if choice == CASCADE:
        return routes(cascade_waits_for(store, settings, waiting.submission_id))
    return routes(choice)


def _requeue(
    store: Store,
    settings: Settings,
    publisher: Publisher,
    waiting: Iterable[Waiting],
    why: str,
    from_statuses: tuple[SubmissionStatus, ...],
    result: Sweep,
) -> None:
    published = []
    for w in waiting:
        for route in _routes(store, settings, w):
            publisher.judge_part(w.submission_id, route.part)
        published.append(w.submission_id)
    if not published:
        return
    with store.sessions() as s, s.begin():
        backlog.mark_queued(s, published, from_statuses=from_statuses, actor=ACTOR, reason=f"requeued: {why}")
    metrics.REQUEUED.labels(why).inc(len(published))
    result.requeued[why] = result.requeued.get(why, 0) + len(published)
    log.info("requeued %d submission(s): %s", len(published), why)


def run_sweeper(settings: Settings, *, once: bool = False, stop: threading.Event | None = None) -> None:
    """Sweep every ``sweep_interval_s`` until SIGTERM/SIGINT (or once), and sweep orphan photos every
    ``orphan_sweep_interval_s`` meanwhile (not with ``once``: a cron job that re-queues every minute
    must not walk the blob folder every minute; ``compliance db sweep-photos`` is the cron form)."""
    store = Store.open(settings, migrate=False)
    publisher = Publisher(settings)
    exporter = None
    if settings.sweeper_metrics_port and not once:  # a cron sweep is gone before any scrape
        where = f"{settings.sweeper_metrics_host}:{settings.sweeper_metrics_port}"
        try:
            exporter, _ = metrics.serve_service_metrics(
                service_collector(store, publisher),
                host=settings.sweeper_metrics_host,
                port=settings.sweeper_metrics_port,
                token=settings.metrics_token.get_secret_value() if settings.metrics_token else None,
            )
        except OSError as exc:  # re-queueing matters more than the gauges: say so loudly and sweep on
            log.error("cannot export the service's gauges on %s: %s", where, exc)
        else:
            log.info("service gauges on http://%s/metrics", where)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    photos = None
    if not once:
        photos = threading.Thread(
            target=sweep_photos_every, args=(store, settings, stop), name="photo-sweep", daemon=True
        )
        photos.start()
    while not stop.is_set():
        try:
            result = sweep_once(store, settings, publisher)
        except Exception:  # the database may be down too: say so and try again next time
            log.exception("sweep failed")
        else:
            if result.skipped:
                log.warning("sweep skipped: %s", result.skipped)
            elif result.total or result.deliveries or result.audits:
                log.info(
                    "sweep: requeued %s, %d deliveries, %d audits%s",
                    result.requeued,
                    result.deliveries,
                    result.audits,
                    " (broker had restarted)" if result.broker_restarted else "",
                )
        if once:
            break
        stop.wait(settings.sweep_interval_s)
    if photos is not None:
        photos.join(timeout=60)  # it stops between two prefixes of the blob folder
    if exporter is not None:
        exporter.shutdown()
        exporter.server_close()
    store.engine.dispose()


def service_collector(store: Store, publisher: Publisher) -> metrics.ServiceCollector:
    """The global gauges, read from the broker and the database when scraped."""

    def statuses() -> dict[str, int]:
        with store.sessions() as s:
            return backlog.count_by_status(s)

    def outcomes() -> dict[str, int]:
        with store.sessions() as s:
            return backlog.count_by_outcome(s)

    return metrics.ServiceCollector(publisher.queue_depths, statuses, outcomes)
