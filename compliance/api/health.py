"""``/healthz`` (the process is up), ``/readyz`` (database, broker and photo store reachable), ``/metrics``."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from compliance import metrics
from compliance.api.deps import PublisherDep, StoreDep
from compliance.api.errors import ApiError

router = APIRouter(tags=["health"])


@router.get("/readyz", responses={503: {"description": "the database, the broker or the photo store is unreachable"}})
def readyz(store: StoreDep, publisher: PublisherDep) -> JSONResponse:
    """Ready to take uploads: the database, the broker and the photo store answer. (An upload is
    still accepted while the broker is down; it waits, RECEIVED, for the sweeper. One is refused
    while the photo store is away: a load balancer should send it elsewhere.)"""
    checks: dict[str, str] = {}
    try:
        with store.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure: not ready, and say why
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["broker"] = "ok" if publisher.ping() else "unreachable"
    checks["photo_store"] = "ok" if store.blobs.reachable() else "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


def _scraper(request: Request) -> None:
    """Whoever may read /metrics: the bearer of ``COMPLIANCE_METRICS_TOKEN``, or, with none set, a
    client on this host."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            raise ApiError(
                401, "unauthorized", "/metrics needs the metrics token", headers={"WWW-Authenticate": "Bearer"}
            )
    elif request.client is None or request.client.host not in _LOOPBACK:
        raise ApiError(
            403, "forbidden", "/metrics answers only on this host; set COMPLIANCE_METRICS_TOKEN to scrape it"
        )


_LOOPBACK = {"127.0.0.1", "::1"}


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(_scraper)],
    responses={401: {"description": "no metrics token"}, 403: {"description": "not on this host"}},
)
def prometheus_metrics() -> Response:
    """Prometheus exposition of this host's processes: uploads, verdicts, latency per stage, webhook
    attempts. Queue depths and submissions by status are the sweeper's to export (its metrics port):
    every replica exporting them would count them once per replica."""
    return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
