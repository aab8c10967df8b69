"""Jinja2 pages: one environment, the filters the pages share, and ``render``."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from compliance.dashboard.language import (
    LANGUAGES,
    N_,
    NATIVE_NAMES,
    current_language,
    gettext,
    message_language,
    template_gettext,
    template_ngettext,
    translations,
    zone_name,
)
from compliance.dashboard.security import csrf_token
from compliance.messages import Language, message
from compliance.reports.period import ReportZone
from compliance.store.models import Role
from compliance.verdicts import Outcome

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.add_extension("jinja2.ext.i18n")
# {% trans %} blocks are one line in the catalogue, however the template wraps them.
templates.env.policies["ext.i18n.trimmed"] = True
templates.env.install_gettext_callables(template_gettext, template_ngettext, newstyle=True)  # type: ignore[attr-defined]


def _fast_gettext(message: str, **variables: object) -> Markup:
    # What the extension's "newstyle" `_` does (the text escaped as Markup, always %-formatted, so
    # that values are escaped and "%%" is a percent sign) without its two context lookups a call:
    # a page says `_()` some fifty times.
    return Markup(translations(current_language()).gettext(message)) % variables


templates.env.globals["_"] = _fast_gettext

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
        return gettext("< 1 s")
    if seconds < 90:
        return gettext("%(n)s s", n=round(seconds))
    if seconds < 90 * 60:
        return gettext("%(n)s min", n=round(seconds / 60, 1))
    if seconds < 48 * 3600:
        return gettext("%(n)s h", n=round(seconds / 3600, 1))
    return gettext("%(n)s days", n=round(seconds / 86400, 1))


def _number(value: int | float) -> str:
    return f"{value:,}"


def _compact_json(value: object) -> str:
    # Plates and names stay readable (no \u escapes); the page escapes HTML.
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# Words the pages show for the values the store keeps (which stay as they are in links and forms).
WORDS: dict[str, dict[str, str]] = {
    "outcome": {"PASS": N_("PASS"), "FAIL": N_("FAIL"), "REVIEW": N_("REVIEW"), "pending": N_("pending")},
    "status": {
        "received": N_("received"),
        "queued": N_("queued"),
        "processing": N_("processing"),
        "decided": N_("decided"),
        "failed": N_("failed"),
    },
    "job": {"queued": N_("queued"), "running": N_("running"), "done": N_("done")},
    "role": {"viewer": N_("viewer"), "reviewer": N_("reviewer"), "admin": N_("admin")},
    "answer": {"yes": N_("yes"), "no": N_("no"), "unknown": N_("unknown")},
    "sort": {
        "created_at": N_("upload time"),
        "status": N_("status"),
        "outcome": N_("verdict"),
        "site": N_("site"),
        "plate": N_("plate"),
    },
    # What the pipelines read (answers, kinds, colours) and the words of the boxes' labels.
    "value": {
        "yes": N_("yes"),
        "no": N_("no"),
        "unknown": N_("unknown"),
        "unread": N_("unread"),
        "none": N_("none"),
        "person": N_("person"),
        "face": N_("face"),
        "sim": N_("sim"),
        "licence": N_("licence"),
        "car": N_("car"),
        "van": N_("van"),
        "truck": N_("truck"),
        "bus": N_("bus"),
        "motorcycle": N_("motorcycle"),
        "trailer": N_("trailer"),
        "blue": N_("blue"),
        "yellow": N_("yellow"),
        "green": N_("green"),
        "white": N_("white"),
        "black": N_("black"),
    },
    # The side-by-side table's rows (compliance.reports.side_by_side).
    "judgment": {
        "person": N_("person"),
        "vehicle": N_("vehicle"),
        "plate": N_("plate"),
        "face": N_("face"),
        "quality": N_("quality"),
        "provenance": N_("provenance"),
        "present": N_("present"),
        "count": N_("count"),
        "kind": N_("kind"),
        "text": N_("text"),
        "colour": N_("colour"),
        "rows": N_("rows"),
        "confidence": N_("confidence"),
        "known format": N_("known format"),
        "face in scene": N_("face in scene"),
        "face on licence": N_("face on licence"),
        "similarity": N_("similarity"),
        "same person": N_("same person"),
        "活体 live": N_("live"),
        "live score": N_("live score"),
        "blur (Laplacian var.)": N_("blur (Laplacian var.)"),
        "brightness": N_("brightness"),
        "size": N_("size"),
        "time (ms)": N_("time (ms)"),
        "output errors": N_("output errors"),
        "unsure values": N_("unsure values"),
    },
    # The names the audit trail gives the system (compliance.store.models.MACHINE, audit.SYSTEM).
    "actor": {"machine": N_("machine"), "system": N_("system"), "cli": N_("command line")},
    "source": {"cli": N_("CLI"), "api": N_("API"), "audit": N_("audit"), "demo": N_("demo")},
}


def word(kind: str, value: object) -> str:
    """The reader's word for a stored value (an enum's or its ``value``); the value itself if none."""
    return _word(kind, str(getattr(value, "value", value)), current_language())


@cache
def _word(kind: str, text: str, language: str) -> str:
    # A few hundred words a page, on every row: looked up once per language.
    found = WORDS[kind].get(text)
    return translations(language).gettext(found) if found is not None else text


def outcome_word(value: object) -> str:
    return word("outcome", value)


def judgment_word(value: object) -> str:
    return word("judgment", value)


def words(text: str) -> str:
    """A box's label or a value, each known word in the reader's language ("person 0.91" -> "人 0.91")."""
    return " ".join(word("value", token) for token in str(text).split(" "))


def fields(text: str | None) -> str:
    """The fields the pipelines disagree on as stored ("plate,face"), in the reader's words."""
    return ", ".join(judgment_word(name) for name in (text or "").split(",") if name)


