"""What every router depends on: the caller's API key (invalid, revoked and missing keys are a 401)
and the carrier it scopes to (another carrier's data is a 404, on every router)."""

from __future__ import annotations

import sqlalchemy as sa

from compliance.store import keys
from tests.api.helpers import assert_error
from tests.service.conftest import SAMPLES, Api


def test_keys_invalid_revoked_and_missing(api: Api) -> None:
    path = "/v1/submissions"
    assert_error(api.client.get(path), 401, "unauthorized")
    for header in ("Bearer nonsense", "Basic dXNlcjpwYXNz", f"Bearer {api.acme.token[:-1]}x", "Bearer "):
        response = api.client.get(path, headers={"Authorization": header})
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert api.client.get(path, headers=api.acme.auth).status_code == 200
    with api.store.sessions() as s, s.begin():
        keys.revoke_key(s, api.acme.key_id)
    assert "revoked" in assert_error(api.client.get(path, headers=api.acme.auth), 401)["message"]
    assert_error(api.upload(), 401)
    # Only the hash of a secret is stored.
    with api.store.sessions() as s:
        stored = s.scalar(sa.text("SELECT secret_sha256 FROM api_keys WHERE key_id = :k"), {"k": api.acme.key_id})
    assert stored and stored not in api.acme.token


def test_another_carriers_data_is_a_404(api: Api) -> None:
    mine = api.upload().json()["id"]
    theirs = api.upload(api.other, photo=(SAMPLES / "parked_car_wanA195K9.jpg").read_bytes()).json()["id"]
    client, other = api.client, api.other.auth
    # Read: the same 404 as for an id that does not exist.
    assert_error(client.get(f"/v1/submissions/{mine}", headers=other), 404, "not_found")
    assert_error(client.get("/v1/submissions/00000000-0000-0000-0000-000000000000", headers=other), 404, "not_found")
    assert client.get(f"/v1/submissions/{theirs}", headers=other).status_code == 200
    # List: only their own, whatever the filters.
    listed = client.get("/v1/submissions", headers=other, params={"driver_id": api.acme.driver_id}).json()
    assert listed["items"] == []
    assert [s["id"] for s in client.get("/v1/submissions", headers=other).json()["items"]] == [theirs]
    # Review.
    review = {"outcome": "PASS", "note": "looks fine"}
    assert_error(client.post(f"/v1/submissions/{mine}/review", json=review, headers=other), 404)
    # Registry.
    assert_error(client.get(f"/v1/drivers/{api.acme.driver_id}", headers=other), 404)
    assert_error(client.get(f"/v1/vehicles/{api.acme.vehicle_id}", headers=other), 404)
    assert [d["id"] for d in client.get("/v1/drivers", headers=other).json()["items"]] == [api.other.driver_id]
    # Audit: naming their drivers is refused, and an audit covers only the caller's submissions.
    assert_error(client.post("/v1/audits", json={"driver_ids": [api.acme.driver_id]}, headers=other), 422)
    acme_audit = client.post("/v1/audits", json={}, headers=api.acme.auth).json()
    assert_error(client.get(f"/v1/audits/{acme_audit['id']}", headers=other), 404)
    assert client.get("/v1/audits", headers=other).json() == []
    # Webhooks.
    hook = client.post("/v1/webhooks", json={"url": "https://example.com/hook"}, headers=api.acme.auth).json()
    assert_error(client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=other), 404)
    assert_error(client.delete(f"/v1/webhooks/{hook['id']}", headers=other), 404)
    assert client.get("/v1/webhooks", headers=other).json() == []
    # Nothing of theirs changed.
    detail = client.get(f"/v1/submissions/{mine}", headers=api.acme.auth).json()
    assert detail["history"] == []
