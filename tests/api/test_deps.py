"""What every router depends on: the caller's API key (invalid, revoked and missing keys are a 401)
and the carrier it scopes to (another carrier's data is a 404, on every router)."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.store import Store, keys
from tests.api.helpers import assert_error
from tests.service.conftest import PASSING_PHOTO, SAMPLES, Api, add_carrier, service_settings
from tests.service.stack import RedisServer


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
    # The key was verified just now: the API may trust it for api_key_cache_s more.
    time.sleep(api.settings.api_key_cache_s)
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


def test_a_revoked_key_stops_working_within_the_cache_ttl(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """A verified key is trusted for at most api_key_cache_s without asking the database: revoking it
    (or moving it to another carrier) takes effect within that, and an unknown key is never cached."""
    ttl = 0.5
    app = create_app(service_settings(database_url, tmp_path, redis_server.url, api_key_cache_s=ttl))
    store: Store = app.state.store
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    other = add_carrier(store, "OTHER", "B-1", "licence_b.jpg", "皖A195K9")
    path = "/v1/submissions"
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get(path, headers=acme.auth).status_code == 200
            with store.sessions() as s, s.begin():
                keys.revoke_key(s, acme.key_id)
            revoked_at = time.monotonic()
            # Within the TTL the cached verification may still answer; after it, never.
            while client.get(path, headers=acme.auth).status_code == 200:
                assert time.monotonic() - revoked_at < ttl, "a revoked key worked past the cache's TTL"
                time.sleep(0.05)
            assert time.monotonic() - revoked_at < ttl + 0.5
            assert "revoked" in assert_error(client.get(path, headers=acme.auth), 401)["message"]

            # A key moved to another carrier: its requests are the new carrier's within the TTL.
            assert client.get(path, headers=other.auth).status_code == 200  # verified, so cached
            with store.sessions() as s, s.begin():
                s.execute(
                    sa.text("UPDATE api_keys SET carrier_id = :c WHERE key_id = :k"), {"c": acme.id, "k": other.key_id}
                )
            moved_at = time.monotonic()
            acme_driver = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)}
            photo = {"photo": ("p.jpg", PASSING_PHOTO.read_bytes(), "image/jpeg")}
            while client.post(path, data=acme_driver, files=photo, headers=other.auth).status_code != 202:
                assert time.monotonic() - moved_at < ttl + 0.5, "a key's new carrier was not seen within the TTL"
                time.sleep(0.05)
    finally:
        store.engine.dispose()
