"""The tasks: thin wrappers over the use cases of ``compliance.service`` (verdicts, audits,
webhooks). Every task is idempotent: the database says what is already done, so a task delivered
twice (a worker killed, the sweeper re-queueing) writes one judgment and one verdict per model
version, and sends nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import httpx
from celery import Celery
from celery_batches import Batches, SimpleRequest

from compliance import metrics
from compliance.pipeline import Pipeline
from compliance.pipelines import get_pipelines, pipeline_names
from compliance.queue.app import AUDIT_CHUNK, DELIVER_WEBHOOK, JUDGE, JUDGE_BATCH
from compliance.queue.publisher import Publisher, published
from compliance.service import audits
from compliance.service import webhooks as webhook_service
from compliance.service.transient import TRANSIENT_ERRORS
from compliance.service.verdicts import announce, decide_from_stored, judge, judge_many, record_judgments
from compliance.settings import Settings
from compliance.store import Store, submissions
from compliance.store.errors import UnknownSubmission
from compliance.store.models import Submission, SubmissionStatus, utcnow
from compliance.verdicts import Verdict

log = logging.getLogger("compliance.workers")

ACTOR = "worker"


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


# Steps shared by the single and the batched task


@dataclass(frozen=True, slots=True)
class Todo:
    submission_id: str
    pipeline: str  # the choice the submission asked for: a pipeline, or "both"
    part: str  # the pipeline this task runs

    @property
    def combine(self) -> tuple[str, ...] | None:
        """With "both": the pipelines whose stored judgments the verdict is decided from."""
        names = pipeline_names(self.pipeline)
        return names if len(names) > 1 else None


def _pipeline_for(todo: Todo, settings: Settings) -> Pipeline:
    # get_pipelines turns the MLLM's fallback off under "both": its own judgments are compared.
    return get_pipelines(todo.pipeline, settings)[todo.part]


def _triage(rt: Runtime, submission_id: str, part: str | None = None) -> Todo | None:
    """What to do with a delivered task: judge it (a Todo), or nothing because it is already decided,
    gone, or has used up its attempts (then it is failed for good). ``part`` is the pipeline the
    message asks for (one half of "both"); without it, the submission's own choice."""
    settings = rt.settings
    with rt.store.sessions() as s, s.begin():
        sub = s.get(Submission, submission_id)
        if sub is None:
            log.warning("task for unknown submission %s dropped", submission_id)
            return None
        if sub.status is SubmissionStatus.DECIDED:
            decided = True
        elif sub.attempts >= settings.max_attempts:
            if sub.status is not SubmissionStatus.FAILED or not (sub.last_error or "").startswith("gave up"):
                submissions.set_status(
                    s,
                    submission_id,
                    SubmissionStatus.FAILED,
                    error=f"gave up after {sub.attempts} attempts without a verdict",
                    actor=ACTOR,
                )
            return None
        else:
            decided = False
            metrics.STAGE_SECONDS.labels("queue.wait").observe((utcnow() - sub.created_at).total_seconds())
        pipeline = sub.pipeline or settings.service_pipeline
    if decided:
        _announce(rt, submission_id)  # in case the worker died between deciding and announcing
        return None
    names = pipeline_names(pipeline)
    return Todo(submission_id, pipeline, part if part in names else names[0])


def _announce(rt: Runtime, submission_id: str) -> None:
    announce(rt.store, rt.publisher, submission_id)


def _decided(rt: Runtime, todo: Todo, verdict: Verdict, seconds: float) -> None:
    metrics.VERDICTS.labels(todo.pipeline, verdict.outcome.value).inc()
    metrics.observe_judgments_latency(verdict.judgments.provenance.latency_ms)
    metrics.STAGE_SECONDS.labels("judge.total").observe(seconds)
    _announce(rt, todo.submission_id)


def judge_one(settings: Settings, submission_id: str, part: str | None = None) -> str:
    rt = runtime(settings)
    todo = _triage(rt, submission_id, part)
    if todo is None:
        return "skipped"
    pipeline = _pipeline_for(todo, settings)
    start = time.perf_counter()
    if todo.combine is None:
        verdict: Verdict | None = judge(rt.store, settings, submission_id, pipeline, actor=ACTOR)
    else:
        record_judgments(rt.store, settings, submission_id, pipeline, actor=ACTOR)
        verdict = decide_from_stored(rt.store, settings, submission_id, todo.combine, actor=ACTOR)
    if verdict is None:
        return f"{todo.part} judged; waiting for the other pipeline"
    _decided(rt, todo, verdict, time.perf_counter() - start)
    return verdict.outcome.value


def judge_requests(settings: Settings, requests: list[tuple[str, str | None]]) -> dict[str, str]:
    """A batch from the GPU queue, (submission id, pipeline part) each: one ``judge_batch`` call per
    pipeline for everything still to do. A transient failure puts the submission back on its queue
    with a delay."""
    rt = runtime(settings)
    todos: dict[str, Todo] = {}
    outcome: dict[str, str] = {}
    for submission_id, part in dict(requests).items():  # a duplicate delivery in one batch counts once
        todo = _triage(rt, submission_id, part)
        if todo is None:
            outcome[submission_id] = "skipped"
        else:
            todos[submission_id] = todo
    groups: dict[tuple[str, str], list[Todo]] = {}
    for todo in todos.values():
        groups.setdefault((todo.pipeline, todo.part), []).append(todo)
    for group in groups.values():
        metrics.MLLM_BATCH.observe(len(group))
        pipeline = _pipeline_for(group[0], settings)
        start = time.perf_counter()
        results = judge_many(
            rt.store, settings, [t.submission_id for t in group], pipeline, combine=group[0].combine, actor=ACTOR
        )
        seconds = (time.perf_counter() - start) / len(group)
        for todo, result in zip(group, results, strict=True):
            if result is None:
                outcome[todo.submission_id] = f"{todo.part} judged; waiting for the other pipeline"
            elif isinstance(result, Verdict):
                _decided(rt, todo, result, seconds)
                outcome[todo.submission_id] = result.outcome.value
            elif isinstance(result, TRANSIENT_ERRORS):
                outcome[todo.submission_id] = f"retry: {type(result).__name__}"
                _requeue_later(rt, todo)
            elif isinstance(result, UnknownSubmission):
                outcome[todo.submission_id] = "skipped"
            else:
                log.error("submission %s failed: %s", todo.submission_id, result)
                outcome[todo.submission_id] = f"failed: {type(result).__name__}"
    return outcome


def _requeue_later(rt: Runtime, todo: Todo) -> None:
    # The batch task has no per-request retry; a delayed message does the same. If even that fails,
    # the submission is FAILED with attempts left, and the sweeper comes back to it.
    published(
        lambda: rt.publisher.judge_part(todo.submission_id, todo.part, countdown=30),
        f"submission {todo.submission_id}",
    )


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


def register_tasks(app: Celery, settings: Settings) -> None:
    """Define the tasks on ``app``; their retry and batch options come from ``settings``."""
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

    @app.task(name=AUDIT_CHUNK, **retrying)
    def audit_chunk(job_id: str) -> bool:
        return _counted("audit_chunk", run_audit_chunk, settings, job_id)

    @app.task(name=DELIVER_WEBHOOK, **retrying)
    def deliver_webhook(delivery_id: int) -> str:
        return _counted("deliver_webhook", deliver, settings, delivery_id)
