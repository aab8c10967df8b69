"""The dashboard's pages, middleware and error pages, added to an app by ``install``."""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from compliance.dashboard import account, audits, drivers, exports, overview, review, submissions
from compliance.dashboard.language import N_, LanguageMiddleware, gettext
from compliance.dashboard.security import (
    SESSION_COOKIE,
    BadRequest,
    Forbidden,
    NotFound,
    SecureOverHttps,
    SignInRequired,
    SignInThrottle,
    session_secret,
)
from compliance.dashboard.templating import HERE, PLOTLY_VERSION, plotly_js, render
from compliance.reports.period import ReportZone
from compliance.settings import Settings
from compliance.store.db import make_engine, session_factory

PREFIX = "/dashboard"

# Pages load only this app's own scripts and styles (plotly.js included); Plotly sets inline styles.
_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class DashboardHeaders:
    """Server-Timing (how long the app took, for bench/dashboard.py) and the security headers, on
    every dashboard response. Plain ASGI: nothing is buffered, downloads still stream."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers += [
                    (b"server-timing", f"app;dur={elapsed_ms:.1f}".encode()),
                    (b"content-security-policy", _CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Add the dashboard to ``app`` (whose ``state`` holds ``settings`` and ``store``)."""
    settings: Settings = app.state.settings
    app.state.report_zone = ReportZone.named(settings.dashboard_timezone)
    app.state.sign_in_throttle = SignInThrottle.on(settings.limits_redis_url, namespace=settings.database_url)
    # Pages only read: on SQLite a deferred transaction, so a long export never holds the write lock;
    # with COMPLIANCE_DATABASE_READ_URL, on a replica. A reviewer's decision is checked again on the
    # primary (record_review's over_verdict), so a replica's lag can refuse a review, never misplace one.
    read_engine = make_engine(settings.database_read_url) if settings.database_read_url else app.state.store.engine
    app.state.read_sessions = session_factory(read_engine, read_only=True)
    # Who is signed in is read on the primary: a user disabled or signed out ends there at once.
    app.state.primary_reads = session_factory(app.state.store.engine, read_only=True)
    # Inside the session middleware: a language chosen before signing in is kept in the session.
    app.add_middleware(LanguageMiddleware, default=settings.default_language, prefix=PREFIX)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        path=PREFIX,
        same_site="lax",
        https_only=settings.session_https_only,
    )
    app.add_middleware(SecureOverHttps)
    app.add_middleware(DashboardHeaders)

    for module in (account, overview, submissions, drivers, review, exports, audits):
        app.include_router(module.router, prefix=PREFIX, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    @app.get(f"{PREFIX}/assets/plotly-{{version}}.min.js", include_in_schema=False)
    def plotly(version: str) -> Response:
        if version != PLOTLY_VERSION:
            return Response(status_code=404)
        # Versioned name: the browser keeps it for a year and fetches anew when plotly is upgraded.
        return FileResponse(
            plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=31536000, immutable"}
        )

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.exception_handler(SignInRequired)
    def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': exc.next_path})}", status_code=303)

    @app.exception_handler(Forbidden)
    def _forbidden(request: Request, exc: Forbidden) -> Response:
        context = {"title": gettext("Not allowed"), "message": refusal_text(str(exc))}
        return render(request, "error.html", context, status_code=403)

    @app.exception_handler(BadRequest)
    def _bad_request(request: Request, exc: BadRequest) -> Response:
        # The pages raise it with text already in the reader's language.
        context = {"title": gettext("Cannot do that"), "message": str(exc)}
        return render(request, "error.html", context, status_code=400)

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> Response:
        context = {"title": gettext("Not found"), "message": refusal_text(str(exc))}
        return render(request, "error.html", context, status_code=404)


# What compliance.dashboard.security and the pages refuse with, worded there in English: shown here
# in the reader's language.
_REFUSALS = (
    N_("the form has expired or did not come from this site: reload the page and try again"),
    N_("the form was sent from another site"),
)
_THINGS = {
    "page": N_("page"),
    "submission": N_("submission"),
    "driver": N_("driver"),
    "audit": N_("audit"),
    "carrier": N_("carrier"),
    "photo": N_("photo"),
    "licence photo": N_("licence photo"),
    "training export": N_("training export"),
}
_NO_SUCH = re.compile(r"no such (?P<what>.+)")
_NEEDS_ROLE = re.compile(r"this needs the (?P<needed>\w+) role; you are a (?P<role>\w+)")
_ROLES = {"viewer": N_("viewer"), "reviewer": N_("reviewer"), "admin": N_("admin")}


def refusal_text(text: str) -> str:
    """A refusal's English text in the reader's language (itself when it is not one we know)."""
    if found := _NO_SUCH.fullmatch(text):
        what = found["what"]
        return gettext("no such %(what)s", what=gettext(_THINGS[what]) if what in _THINGS else what)
    if found := _NEEDS_ROLE.fullmatch(text):
        needed, role = found["needed"], found["role"]
        return gettext(
            "this needs the %(needed)s role; you are a %(role)s",
            needed=gettext(_ROLES.get(needed, needed)),
            role=gettext(_ROLES.get(role, role)),
        )
    return gettext(text) if text in _REFUSALS else text
