"""Prometheus metrics for the API and the workers, which are different processes.

Two kinds:
- Per-process counters and histograms (uploads, stage latency, verdicts decided, webhook attempts),
  observed where the work happens. With ``PROMETHEUS_MULTIPROC_DIR`` set (``compliance serve``,
  ``api --workers N``, ``worker --metrics-port``), the processes of one group write them to that
  folder and the group's ``/metrics`` adds them up. Each container has a folder of its own, empty
  when it starts (a tmpfs): containers sharing one collided, each numbering its processes from 1.
  Prometheus scrapes every API replica's ``/metrics`` and every worker's metrics port, and sums them.
- Global gauges read when scraped, from the broker and the database: queue depth per queue,
  submissions by status, current verdicts by outcome. They are the same whichever process reads
  them, so only the sweeper (one at a time) exports them, on ``sweeper_metrics_port``
  (``serve_service_metrics``); an API replica or worker never does, or summing them would count
  each once per replica.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, make_wsgi_app, multiprocess
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

# Seconds, from a fast upload stage to a slow MLLM batch.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

UPLOADS = Counter("compliance_uploads", "Uploads answered, by result", ["result"])
STAGE_SECONDS = Histogram(
    "compliance_stage_seconds",
    "Latency per stage: accept.* in the API, queue.wait, judge.<pipeline stage> and judge.total in workers",
    ["stage"],
    buckets=_BUCKETS,
)
VERDICTS = Counter(
    "compliance_verdicts", "Verdicts decided by workers, by pipeline and outcome", ["pipeline", "outcome"]
)
TASKS = Counter("compliance_tasks", "Worker tasks run, by task and result", ["task", "result"])
MLLM_BATCH = Histogram("compliance_mllm_batch_size", "Photos per MLLM batch", buckets=(1, 2, 4, 8, 16, 32, 64))
WEBHOOK_ATTEMPTS = Counter("compliance_webhook_attempts", "Webhook POSTs, by result", ["result"])
REQUEUED = Counter("compliance_sweeper_requeued", "Submissions the sweeper queued again, by why", ["why"])
CASCADE = Counter(
    "compliance_cascade",
    "Cascade verdicts decided by workers, by the path taken: settled_by_baseline or escalated (to the MLLM)",
    ["path"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class StageTimer:
    """``with timed("accept.store"): ...`` observes the block's wall time."""

    def __init__(self, stage: str) -> None:
        self.stage = stage

    def __enter__(self) -> StageTimer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        STAGE_SECONDS.labels(self.stage).observe(time.perf_counter() - self.start)


timed = StageTimer


def observe_judgments_latency(latency_ms: dict[str, float]) -> None:
    for stage, ms in latency_ms.items():
        STAGE_SECONDS.labels(f"judge.{stage}").observe(ms / 1000.0)


class ServiceCollector(Collector):
    """The service's state as the broker and the database hold it, read at scrape time."""

    def __init__(
        self,
        queue_depths: Callable[[], dict[str, int]],
        statuses: Callable[[], dict[str, int]],
        outcomes: Callable[[], dict[str, int]],
    ) -> None:
        self.queue_depths = queue_depths
        self.statuses = statuses
        self.outcomes = outcomes

    def collect(self) -> Iterator[Any]:
        up = GaugeMetricFamily("compliance_broker_up", "1 when the broker answered this scrape")
        try:
            depths = self.queue_depths()
        except Exception:
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            depth = GaugeMetricFamily("compliance_queue_depth", "Tasks waiting in each queue", labels=["queue"])
            for name, n in sorted(depths.items()):
                depth.add_metric([name], n)
            yield depth
        yield up
        try:
            statuses, outcomes = self.statuses(), self.outcomes()
        except Exception:
            return
        by_status = GaugeMetricFamily("compliance_submissions", "Submissions by status", labels=["status"])
        for status, n in sorted(statuses.items()):
            by_status.add_metric([status], n)
        yield by_status
        by_outcome = GaugeMetricFamily(
            "compliance_current_verdicts", "Submissions by their current verdict's outcome", labels=["outcome"]
        )
        for outcome, n in sorted(outcomes.items()):
            by_outcome.add_metric([outcome], n)
        yield by_outcome


def _own_registry() -> CollectorRegistry:
    """This process's metrics (every process's of its group, in multiprocess mode)."""
    if multiprocess_dir():
        base = CollectorRegistry()
        multiprocess.MultiProcessCollector(base)
        return base
    return REGISTRY


class _Joined(Collector):
    def __init__(self, registries: Iterable[CollectorRegistry]) -> None:
        self.registries = tuple(registries)

    def collect(self) -> Iterator[Any]:
        for registry in self.registries:
            yield from registry.collect()


def serve_service_metrics(
    collector: Collector, *, host: str, port: int, token: str | None = None
) -> tuple[WSGIServer, threading.Thread]:
    """The global gauges (``collector``) and this process's own metrics, on ``host:port``: what the
    sweeper exports (``serve_guarded``)."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(collector)
    joined = CollectorRegistry(auto_describe=False)
    joined.register(_Joined((_own_registry(), extra)))
    return serve_guarded(joined, host=host, port=port, token=token)


def serve_guarded(
    registry: CollectorRegistry, *, host: str, port: int, token: str | None
) -> tuple[WSGIServer, threading.Thread]:
    """``registry`` on ``host:port``, guarded as the API's /metrics is: the bearer of ``token`` (the
    metrics token), or with none, only a client on this host. One scrape at a time (the sweeper's
    costs the database two counts), and a client that dawdles is dropped. Stop it with
    ``server.shutdown()``."""
    server = make_server(host, port, _scrapers_only(make_wsgi_app(registry), token), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    return server, thread


def _scrapers_only(app: Callable[..., Iterable[bytes]], token: str | None) -> Callable[..., Iterable[bytes]]:
    expected = f"Bearer {token}".encode() if token is not None else None

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if expected is not None:
            allowed = hmac.compare_digest(environ.get("HTTP_AUTHORIZATION", "").encode(), expected)
        else:
            allowed = ipaddress.ip_address(environ.get("REMOTE_ADDR", "0.0.0.0")).is_loopback
        if not allowed:
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"these metrics need the metrics token (COMPLIANCE_METRICS_TOKEN)\n"]
        return app(environ, start_response)

    return guarded


class _QuietHandler(WSGIRequestHandler):
    timeout = 10  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:
        pass


def render(*collectors: Collector) -> bytes:
    """The exposition text: this process's metrics (every process's, in multiprocess mode) followed
    by ``collectors``' (distinct metric names, so the two texts concatenate)."""
    base = _own_registry()
    extra = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        extra.register(collector)
    return generate_latest(base) + generate_latest(extra)
