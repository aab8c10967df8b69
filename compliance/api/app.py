"""The FastAPI application: one per process, built from settings by ``create_app``.

The store (database and blobs) is opened once at start, migrated to head when
``migrate_on_start`` (the embedded default), and refused unless at the revision this code expects; routers reach it
through ``request.app.state``. The upload API lives under ``/v1`` (routers in this package); the
dashboard installs itself on the same app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from compliance.api import audits, health, prechecks, registry, submissions, webhooks
from compliance.api.errors import error_body, install_error_handlers
from compliance.api.limits import BodyLimit
from compliance.api.ratelimit import FixedWindowLimiter
from compliance.dashboard import install as install_dashboard
from compliance.queue.publisher import Publisher
from compliance.settings import Settings, get_settings
from compliance.store import Store, keys
from compliance.store.db import require_head

# Room for the multipart envelope and the other fields around the largest photo allowed.
_ENVELOPE_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, *, publisher: Publisher | None = None) -> FastAPI:
    """The app for ``settings`` (default: the environment's); ``publisher`` sends its tasks (default:
    the Celery app for ``settings.broker_url``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The thread pool that runs blocking routes and dependencies (anyio's, 40 by default).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        yield

    app = FastAPI(
        title="compliance",
        summary="Checks drivers' photos by their vehicles (人车合照).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyLimit, max_bytes=settings.max_upload_bytes + _ENVELOPE_BYTES, max_other_bytes=settings.api_max_json_bytes
    )
    app.state.settings = settings
    app.state.store = Store.open(settings, migrate=settings.migrate_on_start)
    require_head(settings.database_url)  # raises SchemaMismatch: `compliance api` says it in one line first
    app.state.publisher = publisher or Publisher(settings)
    app.state.verified_keys = keys.VerifiedKeys(settings.api_key_cache_s)
    app.state.precheck_limiter = FixedWindowLimiter.on(
        settings.limits_redis_url,
        name="precheck",
        limit=settings.precheck_rate_limit,
        window_s=settings.precheck_rate_window_s,
        namespace=settings.database_url,
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    install_error_handlers(app)

    @app.exception_handler(sqlalchemy.exc.DataError)
    async def _data_error(request: Request, exc: sqlalchemy.exc.DataError) -> JSONResponse:
        # A value the database cannot hold (a NUL byte, a number out of range): the request's fault.
        return JSONResponse(error_body("invalid_value", "a value is not one the database can store"), status_code=422)

    @app.exception_handler(sqlalchemy.exc.IntegrityError)
    async def _integrity_error(request: Request, exc: sqlalchemy.exc.IntegrityError) -> JSONResponse:
        # Two requests racing for one unique name; the loser is told, nothing is half-stored.
        return JSONResponse(error_body("conflict", "it already exists (a concurrent request)"), status_code=409)

    for router in (
        submissions.router,
        prechecks.router,
        registry.router,
        audits.router,
        webhooks.router,
        health.router,
    ):
        app.include_router(router)
    install_dashboard(app)
    return app
