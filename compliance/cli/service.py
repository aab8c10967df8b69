"""The service's processes: ``api``, ``worker``, ``sweeper`` and ``serve`` (all of them, supervised).

Imports stay inside the commands so that ``compliance --help`` loads neither the web stack nor Celery.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from compliance.cli.console import (
    err,
    fail,
)
from compliance.settings import Settings, get_settings


def _host_ready(settings: Settings, *, serves_api: bool) -> None:
    """What a host checks before it starts, each refusal one line: the schema is at this code's
    revision (migrated first when ``migrate_on_start``), and API hosts that keep photos in an object
    store (so there may be several of them) share one session secret."""
    from compliance.store.db import SchemaMismatch, prepare_schema

    if (
        serves_api
        and urlsplit(settings.blob_url or "").scheme.lower() not in ("", "file")
        and settings.session_secret is None
    ):
        raise fail(
            "set COMPLIANCE_SESSION_SECRET: with photos in an object store there may be several API hosts, "
            "and a sign-in form from one host is refused by another unless all sign with the same secret"
        )
    try:
        prepare_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaMismatch as exc:
        raise fail(str(exc)) from None


def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    workers: Annotated[int, typer.Option(help="API processes (set PROMETHEUS_MULTIPROC_DIR with more than 1)")] = 1,
) -> None:
    """Serve the upload API (OpenAPI at /docs)."""
    import uvicorn

    from compliance.api.server import uvicorn_options

    settings = get_settings()
    _host_ready(settings, serves_api=True)
    if workers > 1:
        _metrics_dir()
    uvicorn.run(
        "compliance.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # Deadlines for a request's head and body, a head-size cap, a connection limit (per process).
        **uvicorn_options(settings),
    )


def _metrics_dir(*, clear: bool = False) -> str:
    """This process group's multiprocess metrics folder, made if none is set: must precede any
    prometheus import. ``clear`` (``serve``, which owns its group): counters of an earlier run are
    removed first. A container gets a folder of its own, empty at start (a tmpfs in
    ``docker-compose.yml``): containers sharing one collided, each numbering its processes from 1.
    ``api`` and ``worker`` never clear one they are given: on one host, several workers may share
    it on purpose, and one starting must not wipe its siblings' counters."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="compliance-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    if clear:
        for stale in Path(folder).glob("*.db"):
            stale.unlink(missing_ok=True)
    return folder


def worker(
    queue: Annotated[list[str], typer.Option(help="multistage, mllm, audit or webhooks; repeat for several")],
    concurrency: Annotated[int | None, typer.Option(help="processes (threads for webhooks); default 1 (8)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="serve this worker's /metrics on this port")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "info",
) -> None:
    """Start a Celery worker on the given queues; it loads the queue's models before its first task."""
    from compliance.queue.app import QUEUES

    unknown = [q for q in queue if q not in QUEUES]
    if unknown:
        raise fail(f"unknown queue {unknown[0]!r}; choose from {', '.join(QUEUES)}")
    _host_ready(get_settings(), serves_api=False)
    argv = [a for q in queue for a in ("--queue", q)] + ["--loglevel", loglevel]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    if metrics_port is not None:
        _metrics_dir()
        argv += ["--metrics-port", str(metrics_port)]
    sys.stdout.flush()
    sys.stderr.flush()
    # The worker is its own process entry point (workers/main.py): the library never imports it.
    os.execv(sys.executable, [sys.executable, "-m", "workers.main", *argv])


def sweeper(
    once: Annotated[bool, typer.Option("--once", help="sweep once and exit (for cron)")] = False,
) -> None:
    """Re-queue submissions, webhook deliveries and audits whose task the broker lost."""
    import logging

    from compliance.service.sweeper import run_sweeper

    settings = get_settings()
    _host_ready(settings, serves_api=False)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_sweeper(settings, once=once)


def serve(
    host: Annotated[str, typer.Option(help="API address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8080,
    mllm: Annotated[
        bool | None,
        typer.Option(help="start a worker for the mllm queue (loads the MLLM); default: if the GPU extra is installed"),
    ] = None,
) -> None:
    """Start the API, one worker per queue and the sweeper, and keep them running (Ctrl-C stops all)."""
    settings = get_settings()
    # The mllm queue's worker needs the GPU worker's extra (celery-batches, transformers): without
    # it that worker would refuse to start, and be restarted, every second.
    try:
        gpu_extra = importlib.util.find_spec("celery_batches") is not None
    except ImportError:
        gpu_extra = False
    if mllm and not gpu_extra:
        raise fail("--mllm needs the GPU worker's extra: pip install 'compliance[worker-gpu]' (or leave out --mllm)")
    mllm = gpu_extra if mllm is None else mllm
    _host_ready(settings, serves_api=True)  # once, before the processes race to migrate
    folder = _metrics_dir(clear=True)  # once here, not by each process it starts
    me = [sys.executable, "-c", "from compliance.cli import main; main()"]
    commands = {
        "api": [*me, "api", "--host", host, "--port", str(port)],
        "worker-multistage": [*me, "worker", "--queue", "multistage"],
        "worker-audit": [*me, "worker", "--queue", "audit"],
        "worker-webhooks": [*me, "worker", "--queue", "webhooks"],
        "sweeper": [*me, "sweeper"],
    }
    if mllm:
        commands["worker-mllm"] = [*me, "worker", "--queue", "mllm"]
    running: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands.items():
        running[name] = subprocess.Popen(command)
    err.print(f"serving: API on http://{host}:{port} (docs at /docs), {', '.join(commands)}; metrics in {folder}")
    while not stopping:
        time.sleep(1.0)
        for name, process in list(running.items()):
            if process.poll() is not None and not stopping:
                err.print(f"[yellow]{name} exited ({process.returncode}); restarting it[/]")
                running[name] = subprocess.Popen(commands[name])
    for process in running.values():
        process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
