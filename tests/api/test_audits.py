"""Audit requests through the API: every bad request refused, an empty audit done at once."""

from __future__ import annotations

from tests.api.helpers import assert_error
from tests.service.conftest import Api


def test_audit_requests_are_checked(api: Api) -> None:
    client, auth = api.client, api.acme.auth
    assert_error(client.post("/v1/audits", json={"pipeline": "nope"}, headers=auth), 422)
    # Not a choice the spec lists either (found by the negative run once the spec listed them).
    assert_error(client.post("/v1/audits", json={"pipeline": ""}, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"since": "2026-11-01T00:00:00"}, headers=auth), 422)
    backwards = {"since": "2026-11-02T00:00:00+00:00", "until": "2026-11-01T00:00:00+00:00"}
    assert_error(client.post("/v1/audits", json=backwards, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"vehicle_ids": [999_999]}, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"surprise": 1}, headers=auth), 422)
    # A number is not the date-time string the spec says (pydantic would read it as seconds since
    # 1970: found by the negative schemathesis run, {"until": -2.8e-114} started an audit).
    assert_error(client.post("/v1/audits", json={"until": -2.8e-114}, headers=auth), 422)
    assert_error(client.post("/v1/audits", json={"since": 1_700_000_000}, headers=auth), 422)
    # Nor is true driver 1, nor "1" an id: ids are JSON integers (also found by the negative run).
    for ids in ([True], ["1"], [1.5]):
        assert_error(client.post("/v1/audits", json={"driver_ids": ids}, headers=auth), 422)
    empty = client.post("/v1/audits", json={}, headers=auth)
    assert empty.status_code == 202 and empty.json()["status"] == "done" and empty.json()["total"] == 0


def test_audit_times_outside_what_the_store_holds_are_a_422(api: Api) -> None:
    for when in ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00"):
        for name in ("since", "until"):
            response = api.client.post("/v1/audits", json={name: when}, headers=api.acme.auth)
            assert response.status_code == 422, (name, when, response.text)
            assert set(response.json()) == {"error"}
