"""``compliance users``: people who sign in to the dashboard."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer

from compliance.cli.console import (
    UserError,
    open_store,
    out,
    user_errors,
)

users_app = typer.Typer(help="People who sign in to the dashboard.", no_args_is_help=True)

ROLES = ("viewer", "reviewer", "admin")
LANGUAGES = ("zh-CN", "en")  # compliance.settings.DashboardLanguage; "browser": none, follow the browser


def _password(from_stdin: bool, generate: bool, *, confirm: bool = True) -> tuple[str, bool]:
    """The password to set, and whether it was made here (and must be shown once)."""

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
    lang: Annotated[
        str | None,
        typer.Option("--lang", help="the dashboard's language for them: zh-CN or en (default: their browser's)"),
    ] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="make a random password and print it once")
    ] = False,
) -> None:
    """Add a person who signs in to the dashboard (argon2id-hashed password)."""
    from compliance.store import registry, users

    with user_errors():
        if role not in ROLES:
            raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if (carrier is None) == (not all_carriers):
            raise UserError("give the user's carrier (--carrier CODE) or --all-carriers")
        if lang is not None and lang not in LANGUAGES:
            raise UserError(f"--lang must be one of {', '.join(LANGUAGES)}, not {lang!r}")
        users.normalise_username(username)  # a bad name fails before the password is asked for
        password, made = _password(password_stdin, generate_password)
        store = open_store()
        with store.sessions() as s, s.begin():
            carrier_id = registry.get_carrier(s, carrier).id if carrier else None
            user = users.add_user(
                s,
                username=username,
                password=password,
                role=role,
                carrier_id=carrier_id,
                display_name=name,
                language=lang,
                actor="cli",
            )
            out.print(f"user {user.username} ({user.role.value}, {carrier or 'all carriers'})")
        if made:
            out.print(f"password: {password}", highlight=False)


@users_app.command("list")
def list_users() -> None:
    """List the dashboard's users."""
    from rich.table import Table

    from compliance.store import users

    with user_errors():
        store = open_store()
        with store.sessions() as s:
            found = users.list_users(s)
            if not found:
                raise UserError("no users yet: add one with `compliance users add NAME --role admin --all-carriers`")
            table = Table(header_style="bold")
            for column in ("name", "display name", "role", "carrier", "language", "active", "last sign-in"):
                table.add_column(column)
            for u in found:
                table.add_row(
                    u.username,
                    u.display_name,
                    u.role.value,
                    u.carrier.code if u.carrier else "all",
                    u.language or "browser",
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
    from compliance.store import users

    with user_errors():
        store = open_store()
        with store.sessions() as s:
            users.find_user(s, username)
        password, made = _password(password_stdin, generate_password)
        with store.sessions() as s, s.begin():
            users.set_password(s, username, password, actor="cli")
        out.print(f"new password set for {username}; their sessions have ended")
        if made:
            out.print(f"password: {password}", highlight=False)


@users_app.command("set-lang")
def set_lang(
    username: Annotated[str, typer.Argument()],
    lang: Annotated[str, typer.Argument(help="zh-CN, en, or browser (follow their browser)")],
) -> None:
    """Set the dashboard's language for a user (the page header's switch sets it too)."""
    from compliance.store import users

    with user_errors():
        if lang not in (*LANGUAGES, "browser"):
            raise UserError(f"language must be one of {', '.join(LANGUAGES)} or browser, not {lang!r}")
        store = open_store()
        with store.sessions() as s, s.begin():
            user = users.find_user(s, username)
            users.set_language(s, user.id, None if lang == "browser" else lang, actor="cli")
        out.print(f"{username}: the dashboard speaks {lang}")


def _set_active(username: str, active: bool) -> None:
    from compliance.store import users

    with user_errors():
        store = open_store()
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
