"""Health, readiness and metrics."""

from __future__ import annotations

from tests.service.conftest import Api


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    api.upload()
    text = api.client.get("/metrics").text
    assert 'compliance_submissions{status="queued"}' in text
    assert "compliance_queue_depth" in text and "compliance_broker_up 1.0" in text
    assert 'compliance_stage_seconds_count{stage="accept.validate"}' in text
