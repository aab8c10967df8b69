"""The reports dashboard and review queue: server-rendered pages under ``/dashboard`` in the same
FastAPI app as the API. ``install(app)`` adds them; ``create_app`` calls it.

Pages read through the store and ``compliance.reports`` and never judge; a reviewer's decision
goes through ``compliance.store.verdicts.record_review``. The package itself imports nothing
heavy, so that the CLI's commands here (``users``, ``demo-data``) start quickly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the dashboard to ``app``, whose ``state`` holds ``settings`` and ``store``."""
    from compliance.dashboard.site import install as install_site

    install_site(app)
