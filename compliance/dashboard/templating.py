"""Jinja2 pages: one environment, the filters the pages share, and ``render``."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from compliance.dashboard.security import csrf_token
from compliance.reports.period import ReportZone
from compliance.store.models import Role
from compliance.verdicts import Outcome

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

PLOTLY_VERSION = metadata.version("plotly")


def plotly_js() -> Path:
    """plotly.js as the plotly wheel ships it: served by the app, never from a CDN."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def _local(when: datetime | None, zone: ReportZone, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return zone.local(when).strftime(fmt) if when is not None else "—"


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return "< 1 s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _number(value: int | float) -> str:
    return f"{value:,}"


def _compact_json(value: object) -> str:
    # Plates and names stay readable (no \u escapes); the page escapes HTML.
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


templates.env.filters.update(local=_local, pct=_pct, duration=_duration, number=_number, compact_json=_compact_json)
templates.env.globals.update(Outcome=Outcome, Role=Role, plotly_version=PLOTLY_VERSION)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    state = request.app.state
    values = {
        "viewer": getattr(request.state, "viewer", None),
        "csrf_token": csrf_token(request),
        "zone": state.report_zone,
        "path": request.url.path,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    # Pages hold a person's data and a form token: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    return response
