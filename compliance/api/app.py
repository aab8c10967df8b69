"""The FastAPI application: one per process, built from settings by ``create_app``.

The store (database and blobs) is opened, and migrated to head, once at start; routers reach it
through ``request.app.state``.
"""

from __future__ import annotations

from fastapi import FastAPI

from compliance.dashboard import install as install_dashboard
from compliance.judging import Store
from compliance.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="compliance", summary="Checks drivers' photos by their vehicles (人车合照).", version="0.1.0")
    app.state.settings = settings
    app.state.store = Store.open(settings)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    install_dashboard(app)
    return app
