"""``compliance db``: migrations."""

from __future__ import annotations

import typer

from compliance.cli.console import (
    err,
    settings_for,
    shown_url,
    user_errors,
)

db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations up to head (every command that needs the database does this too)."""
    from compliance.store.db import upgrade

    settings = settings_for()
    with user_errors():
        upgrade(settings.database_url)
    err.print(f"database at head: {shown_url(settings.database_url)}")
