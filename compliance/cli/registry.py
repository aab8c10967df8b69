"""``compliance registry``: carriers, their vehicles and drivers."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compliance.cli.console import (
    UserError,
    fail,
    open_store,
    out,
    settings_for,
    user_errors,
)

if TYPE_CHECKING:
    pass

registry_app = typer.Typer(help="Carriers, their vehicles and drivers.", no_args_is_help=True)


@registry_app.command("add-carrier")
def add_carrier(
    code: Annotated[str, typer.Argument(help="short unique code, e.g. ACME")],
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Register a carrier."""
    from compliance.store import registry

    with user_errors():
        store = open_store()
        with store.sessions() as s, s.begin():
            carrier = registry.add_carrier(s, code=code, name=name or code, actor="cli")
            out.print(f"carrier {carrier.code} (id {carrier.id})")


@registry_app.command("add-vehicle")
def add_vehicle(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    plate: Annotated[str, typer.Argument(help="registered plate, e.g. 京A12345")],
    color: Annotated[str | None, typer.Option(help="blue, yellow, green, white or black")] = None,
    kind: Annotated[str | None, typer.Option(help="car, van, truck, bus, motorcycle or trailer")] = None,
) -> None:
    """Register a vehicle by its plate."""
    from compliance.store import registry

    with user_errors():
        store = open_store()
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            vehicle = registry.add_vehicle(
                s, carrier_id=found.id, registered_plate=plate, plate_color=color, kind=kind, actor="cli"
            )
            out.print(f"vehicle {vehicle.registered_plate} (id {vehicle.id}) for {found.code}")


@registry_app.command("add-driver")
def add_driver(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    name: Annotated[str, typer.Argument(help="the driver's name")],
    licence: Annotated[Path, typer.Option("--licence", help="the driver's licence (ID) photo")],
    ref: Annotated[str | None, typer.Option(help="the carrier's own reference for the driver")] = None,
) -> None:
    """Register a driver with his licence photo."""
    from compliance.photos import read_photo_file
    from compliance.store import registry

    settings = settings_for()
    with user_errors():
        photo = read_photo_file(licence, **settings.photo_limits)
        store = open_store()
        sha = store.blobs.put(photo.data)
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            driver = registry.add_driver(
                s, carrier_id=found.id, name=name, external_ref=ref, licence_sha256=sha, actor="cli"
            )
            out.print(f"driver {driver.name} (id {driver.id}, ref {driver.external_ref or '-'}) for {found.code}")


@registry_app.command("set-thresholds")
def set_thresholds(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    values: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs, e.g. blur_min=40 face_same_min=0.4")],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "set from the CLI",
) -> None:
    """Override decision thresholds for one carrier."""
    from compliance.store import registry

    overrides: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"expected NAME=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    with user_errors():
        store = open_store()
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            registry.set_carrier_thresholds(s, found.id, overrides, actor="cli", reason=reason)
            out.print(f"{found.code}: {registry.effective_thresholds(found, settings_for().thresholds).model_dump()}")


@registry_app.command("list")
def list_registry(
    carrier: Annotated[str | None, typer.Argument(help="carrier code; all when left out")] = None,
) -> None:
    """List carriers with their vehicles and drivers."""
    from rich.table import Table

    from compliance.store import registry

    with user_errors():
        store = open_store()
        with store.sessions() as s:
            carriers = [registry.get_carrier(s, carrier)] if carrier else registry.list_carriers(s)
            if not carriers:
                raise UserError("the registry is empty: add a carrier with `compliance registry add-carrier CODE`")
            for c in carriers:
                table = Table(title=f"{c.code} — {c.name}", header_style="bold")
                for col in ("kind", "id", "plate / name", "colour / ref", "licence photo"):
                    table.add_column(col)
                for v in registry.list_vehicles(s, c.id):
                    table.add_row("vehicle", str(v.id), v.registered_plate, v.plate_color or "", "")
                for d in registry.list_drivers(s, c.id):
                    table.add_row(
                        "driver", str(d.id), d.name, d.external_ref or "", "yes" if d.licence_sha256 else "no"
                    )
                out.print(table)
