"""``compliance db``: migrations, and the photo folder's orphans."""

from __future__ import annotations

from typing import Annotated

import typer

from compliance.cli.console import (
    err,
    open_store,
    out,
    settings_for,
    shown_url,
    user_errors,
)

db_app = typer.Typer(help="The database: migrations, and photo files nothing refers to.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations up to head (every command that needs the database does this too)."""
    from compliance.store.db import upgrade

    settings = settings_for()
    with user_errors():
        upgrade(settings.database_url)
    err.print(f"database at head: {shown_url(settings.database_url)}")


@db_app.command("sweep-photos")
def sweep_photos(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be removed, remove nothing")] = False,
) -> None:
    """Remove photo files that no submission, driver or audit event refers to, once older than
    COMPLIANCE_ORPHAN_GRACE_S (the sweeper does this every COMPLIANCE_ORPHAN_SWEEP_INTERVAL_S)."""
    from compliance.service.orphans import sweep_photos as sweep

    settings = settings_for()
    with user_errors():
        store = open_store()
        try:
            result = sweep(store, settings, dry_run=dry_run)
        finally:
            store.engine.dispose()
    if result.skipped and result.skipped != "stopped":
        err.print(f"[yellow]nothing swept: {result.skipped}[/]")
        raise typer.Exit(code=1)
    removed = "would remove" if dry_run else "removed"
    out.print(
        f"kept {result.kept} photo(s): {result.kept_referenced} referenced, {result.kept_recent} newer than "
        f"{_duration(settings.orphan_grace_s)}",
        highlight=False,
    )
    out.print(
        f"{removed} {result.removed} photo(s) and {result.temporary_removed} stale temporary file(s), "
        f"freeing {_size(result.freed_bytes)}",
        highlight=False,
    )


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"


def _size(n: int) -> str:
    """Bytes exactly, and in binary units when over a KiB."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    units = iter(("MiB", "GiB", "TiB"))
    unit = "KiB"
    while value >= 1024 and unit != "TiB":
        value, unit = value / 1024, next(units)
    return f"{n} bytes ({value:.1f} {unit})"
