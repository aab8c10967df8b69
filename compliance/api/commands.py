"""The service's commands: ``keys``, ``api``, ``worker``, ``sweeper``, ``serve`` and ``audit``.

Registered on the main typer app by ``compliance.cli``. Imports stay inside the commands so that
``compliance --help`` does not load the web stack or Celery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compliance import cli
from compliance.settings import Settings, get_settings

if TYPE_CHECKING:
    from compliance.judging import Store

keys_app = typer.Typer(help="Carriers' API keys for the upload API.", no_args_is_help=True)
audit_app = typer.Typer(help="Batch audits: re-judge stored photos with the current models.", no_args_is_help=True)

QUEUE_NAMES = ("multistage", "mllm", "audit", "webhooks")


@keys_app.command("create")
def keys_create(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    name: Annotated[str, typer.Option(help="what uses the key, e.g. 'driver app'")] = "api",
) -> None:
    """Make a key; it is printed once (only its hash is kept)."""
    from compliance.judging import Store
    from compliance.store import keys, registry

    with cli.user_errors():
        store = Store.open(get_settings())
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            key, token = keys.create_key(s, found.id, name=name, actor="cli")
            cli.err.print(f"key {key.key_id} for {found.code} ({key.name}); keep it now, it is not shown again:")
    print(token)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (cmp_<id>_…)")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from compliance.judging import Store
    from compliance.store import keys

    with cli.user_errors():
        store = Store.open(get_settings())
        with store.sessions() as s, s.begin():
            key = keys.revoke_key(s, key_id.removeprefix("cmp_").split("_")[0], actor="cli")
            cli.out.print(f"key {key.key_id} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@keys_app.command("list")
def keys_list(carrier: Annotated[str, typer.Argument(help="carrier code")]) -> None:
    """A carrier's keys (ids and names; the secrets are not kept)."""
    from rich.table import Table

    from compliance.judging import Store
    from compliance.store import keys, registry

    with cli.user_errors():
        store = Store.open(get_settings())
        with store.sessions() as s:
            found = registry.get_carrier(s, carrier)
            table = Table(title=f"API keys of {found.code}", header_style="bold")
            for col in ("key id", "name", "created", "revoked"):
                table.add_column(col)
            for k in keys.list_keys(s, found.id):
                revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else ""
                table.add_row(k.key_id, k.name, f"{k.created_at:%Y-%m-%d %H:%M}", revoked)
            cli.out.print(table)


def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    workers: Annotated[int, typer.Option(help="API processes (set PROMETHEUS_MULTIPROC_DIR with more than 1)")] = 1,
) -> None:
    """Serve the upload API (OpenAPI at /docs)."""
    import uvicorn

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
    )


def _metrics_dir() -> str:
    """The multiprocess metrics folder, made if none is set: must precede any prometheus import."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="compliance-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    Path(folder).mkdir(parents=True, exist_ok=True)
    return folder


def worker(
    queue: Annotated[list[str], typer.Option(help="multistage, mllm, audit or webhooks; repeat for several")],
    concurrency: Annotated[int | None, typer.Option(help="processes (threads for webhooks); default 1 (8)")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="serve this worker's /metrics on this port")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level")] = "info",
) -> None:
    """Start a Celery worker on the given queues; it loads the queue's models before its first task."""
    unknown = [q for q in queue if q not in QUEUE_NAMES]
    if unknown:
        raise cli.fail(f"unknown queue {unknown[0]!r}; choose from {', '.join(QUEUE_NAMES)}")
    if metrics_port is not None:
        folder = _metrics_dir()
        from prometheus_client import CollectorRegistry, multiprocess, start_http_server

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)
        start_http_server(metrics_port, registry=registry)
    import workers.main as worker_main

    settings = worker_main.settings
    worker_main.PRELOAD[:] = [worker_main.PIPELINE_OF_QUEUE[q] for q in queue if q in worker_main.PIPELINE_OF_QUEUE]
    # A GPU worker holds a batch's worth of messages (unacked: a crash hands them all back).
    prefetch = settings.mllm_batch_size if "mllm" in queue else 1
    io_only = set(queue) == {"webhooks"}
    argv = [
        "worker",
        "--queues",
        ",".join(queue),
        "--loglevel",
        loglevel,
        "--prefetch-multiplier",
        str(prefetch),
        "--hostname",
        f"{'+'.join(queue)}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--pool",
        "threads" if io_only else "prefork",
        "--concurrency",
        str(concurrency or (8 if io_only else 1)),
    ]
    worker_main.app.worker_main(argv)


def sweeper(
    once: Annotated[bool, typer.Option("--once", help="sweep once and exit (for cron)")] = False,
) -> None:
    """Re-queue submissions, webhook deliveries and audits whose task the broker lost."""
    import logging

    from workers.sweeper import run_sweeper

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_sweeper(get_settings(), once=once)


