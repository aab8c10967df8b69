"""Health, readiness and metrics."""

from __future__ import annotations

from tests.api.helpers import assert_error
from tests.service.conftest import Api

METRICS = {"Authorization": "Bearer metrics-scraper-token"}


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "photo_store": "ok"}
    api.upload()
    text = api.client.get("/metrics", headers=METRICS).text
    assert 'compliance_stage_seconds_count{stage="accept.validate"}' in text
    # The global gauges are the sweeper's (tests/service/test_hosts.py): a sum over replicas counts each once.
    for gauge in ("compliance_submissions", "compliance_queue_depth", "compliance_current_verdicts"):
        assert gauge not in text


def test_metrics_need_the_token_or_a_local_client(api: Api) -> None:
    """/metrics counts every carrier's submissions: not for an API key, nor for anyone elsewhere."""
    assert_error(api.client.get("/metrics", headers=api.acme.auth), 401, "unauthorized")
    assert_error(api.client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
    api.client.app.state.settings = api.settings.model_copy(update={"metrics_token": None})
    try:  # no token set: the test client is not on this host's loopback
        assert_error(api.client.get("/metrics"), 403, "forbidden")
    finally:
        api.client.app.state.settings = api.settings
