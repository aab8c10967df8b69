"""Audit requests through the API: every bad request refused, an empty audit done at once."""

from __future__ import annotations

from tests.api.helpers import assert_error
from tests.service.conftest import Api


def test_audit_requests_are_checked(api: Api) -> None:
    client, auth = api.client, api.acme.auth
    assert_error(client.post("/v1/audits", json={"pipeline": "nope"}, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"since": "2026-11-01T00:00:00"}, headers=auth), 422)
    backwards = {"since": "2026-11-02T00:00:00+00:00", "until": "2026-11-01T00:00:00+00:00"}
    assert_error(client.post("/v1/audits", json=backwards, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"vehicle_ids": [999_999]}, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"surprise": 1}, headers=auth), 422)
    empty = client.post("/v1/audits", json={}, headers=auth)
    assert empty.status_code == 202 and empty.json()["status"] == "done" and empty.json()["total"] == 0
