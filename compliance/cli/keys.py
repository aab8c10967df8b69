"""``compliance keys``: carriers' API keys for the upload API."""

from __future__ import annotations

from typing import Annotated

import typer

from compliance.cli.console import (
    err,
    open_store,
    out,
    user_errors,
)

keys_app = typer.Typer(help="Carriers' API keys for the upload API.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    name: Annotated[str, typer.Option(help="what uses the key, e.g. 'driver app'")] = "api",
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="what the key may do, repeatable: submit, registry, review, audit, webhooks, admin (all)."
            " Default: submit (upload and read its carrier's submissions)",
        ),
    ] = None,
) -> None:
    """Make a key with its scopes; it is printed once (only its hash is kept)."""
    from compliance.store import keys, registry

    with user_errors():
        scopes = keys.parse_scopes(scope) if scope else keys.DEFAULT_SCOPES
        store = open_store()
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            key, token = keys.create_key(s, found.id, name=name, scopes=scopes, actor="cli")
            err.print(
                f"key {key.key_id} for {found.code} ({key.name}, scopes: {key.scopes});"
                " keep it now, it is not shown again:"
            )
    print(token)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id (cmp_<id>_…)")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from compliance.store import keys

    with user_errors():
        store = open_store()
        with store.sessions() as s, s.begin():
            key = keys.revoke_key(s, key_id.removeprefix("cmp_").split("_")[0], actor="cli")
            out.print(f"key {key.key_id} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


@keys_app.command("list")
def keys_list(carrier: Annotated[str, typer.Argument(help="carrier code")]) -> None:
    """A carrier's keys (ids, names and scopes; the secrets are not kept)."""
    from rich.table import Table

    from compliance.store import keys, registry

    with user_errors():
        store = open_store()
        with store.sessions() as s:
            found = registry.get_carrier(s, carrier)
            table = Table(title=f"API keys of {found.code}", header_style="bold")
            for col in ("key id", "name", "scopes", "created", "revoked"):
                table.add_column(col)
            for k in keys.list_keys(s, found.id):
                revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else ""
                table.add_row(k.key_id, k.name, k.scopes.replace(",", " "), f"{k.created_at:%Y-%m-%d %H:%M}", revoked)
            out.print(table)