def serve(
    host: Annotated[str, typer.Option(help="API address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port")] = 8080,
    mllm: Annotated[bool, typer.Option(help="start a worker for the mllm queue (loads the MLLM)")] = True,
) -> None:
    """Start the API, one worker per queue and the sweeper, and keep them running (Ctrl-C stops all)."""
    from compliance.store.db import upgrade

    settings = get_settings()
    with cli.user_errors():
        upgrade(settings.database_url)  # once, before the processes race to do it
    folder = _metrics_dir()
    for stale in Path(folder).glob("*.db"):
        stale.unlink()  # counters of an earlier run
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
    cli.err.print(f"serving: API on http://{host}:{port} (docs at /docs), {', '.join(commands)}; metrics in {folder}")
    while not stopping:
        time.sleep(1.0)
        for name, process in list(running.items()):
            if process.poll() is not None and not stopping:
                cli.err.print(f"[yellow]{name} exited ({process.returncode}); restarting it[/]")
                running[name] = subprocess.Popen(commands[name])
    for process in running.values():
        process.terminate()
    for process in running.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@audit_app.command("start")
def audit_start(
    carrier: Annotated[str, typer.Option(help="carrier code")],
    since: Annotated[str | None, typer.Option(help="submissions created at or after, ISO 8601")] = None,
    until: Annotated[str | None, typer.Option(help="… and before, ISO 8601")] = None,
    driver: Annotated[list[int] | None, typer.Option(help="driver id; repeat for several")] = None,
    vehicle: Annotated[list[int] | None, typer.Option(help="vehicle id; repeat for several")] = None,
    pipeline: Annotated[str | None, typer.Option(help="default: the deployment's (service_pipeline)")] = None,
    inline: Annotated[bool, typer.Option("--inline", help="judge here, not on the audit queue")] = False,
    wait: Annotated[bool, typer.Option(help="follow the job to its end with a progress bar")] = True,
) -> None:
    """Start a batch audit and follow it with a progress bar; prints the diff at the end."""
    from compliance.judging import Store
    from compliance.pipelines import CHOICES
    from compliance.store import audit_jobs, registry

    settings = get_settings()
    with cli.user_errors():
        chosen = pipeline or settings.service_pipeline
        if chosen not in CHOICES:
            raise cli.fail(f"unknown pipeline {chosen!r}; choose from {', '.join(CHOICES)}")
        store = Store.open(settings)
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            job = audit_jobs.create_audit_job(
                s,
                found.id,
                pipeline=chosen,
                since=cli.parse_when(since),
                until=cli.parse_when(until),
                driver_ids=driver or [],
                vehicle_ids=vehicle or [],
                actor="cli",
            )
            job_id, total = job.id, job.total
        cli.err.print(f"audit {job_id}: {total} submission(s) of {found.code} with {chosen}")
        if total and inline:
            _run_inline(store, settings, job_id, total)
        elif total:
            from workers.publisher import BrokerUnavailable, Publisher

            try:
                Publisher(settings).audit(job_id)
            except BrokerUnavailable as exc:
                raise cli.fail(f"{exc}; the sweeper will start it later, or run with --inline") from None
            if wait:
                _follow(store, job_id, total)
        _print_audit(store, job_id)


@audit_app.command("status")
def audit_status(
    job_id: Annotated[str, typer.Argument(help="the audit's id")],
    follow: Annotated[bool, typer.Option("--follow", help="wait for the end with a progress bar")] = False,
) -> None:
    """An audit's progress and diff."""
    from compliance.judging import Store
    from compliance.store import audit_jobs

    with cli.user_errors():
        store = Store.open(get_settings())
        with store.sessions() as s:
            total = audit_jobs.get_audit_job(s, job_id).total
        if follow:
            _follow(store, job_id, total)
        _print_audit(store, job_id)


def _run_inline(store: Store, settings: Settings, job_id: str, total: int) -> None:
    from compliance.service.audits import run_chunk

    with cli.progress_bar() as bar:
        task = bar.add_task("auditing", total=total, item="")
        more = True
        while more:
            chunk = run_chunk(store, settings, job_id, on_item=lambda sid: bar.update(task, advance=1, item=sid[:8]))
            more = chunk.more


def _follow(store: Store, job_id: str, total: int) -> None:
    from compliance.store import audit_jobs
    from compliance.store.models import AuditJobStatus

    with cli.progress_bar() as bar:
        task = bar.add_task("auditing", total=total, item="")
        while True:
            with store.sessions() as s:
                job = audit_jobs.get_audit_job(s, job_id)
                p = audit_jobs.progress(s, job_id)
            bar.update(task, completed=p.done + p.failed, item=f"{p.changed} changed")
            if job.status is AuditJobStatus.DONE:
                break
            time.sleep(0.5)


def _print_audit(store: Store, job_id: str) -> None:
    from rich.table import Table

    from compliance.store import audit_jobs

    with store.sessions() as s:
        job = audit_jobs.get_audit_job(s, job_id)
        p = audit_jobs.progress(s, job_id)
    cli.out.print(
        f"audit {job.id}: {job.status.value}; {p.done} re-judged, {p.failed} failed, {p.pending} pending; "
        f"{p.changed} changed"
    )
    if p.transitions:
        table = Table(title="verdicts that changed", header_style="bold")
        for col in ("from", "to", "count"):
            table.add_column(col)
        for t in p.transitions:
            table.add_row(t.before or "-", t.after or "-", str(t.count))
        cli.out.print(table)
    if p.reasons_added or p.reasons_removed:
        table = Table(title="reasons", header_style="bold")
        for col in ("reason", "added", "removed"):
            table.add_column(col)
        for reason in sorted(set(p.reasons_added) | set(p.reasons_removed)):
            table.add_row(reason, str(p.reasons_added.get(reason, 0)), str(p.reasons_removed.get(reason, 0)))
        cli.out.print(table)
