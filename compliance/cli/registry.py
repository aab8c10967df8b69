"""``compliance registry``: carriers, their vehicles, drivers and sites."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compliance.cli.console import (
    UserError,
    fail,
    open_store,
    out,
    settings_for,
    user_errors,
)

registry_app = typer.Typer(help="Carriers, their vehicles and drivers.", no_args_is_help=True)


@registry_app.command("add-carrier")
def add_carrier(
    code: Annotated[str, typer.Argument(help="short unique code, e.g. ACME")],
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Register a carrier."""
    from compliance.service import registry as registering

    with user_errors():
        found = registering.add_carrier(open_store(), code=code, name=name or code, actor="cli")
        out.print(f"carrier {found.code} (id {found.id})")


@registry_app.command("add-vehicle")
def add_vehicle(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    plate: Annotated[str, typer.Argument(help="registered plate, e.g. 京A12345")],
    color: Annotated[str | None, typer.Option(help="blue, yellow, green, white or black")] = None,
    kind: Annotated[str | None, typer.Option(help="car, van, truck, bus, motorcycle or trailer")] = None,
) -> None:
    """Register a vehicle by its plate."""
    from compliance.service import registry as registering

    with user_errors():
        vehicle = registering.add_vehicle(open_store(), carrier, plate=plate, color=color, kind=kind, actor="cli")
        out.print(f"vehicle {vehicle.registered_plate} (id {vehicle.id}) for {carrier}")


@registry_app.command("add-site")
def add_site(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    code: Annotated[str, typer.Argument(help="the site's code, what an upload's site names, e.g. SH-JD")],
    name: Annotated[str, typer.Argument(help="the site's name, e.g. 上海嘉定")],
    lat: Annotated[float | None, typer.Option("--lat", help="latitude, decimal degrees")] = None,
    lon: Annotated[float | None, typer.Option("--lon", help="longitude, decimal degrees")] = None,
    radius_m: Annotated[
        float | None, typer.Option("--radius-m", help="metres around the position (default 500)")
    ] = None,
    datum: Annotated[
        str, typer.Option("--datum", help="wgs84 (GPS) or gcj02 (Chinese map apps); kept as WGS-84")
    ] = "wgs84",
) -> None:
    """Register a site: once a carrier has one, an upload's site must name one of them."""
    from compliance.service import registry as registering

    with user_errors():
        site = registering.add_site(
            open_store(),
            carrier,
            code=code,
            name=name,
            latitude=lat,
            longitude=lon,
            radius_m=radius_m,
            datum=datum,
            actor="cli",
        )
        where = (
            f" at {site.latitude:.6f}, {site.longitude:.6f} (WGS-84), radius {site.radius_m:.0f} m"
            if site.latitude is not None and site.longitude is not None and site.radius_m is not None
            else " (no position)"
        )
        out.print(f"site {site.code} {site.name} (id {site.id}) for {carrier}{where}")


@registry_app.command("add-driver")
def add_driver(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    name: Annotated[str, typer.Argument(help="the driver's name")],
    licence: Annotated[Path, typer.Option("--licence", help="the driver's licence (ID) photo")],
    ref: Annotated[str | None, typer.Option(help="the carrier's own reference for the driver")] = None,
) -> None:
    """Register a driver with his licence photo."""
    from compliance.photos import read_photo_file
    from compliance.service import registry as registering

    settings = settings_for()
    with user_errors():
        photo = read_photo_file(licence, **settings.photo_limits)
        driver = registering.add_driver(open_store(), carrier, name=name, ref=ref, licence=photo, actor="cli")
        out.print(f"driver {driver.name} (id {driver.id}, ref {driver.external_ref or '-'}) for {carrier}")


@registry_app.command("set-thresholds")
def set_thresholds(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    values: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs, e.g. blur_min=40 face_same_min=0.4")],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "set from the CLI",
) -> None:
    """Override decision thresholds for one carrier."""
    from compliance.service import registry as registering
    from compliance.store import registry

    overrides: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"expected NAME=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    with user_errors():
        found = registering.set_thresholds(open_store(), carrier, overrides, actor="cli", reason=reason)
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
                for site in registry.list_sites(s, c.id):
                    where = (
                        f"{site.latitude:.6f}, {site.longitude:.6f} r {site.radius_m:.0f} m"
                        if site.latitude is not None and site.longitude is not None and site.radius_m is not None
                        else ""
                    )
                    table.add_row("site", str(site.id), f"{site.code} {site.name}", where, "")
                out.print(table)
