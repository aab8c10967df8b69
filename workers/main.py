"""The worker process: the Celery app with the tasks registered, for the queues it serves.

    python -m workers.main --queue multistage [--concurrency N] [--metrics-port P]

``compliance worker`` runs this (``celery -A workers.main worker -Q …`` works too, without the
models loaded ahead). Each process loads its queue's pipeline before its first task.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from celery.signals import celeryd_after_setup, worker_process_init

from compliance import metrics
from compliance.pipelines import get_pipeline
from compliance.queue.app import JUDGE_BATCH, MLLM, MULTISTAGE, QUEUES, WEBHOOKS, make_celery
from compliance.settings import get_settings
from compliance.store.db import SchemaMismatch, prepare_schema
from workers.tasks import register_tasks, reset_runtime

settings = get_settings()
app = make_celery(settings)
register_tasks(app, settings)

log = logging.getLogger("compliance.workers")

# Pipelines to load in each worker process before it takes a task.
PRELOAD: list[str] = []
PIPELINE_OF_QUEUE = {MULTISTAGE: "multistage", MLLM: "mllm"}


@worker_process_init.connect
def _process_started(**_: Any) -> None:
    reset_runtime()
    preload()


def lacking(queues: Any) -> str | None:
    """Why this install cannot serve ``queues``, if it cannot: a worker taking the mllm queue without
    its batch task would throw away every message it took."""
    if MLLM in queues and JUDGE_BATCH not in app.tasks:
        return (
            "the mllm queue needs celery-batches, which this install lacks: install the GPU worker's "
            "extra (pip install 'compliance[worker-gpu]') or serve the other queues"
        )
    return None


@celeryd_after_setup.connect
def _queues_served(instance: Any, **_: Any) -> None:
    """``celery -A workers.main worker -Q mllm`` is checked too, once -Q is applied."""
    if reason := lacking(instance.app.amqp.queues.consume_from) or schema_refused():
        print(f"error: {reason}", file=sys.stderr)
        # SystemExit, not an Exception: Celery logs and ignores those from a signal's receivers.
        raise SystemExit(2)


def schema_refused() -> str | None:
    """Why this worker may not run on the database (``compliance worker`` asks before it gets here;
    a worker started with ``celery -A`` or ``python -m`` is asked here), or None."""
    try:
        prepare_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaMismatch as exc:
        return str(exc)
    return None


def preload() -> None:
    for name in PRELOAD:
        try:
            get_pipeline(name, settings).load()
        except Exception as exc:  # weights missing, no GPU: say so; its tasks fail (and retry) until fixed
            log.error("pipeline %s could not load its models: %s: %s", name, type(exc).__name__, exc)
        else:
            log.info("pipeline %s ready", name)


def serve_metrics(port: int) -> None:
    """This host's worker processes' counters on ``port``: to the bearer of the metrics token, or with
    none to a scraper on this host only (``compliance.metrics.serve_guarded``)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    metrics.serve_guarded(registry, host="0.0.0.0", port=port, token=token)


def run(queues: list[str], concurrency: int | None, metrics_port: int | None, loglevel: str) -> None:
    # Here too: app.worker_main drops the exit code of a worker that refused to start.
    if reason := lacking(queues) or schema_refused():
        sys.exit(f"error: {reason}")
    if metrics_port is not None:
        serve_metrics(metrics_port)
    PRELOAD[:] = [PIPELINE_OF_QUEUE[q] for q in queues if q in PIPELINE_OF_QUEUE]
    # A GPU worker holds a batch's worth of messages (unacked: a crash hands them all back).
    prefetch = settings.mllm_batch_size if MLLM in queues else 1
    io_only = set(queues) == {WEBHOOKS}
    argv = [
        "worker",
        "--queues",
        ",".join(queues),
        "--loglevel",
        loglevel,
        "--prefetch-multiplier",
        str(prefetch),
        "--hostname",
        f"{'+'.join(queues)}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--pool",
        "threads" if io_only else "prefork",
        "--concurrency",
        str(concurrency or (8 if io_only else 1)),
    ]
    app.worker_main(argv)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.main", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", action="append", required=True, choices=QUEUES)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--metrics-port", type=int)
    parser.add_argument("--loglevel", default="info")
    args = parser.parse_args(argv)
    run(args.queue, args.concurrency, args.metrics_port, args.loglevel)


if __name__ == "__main__":
    main()
