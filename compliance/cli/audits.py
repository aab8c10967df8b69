"""``compliance audit``: batch audits, re-judging stored photos with the current models."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from compliance.cli.console import (
    err,
    fail,
    open_store,
    out,
    parse_when,
    progress_bar,
    user_errors,
)
from compliance.settings import Settings, get_settings

if TYPE_CHECKING:
    from compliance.queue.publisher import Publisher
    from compliance.store import Store

audit_app = typer.Typer(help="Batch audits: re-judge stored photos with the current models.", no_args_is_help=True)


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
    from compliance.queue.publisher import Publisher
    from compliance.service.audits import start_audit

    settings = get_settings()
    with user_errors():
        store = open_store()
        publisher = Publisher(settings)
        started = start_audit(
            store,
            publisher,
            settings,
            carrier,
            pipeline=pipeline,
            since=parse_when(since),
            until=parse_when(until),
            driver_ids=driver or [],
            vehicle_ids=vehicle or [],
            actor="cli",
            queue=not inline,
        )
        job_id, total = started.job_id, started.total
        err.print(f"audit {job_id}: {total} submission(s) of {carrier} with {pipeline or settings.service_pipeline}")
        if total and inline:
            _run_inline(store, publisher, settings, job_id, total)
        elif total:
            if not started.published:
                raise fail("the queue could not be reached; the sweeper will start it later, or run with --inline")
            if wait:
                _follow(store, job_id, total)
        _print_audit(store, job_id)


@audit_app.command("status")
def audit_status(
    job_id: Annotated[str, typer.Argument(help="the audit's id")],
    follow: Annotated[bool, typer.Option("--follow", help="wait for the end with a progress bar")] = False,
) -> None:
    """An audit's progress and diff."""
    from compliance.store import audit_jobs

    with user_errors():
        store = open_store()
        with store.sessions() as s:
            total = audit_jobs.get_audit_job(s, job_id).total
        if follow:
            _follow(store, job_id, total)
        _print_audit(store, job_id)


def _run_inline(store: Store, publisher: Publisher, settings: Settings, job_id: str, total: int) -> None:
    from compliance.service.audits import advance

    with progress_bar() as bar:
        task = bar.add_task("auditing", total=total, item="")
        while advance(
            store,
            publisher,
            settings,
            job_id,
            queue_next=False,
            on_item=lambda sid: bar.update(task, advance=1, item=sid[:8]),
        ):
            pass


def _follow(store: Store, job_id: str, total: int) -> None:
    from compliance.store import audit_jobs
    from compliance.store.models import AuditJobStatus

    with progress_bar() as bar:
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
    out.print(
        f"audit {job.id}: {job.status.value}; {p.done} re-judged, {p.failed} failed, {p.pending} pending; "
        f"{p.changed} changed"
    )
    if p.transitions:
        table = Table(title="verdicts that changed", header_style="bold")
        for col in ("from", "to", "count"):
            table.add_column(col)
        for t in p.transitions:
            table.add_row(t.before or "-", t.after or "-", str(t.count))
        out.print(table)
    if p.reasons_added or p.reasons_removed:
        table = Table(title="reasons", header_style="bold")
        for col in ("reason", "added", "removed"):
            table.add_column(col)
        for reason in sorted(set(p.reasons_added) | set(p.reasons_removed)):
            table.add_row(reason, str(p.reasons_added.get(reason, 0)), str(p.reasons_removed.get(reason, 0)))
        out.print(table)
