"""``compliance demo-data``: SYNTHETIC history to try the dashboard on."""

from __future__ import annotations

from typing import Annotated

import typer

from compliance.cli.console import (
    UserError,
    err,
    open_store,
    out,
    shown_url,
    user_errors,
)
from compliance.settings import get_settings


def demo_data(
    submissions: Annotated[int, typer.Option(help="how many synthetic submissions", min=1, max=2_000_000)] = 100_000,
    days: Annotated[int, typer.Option(help="spread over this many days up to now", min=1, max=3650)] = 180,
    seed: Annotated[int, typer.Option(help="random seed: the same seed gives the same history")] = 7,
) -> None:
    """Fill the database with SYNTHETIC history (carriers, drivers, vehicles, verdicts over months)
    so that the dashboard can be tried and timed at scale. The claims are invented; every judgment
    is the multistage pipeline's on the bundled photos (and blurred, dark, small or cropped copies)."""
    from compliance.demo_data import NOTE_EN, NOTE_ZH, generate

    settings = get_settings()
    err.print(
        f"[bold yellow]SYNTHETIC DATA 合成数据:[/] {submissions:,} made-up submissions go into "
        f"{shown_url(settings.database_url)} (carrier codes start with SYN-).\n{NOTE_ZH}\n{NOTE_EN}",
        highlight=False,
        soft_wrap=True,
    )
    with user_errors():
        try:
            summary = generate(open_store(), settings, submissions=submissions, days=days, seed=seed, console=err)
        except ValueError as exc:  # e.g. the synthetic carriers are there already
            raise UserError(str(exc)) from None
    out.print(summary.describe(), highlight=False, soft_wrap=True)