def _explain(code: str) -> str:
    """A reason or precheck code's explanation, from the one table (compliance.messages)."""
    return message(code, message_language())


def explained(codes: list[str]) -> list[tuple[str, str]]:
    """Codes with their explanations, for a list of options (one call, not two filters an option)."""
    language = message_language()
    return [(code, message(code, language)) for code in codes]


# On every row of a list: Python, not Jinja macros, which cost tens of microseconds a call.
def outcome_badge(outcome: Outcome | None) -> Markup:
    """A verdict in the reader's words; the code (PASS, FAIL, REVIEW) stays the badge's class and title."""
    return _badge(outcome.value if outcome is not None else None, current_language())


@cache
def _badge(code: str | None, language: str) -> Markup:
    if code is None:
        return Markup('<span class="badge pending">%s</span>') % _word("outcome", "pending", language)
    return Markup('<span class="badge %s" title="%s">%s</span>') % (
        code.lower(),
        code,
        _word("outcome", code, language),
    )


def reason(code: str, extra: str = "") -> Markup:
    """A reason code as integrations know it, explained (compliance.messages) on hover."""
    return _reason(code, extra, message_language())


@cache
def _reason(code: str, extra: str, language: Language) -> Markup:
    return Markup('<span class="reason%s" title="%s" data-reason="%s">%s</span>') % (
        extra,
        message(code, language),
        code,
        code,
    )


def reason_list(codes: list[str]) -> Markup:
    """A row's reason codes, comma-separated, each explained on hover (one call a row, no loop)."""
    return Markup(", ").join(reason(code) for code in codes)


def reason_explained(code: str) -> Markup:
    """A reason code with its explanation written out beside it."""
    return Markup('<span class="reason" data-reason="%s">%s</span> <span class="reason-text">%s</span>') % (
        code,
        code,
        _explain(code),
    )


templates.env.filters.update(
    local=_local,
    pct=_pct,
    duration=_duration,
    number=_number,
    compact_json=_compact_json,
    explain=_explain,
    words=words,
    fields=fields,
)
templates.env.globals.update(
    Outcome=Outcome,
    Role=Role,
    plotly_version=PLOTLY_VERSION,
    languages=LANGUAGES,
    outcome_badge=outcome_badge,
    reason=reason,
    reason_explained=reason_explained,
    reason_list=reason_list,
    explained=explained,
    outcome_name=outcome_word,
    status_name=lambda v: word("status", v),
    job_status_name=lambda v: word("job", v),
    role_name=lambda v: word("role", v),
    answer_name=lambda v: word("answer", v),
    sort_name=lambda v: word("sort", v),
    source_name=lambda v: word("source", v),
    judgment_name=judgment_word,
    actor_name=lambda v: word("actor", v),
    native_names=NATIVE_NAMES,
)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    state = request.app.state
    values = {
        "viewer": getattr(request.state, "viewer", None),
        "csrf_token": csrf_token(request),
        "zone": state.report_zone,
        "path": request.url.path,
        "query": request.url.query,
        "lang": current_language(),
        "zone_name": zone_name(state.settings.dashboard_timezone),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, values, status_code=status_code)
    # Pages hold a person's data and a form token: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    return response
