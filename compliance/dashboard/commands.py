"""``compliance users …`` (people who sign in to the dashboard) and ``compliance demo-data``.

The CLI's console and error handling are imported when a command runs (compliance.cli imports
this module to register the commands).
"""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer

users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)

ROLES = ("viewer", "reviewer", "admin")


def _store():
    from compliance.judging import Store
    from compliance.settings import get_settings

    return Store.open(get_settings())


def _password(from_stdin: bool, generate: bool, *, confirm: bool = True) -> tuple[str, bool]:
    """The password to set, and whether it was made here (and must be shown once)."""
    from compliance.cli import UserError

    if from_stdin and generate:
        raise UserError("give --password-stdin or --generate-password, not both")
    if generate:
        return secrets.token_urlsafe(12), True
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return typer.prompt("password", hide_input=True, confirmation_prompt=confirm), False


@users_app.command("add")
def add_user(
    username: Annotated[str, typer.Argument(help="what they sign in with, e.g. li.wei@acme")],
    role: Annotated[str, typer.Option(help="viewer, reviewer or admin")] = "viewer",
    carrier: Annotated[str | None, typer.Option(help="the carrier (code) whose data they see")] = None,
    all_carriers: Annotated[
        bool, typer.Option("--all-carriers", help="the operator's own staff: they see every carrier")
    ] = False,
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="make a random password and print it once")
    ] = False,
) -> None:
    """Add a person who signs in to the dashboard (argon2id-hashed password)."""
    from compliance.cli import UserError, out, user_errors
    from compliance.store import registry, users

    with user_errors():
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if (carrier is None) == (not all_carriers):
            raise UserError("give the user's carrier (--carrier CODE) or --all-carriers")
        users.normalise_username(username)  # a bad name fails before the password is asked for
        password, made = _password(password_stdin, generate_password)
        store = _store()
        with store.sessions() as s, s.begin():
            carrier_id = registry.get_carrier(s, carrier).id if carrier else None
            user = users.add_user(
                s,
                username=username,
                password=password,
                role=role,
                carrier_id=carrier_id,
                display_name=name,
                actor="cli",
            )
            out.print(f"user {user.username} ({user.role.value}, {carrier or 'all carriers'})")
        if made:
            out.print(f"password: {password}", highlight=False)


@users_app.command("list")
def list_users() -> None:
    """List the dashboard's users."""
    from rich.table import Table

    from compliance.cli import UserError, out, user_errors
    from compliance.store import users

    with user_errors():
        store = _store()
        with store.sessions() as s:
            found = users.list_users(s)
            if not found:
                raise UserError("no users yet: add one with `compliance users add NAME --role admin --all-carriers`")
            table = Table(header_style="bold")
            for column in ("name", "display name", "role", "carrier", "active", "last sign-in"):
                table.add_column(column)
            for u in found:
                table.add_row(
                    u.username,
                    u.display_name,
                    u.role.value,
                    u.carrier.code if u.carrier else "all",
                    "yes" if u.active else "no",
                    u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never",
                )
            out.print(table)


@users_app.command("set-password")
def set_password(
    username: Annotated[str, typer.Argument()],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="make a random password and print it once")
    ] = False,
) -> None:
    """Give a user a new password; their open sessions end."""
    from compliance.cli import out, user_errors
    from compliance.store import users

    with user_errors():
        store = _store()
        with store.sessions() as s:
            users.find_user(s, username)
        password, made = _password(password_stdin, generate_password)
        with store.sessions() as s, s.begin():
            users.set_password(s, username, password, actor="cli")
        out.print(f"new password set for {username}; their sessions have ended")
        if made:
            out.print(f"password: {password}", highlight=False)


def _set_active(username: str, active: bool) -> None:
    from compliance.cli import out, user_errors
    from compliance.store import users

    with user_errors():
        store = _store()
        with store.sessions() as s, s.begin():
            users.set_active(s, username, active, actor="cli")
        out.print(f"{username} {'enabled' if active else 'disabled; their sessions have ended'}")


@users_app.command("disable")
def disable(username: Annotated[str, typer.Argument()]) -> None:
    """Stop a user from signing in; their open sessions end."""
    _set_active(username, False)


@users_app.command("enable")
def enable(username: Annotated[str, typer.Argument()]) -> None:
    """Let a disabled user sign in again."""
    _set_active(username, True)


def demo_data(
    submissions: Annotated[int, typer.Option(help="how many synthetic submissions", min=1, max=2_000_000)] = 100_000,
    days: Annotated[int, typer.Option(help="spread over this many days up to now", min=1, max=3650)] = 180,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same history")] = 7,
) -> None:
    """Fill the database with SYNTHETIC history (carriers, drivers, vehicles, verdicts over months)
    so that the dashboard can be tried and timed at scale."""
    from compliance.cli import UserError, err, out, user_errors
    from compliance.demo_data import generate
    from compliance.settings import get_settings

    settings = get_settings()
    err.print(
        f"[bold yellow]SYNTHETIC DATA:[/] {submissions:,} made-up submissions go into {settings.database_url}. "
        "Every carrier, driver, vehicle and verdict here is invented (carrier codes start with SYN-); "
        "the photos are the bundled samples.",
        highlight=False,
        soft_wrap=True,
    )
    with user_errors():
        try:
            summary = generate(_store(), settings, submissions=submissions, days=days, seed=seed, console=err)
        except ValueError as exc:  # e.g. the synthetic carriers are there already
            raise UserError(str(exc)) from None
    out.print(summary.describe(), highlight=False, soft_wrap=True)
