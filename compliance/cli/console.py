"""What every command shares: the consoles, one-line errors, progress, settings and the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from compliance.settings import Settings, get_settings

if TYPE_CHECKING:
    from compliance.store import Store

MllmModel = Annotated[
    str | None,
    typer.Option("--mllm-model", help="MLLM checkpoint folder or hub id (overrides COMPLIANCE_MLLM_MODEL)"),
]


out = Console()
err = Console(stderr=True)

T = TypeVar("T")

PIPELINE_HELP = (
    "multistage, mllm, both (each pipeline, and one verdict from the two compared) or cascade (the baseline, "
    "and the MLLM too only where the baseline is unsure; then decided as both)"
)


class UserError(Exception):
    """Anything the user can fix: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    # Escaped: a message is text, and rich would take "pip install '.[mllm]'" for markup and drop it.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the domain's boundary errors into one-line messages instead of tracebacks."""
    from compliance.evaluation.manifest import ManifestError
    from compliance.mllm.backends.base import MllmError
    from compliance.photos import PhotoRejected
    from compliance.service.intake import InvalidUpload

    try:
        yield
    except (UserError, PhotoRejected, ManifestError, FileNotFoundError, MllmError, InvalidUpload) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # domain errors from the store carry their own message
        if type(exc).__module__.startswith("compliance.store") and isinstance(exc, (LookupError, ValueError)):
            raise fail(str(exc)) from None
        raise


def spinner(label: str, work: Callable[[], T]) -> T:
    with err.status(label):
        return work()


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}", style="dim"),
        console=err,
        transient=False,
    )


def settings_for(mllm_model: str | None = None) -> Settings:
    settings = get_settings()
    if mllm_model is not None:
        settings = settings.model_copy(update={"mllm_model": mllm_model})
    return settings


def pipeline_choice(choice: str) -> tuple[str, ...]:
    from compliance.pipelines import pipeline_names

    try:
        return pipeline_names(choice)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def open_store() -> Store:
    """The store as every admin command opens it: migrated first only where hosts migrate on start
    (``COMPLIANCE_MIGRATE_ON_START``); in production a command never migrates behind the step's back,
    and refuses in one line a schema that is not at its code's revision."""
    from compliance.store import Store
    from compliance.store.db import SchemaMismatch, prepare_schema

    settings = settings_for()
    try:
        prepare_schema(settings.database_url, migrate=settings.migrate_on_start)
    except SchemaMismatch as exc:
        raise fail(str(exc)) from None
    return Store.open(settings, migrate=False)


def parse_when(text: str | None) -> datetime | None:
    """ISO 8601; a time without an offset is read in the configured local time zone."""
    if text is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not an ISO 8601 time such as 2026-11-25T08:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(settings_for().thresholds.local_timezone))
    return value


def shown_url(url: str) -> str:
    """A database URL as it may be printed: the password masked (``***``)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: print nothing of it rather than a secret
        return "(the configured database)"
