"""The tasks: thin wrappers over the use cases of ``compliance.service`` (verdicts, audits,
webhooks). Every task is idempotent: the database says what is already done, so a task delivered
twice (a worker killed, the sweeper re-queueing) writes one judgment and one verdict per model
version, and sends nothing twice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from celery import Celery

from compliance import metrics
from compliance.queue.app import AUDIT_CHUNK, DELIVER_WEBHOOK, JUDGE, JUDGE_BATCH
from compliance.queue.publisher import Publisher, published
from compliance.service import audits, verdicts
from compliance.service import webhooks as webhook_service
from compliance.service.transient import TRANSIENT_ERRORS
from compliance.settings import Settings
from compliance.store import Store

if TYPE_CHECKING:
    from celery_batches import SimpleRequest


@dataclass
class Runtime:
    """What a worker process holds: opened lazily, after the fork, once."""

    settings: Settings

    @cached_property
    def store(self) -> Store:
        return Store.open(self.settings, migrate=False)

    @cached_property
    def publisher(self) -> Publisher:
        return Publisher(self.settings)

    @cached_property
    def http(self) -> httpx.Client:
        return httpx.Client(headers={"User-Agent": "compliance-webhooks/0.1"})


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime(settings: Settings) -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None or _runtime.settings is not settings:
            _runtime = Runtime(settings)
        return _runtime


def reset_runtime() -> None:
    """After a fork: the parent's connections are not the child's."""
    global _runtime
    with _runtime_lock:
        _runtime = None


def judge_one(settings: Settings, submission_id: str, part: str | None = None) -> str:
    rt = runtime(settings)
    return verdicts.judge_queued(rt.store, rt.publisher, settings, submission_id, part)


def judge_requests(settings: Settings, requests: list[tuple[str, str | None]]) -> dict[str, str]:
    rt = runtime(settings)
    return verdicts.judge_queued_batch(rt.store, rt.publisher, settings, requests)


def run_audit_chunk(settings: Settings, job_id: str) -> bool:
    rt = runtime(settings)
    return audits.advance(rt.store, rt.publisher, settings, job_id)


def deliver(settings: Settings, delivery_id: int) -> str:
    rt = runtime(settings)
    attempted = webhook_service.deliver(rt.store, settings, delivery_id, rt.http)
    if attempted.status is None:
        return "skipped"
    metrics.WEBHOOK_ATTEMPTS.labels(attempted.status.value).inc()
    if attempted.retry_in_s is not None:
        retry_in = attempted.retry_in_s
        published(
            lambda: rt.publisher.deliver(delivery_id, countdown=retry_in), f"webhook delivery {delivery_id} retry"
        )
    return attempted.status.value


def _counted(task: str, fn: Any, *args: Any) -> Any:
    try:
        result = fn(*args)
    except TRANSIENT_ERRORS:
        metrics.TASKS.labels(task, "retry").inc()
        raise
    except Exception:
        metrics.TASKS.labels(task, "error").inc()
        raise
    metrics.TASKS.labels(task, "ok").inc()
    return result


def batch_consumer_installed() -> bool:
    """Whether celery-batches (the ``worker-gpu`` extra) is here: only the GPU worker needs it."""
    try:
        import celery_batches  # noqa: F401
    except ImportError:
        return False
    return True


def register_batch_task(app: Celery, settings: Settings) -> None:
    """The MLLM queue's consumer: queued photos gathered into one generate call."""
    from celery_batches import Batches

    @app.task(
        name=JUDGE_BATCH,
        base=Batches,
        flush_every=settings.mllm_batch_size,
        flush_interval=settings.mllm_batch_wait_s,
        acks_late=True,
    )
    def judge_batch(requests: list[SimpleRequest]) -> dict[str, str]:
        wanted = [(str(r.args[0]), str(r.args[1]) if len(r.args) > 1 else None) for r in requests if r.args]
        return _counted("judge_batch", judge_requests, settings, wanted)


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the tasks on ``app``; their retry and batch options come from ``settings``. The GPU
    batch task only where celery-batches is installed: the API and CPU worker images leave it out."""
    retrying: dict[str, Any] = {
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": 2,
        "retry_backoff_max": settings.task_retry_backoff_max_s,
        "retry_jitter": True,
        "max_retries": settings.task_max_retries,
        "acks_late": True,
    }

    @app.task(name=JUDGE, **retrying)
    def judge_submission(submission_id: str, part: str | None = None) -> str:
        return _counted("judge", judge_one, settings, submission_id, part)

    if batch_consumer_installed():
        register_batch_task(app, settings)

    @app.task(name=AUDIT_CHUNK, **retrying)
    def audit_chunk(job_id: str) -> bool:
        return _counted("audit_chunk", run_audit_chunk, settings, job_id)

    @app.task(name=DELIVER_WEBHOOK, **retrying)
    def deliver_webhook(delivery_id: int) -> str:
        return _counted("deliver_webhook", deliver, settings, delivery_id)
