"""The upload API as a carrier's system meets it, on SQLite and PostgreSQL: keys, uploads,
idempotency, every bad input the issue names (a clear 4xx JSON error, nothing stored), scoping
(another carrier's data is a 404), drivers, vehicles, lists, reviews, audits and webhooks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.store import Store, keys
from compliance.store.models import AuditEvent, Submission
from tests.service.conftest import (
    PASSING_PHOTO,
    SAMPLES,
    Api,
    add_carrier,
    cmyk_jpeg,
    png16,
    png_bomb,
    service_settings,
)
from tests.service.stack import RedisServer


def count(api: Api, model: type) -> int:
    with api.store.sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def blob_files(api: Api) -> set[str]:
    return {p.name for p in api.settings.blob_dir.rglob("*") if p.is_file()}


def assert_error(response: object, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def test_upload_is_stored_queued_and_readable(api: Api) -> None:
    response = api.upload(job_id="J-1", site="Hefei depot")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["created"] is True and body["status"] == "queued"
    assert response.headers["Location"] == f"/v1/submissions/{body['id']}"
    detail = api.client.get(f"/v1/submissions/{body['id']}", headers=api.acme.auth).json()
    assert detail["status"] == "queued" and detail["source"] == "api"
    assert detail["plate"] == "皖AUJ299" and detail["site"] == "Hefei depot" and detail["job_id"] == "J-1"
    assert detail["verdict"] is None and detail["history"] == [] and detail["judgments"] == []
    # The photo is in the blob store under its SHA-256, once.
    import hashlib

    assert hashlib.sha256(PASSING_PHOTO.read_bytes()).hexdigest() in blob_files(api)


def test_driver_and_vehicle_by_reference(api: Api) -> None:
    response = api.upload(driver_id=None, vehicle_id=None, driver_ref="A-1", plate="皖A·UJ299")
    assert response.status_code == 202, response.text
    detail = api.client.get(f"/v1/submissions/{response.json()['id']}", headers=api.acme.auth).json()
    assert detail["driver_id"] == api.acme.driver_id and detail["vehicle_id"] == api.acme.vehicle_id


def test_idempotency_key_replays_and_conflicts(api: Api) -> None:
    first = api.upload(key="order-17:photo-1")
    again = api.upload(key="order-17:photo-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    before = blob_files(api)
    other_photo = (SAMPLES / "street_taxi.jpg").read_bytes()
    error = assert_error(api.upload(photo=other_photo, key="order-17:photo-1"), 409, "idempotency_conflict")
    assert first.json()["id"] in error["message"]
    assert blob_files(api) == before  # the conflicting photo was not kept
    # Keys are per carrier: another carrier may use the same one.
    assert api.upload(api.other, photo=other_photo, key="order-17:photo-1").json()["created"] is True
    assert count(api, Submission) == 2


def test_every_bad_input_is_a_clear_4xx_and_stores_nothing(api: Api) -> None:
    client, auth = api.client, api.acme.auth
    good = PASSING_PHOTO.read_bytes()
    truncated = good[: len(good) // 2]
    before = blob_files(api)
    cases = [
        ("empty body", client.post("/v1/submissions", headers=auth), 422, "invalid_request"),
        (
            "not multipart",
            client.post("/v1/submissions", content=b"{}", headers={**auth, "Content-Type": "application/json"}),
            422,
            None,
        ),
        (
            "no photo",
            client.post("/v1/submissions", data={"driver_id": "1", "vehicle_id": "1"}, headers=auth),
            422,
            "invalid_request",
        ),
        ("no driver", api.upload(driver_id=None), 422, "invalid_request"),
        ("no vehicle", api.upload(vehicle_id=None), 422, "invalid_request"),
        ("driver id not a number", api.upload(driver_id="abc"), 422, "invalid_request"),
        ("unknown driver id", api.upload(driver_id=999_999), 422, "unknown_reference"),
        ("unknown driver ref", api.upload(driver_id=None, driver_ref="NOBODY"), 422, "unknown_reference"),
        ("unknown vehicle id", api.upload(vehicle_id=999_999), 422, "unknown_reference"),
        ("unknown plate", api.upload(vehicle_id=None, plate="京Z99999"), 422, "unknown_reference"),
        ("another carrier's driver", api.upload(driver_id=api.other.driver_id), 422, "unknown_reference"),
        ("another carrier's vehicle", api.upload(vehicle_id=api.other.vehicle_id), 422, "unknown_reference"),
        (
            "text named .jpg",
            api.upload(photo=b"this is not a photo at all", filename="p.jpg"),
            415,
            "photo_not_an_image",
        ),
        ("PDF named .jpg", api.upload(photo=b"%PDF-1.4\n" + b"0" * 500), 415, "photo_not_an_image"),
        ("empty file", api.upload(photo=b""), 422, "photo_empty"),
        ("truncated JPEG", api.upload(photo=truncated), 422, "photo_corrupt"),
        ("decompression bomb", api.upload(photo=png_bomb(), filename="p.png"), 413, "photo_too_many_pixels"),
        ("job window without end", api.upload(job_start="2026-11-25T08:00:00+08:00"), 422, "invalid_request"),
        ("job window without offset", api.upload(job_start="2026-11-25T08:00", job_end="2026-11-25T10:00"), 422, None),
        (
            "job window backwards",
            api.upload(job_start="2026-11-25T10:00:00+08:00", job_end="2026-11-25T08:00:00+08:00"),
            422,
            "invalid_value",
        ),
        ("unknown pipeline", api.upload(pipeline="gpt-9"), 422, "invalid_value"),
        ("malformed idempotency key", api.upload(key="has spaces/and{braces}"), 400, "invalid_idempotency_key"),
        ("idempotency key too long", api.upload(key="k" * 129), 400, "invalid_idempotency_key"),
    ]
    for name, response, status, code in cases:
        assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
        body = response.json()
        assert set(body) == {"error"} and body["error"]["message"], f"{name}: {body}"
        if code is not None:
            assert body["error"]["code"] == code, f"{name}: {body}"
    assert count(api, Submission) == 0
    assert blob_files(api) == before


def test_files_over_the_limit_are_413(api: Api) -> None:
    over = PASSING_PHOTO.read_bytes() + b"\x00" * (api.settings.max_upload_bytes - 200_000)
    assert_error(api.upload(photo=over), 413, "photo_too_large")
    # A body far over the limit is cut off while it streams in, before any parsing.
    huge = b"\xff" * (api.settings.max_upload_bytes + 2 * 1024 * 1024)
    response = api.upload(photo=huge)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "too_large"
    assert count(api, Submission) == 0


def test_cmyk_and_16_bit_photos_are_accepted(api: Api) -> None:
    for photo, name in ((cmyk_jpeg(), "cmyk.jpg"), (png16(), "grey16.png")):
        response = api.upload(photo=photo, filename=name)
        assert response.status_code == 202, f"{name}: {response.text}"


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


def test_drivers_and_vehicles(api: Api) -> None:
    client, auth = api.client, api.acme.auth
    created = client.post(
        "/v1/drivers",
        data={"name": "Li Wei", "ref": "D-9"},
        files={"licence": ("l.jpg", (SAMPLES / "licence_b.jpg").read_bytes(), "image/jpeg")},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    assert created.json()["has_licence"] is True and created.json()["ref"] == "D-9"
    assert_error(client.post("/v1/drivers", data={"name": "Again", "ref": "D-9"}, headers=auth), 409)
    bad = client.post(
        "/v1/drivers", data={"name": "X"}, files={"licence": ("l.jpg", b"not an image", "image/jpeg")}, headers=auth
    )
    assert_error(bad, 415, "photo_not_an_image")
    replaced = client.put(
        f"/v1/drivers/{created.json()['id']}/licence",
        files={"licence": ("l.jpg", (SAMPLES / "licence_a.jpg").read_bytes(), "image/jpeg")},
        headers=auth,
    )
    assert replaced.status_code == 200, replaced.text

    vehicle = client.post("/v1/vehicles", json={"plate": "京A12345", "color": "yellow", "kind": "truck"}, headers=auth)
    assert vehicle.status_code == 201 and vehicle.json()["plate"] == "京A12345"
    assert_error(client.post("/v1/vehicles", json={"plate": "京A·12345"}, headers=auth), 409)
    assert_error(client.post("/v1/vehicles", json={"plate": "京A1", "color": "purple"}, headers=auth), 422)
    assert_error(client.post("/v1/vehicles", json={"plate": "·-·"}, headers=auth), 422)
    page = client.get("/v1/vehicles", headers=auth, params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_after"] is not None
    rest = client.get("/v1/vehicles", headers=auth, params={"after": page["next_after"]}).json()
    assert [v["plate"] for v in rest["items"]] == ["京A12345"] and rest["next_after"] is None
    drivers = client.get("/v1/drivers", headers=auth, params={"limit": 1}).json()
    assert len(drivers["items"]) == 1 and drivers["next_after"] is not None
    rest = client.get("/v1/drivers", headers=auth, params={"after": drivers["next_after"]}).json()
    assert [d["ref"] for d in rest["items"]] == ["D-9"] and rest["next_after"] is None


def test_list_filters_and_cursor_pages(api: Api) -> None:
    ids = [api.upload(site=f"site-{i % 2}").json()["id"] for i in range(5)]
    client, auth = api.client, api.acme.auth
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/submissions", headers=auth, params=params).json()
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    site0 = client.get("/v1/submissions", headers=auth, params={"site": "site-0", "count": "true"}).json()
    assert site0["total"] == 3 and all(s["site"] == "site-0" for s in site0["items"])
    queued = client.get("/v1/submissions", headers=auth, params=[("status", "queued"), ("status", "received")])
    assert len(queued.json()["items"]) == 5
    assert client.get("/v1/submissions", headers=auth, params={"verdict": "PASS"}).json()["items"] == []
    assert_error(client.get("/v1/submissions", headers=auth, params={"cursor": "garbage"}), 422, "invalid_cursor")
    assert_error(client.get("/v1/submissions", headers=auth, params={"verdict": "MAYBE"}), 422)
    assert_error(client.get("/v1/submissions", headers=auth, params={"since": "2026-11-01T00:00:00"}), 422)
    assert_error(client.get("/v1/submissions", headers=auth, params={"limit": 0}), 422)


def test_a_review_becomes_the_current_verdict(api: Api) -> None:
    submission = api.upload().json()["id"]
    review = {
        "outcome": "FAIL",
        "note": "the plate is taped over",
        "reasons": ["PLATE_MISMATCH"],
        "corrections": {"plate_text": "皖AUJ298"},
    }
    response = api.client.post(f"/v1/submissions/{submission}/review", json=review, headers=api.acme.auth)
    assert response.status_code == 201, response.text
    detail = response.json()
    assert detail["status"] == "decided" and detail["outcome"] == "FAIL"
    assert detail["verdict"]["decided_by"] == f"api-key:{api.acme.key_id}"
    assert detail["verdict"]["corrections"] == {"plate_text": "皖AUJ298"}
    assert_error(
        api.client.post(
            f"/v1/submissions/{submission}/review", json={"outcome": "PASS", "note": ""}, headers=api.acme.auth
        ),
        422,
    )
    with api.store.sessions() as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.subject_id == submission)).all()
    assert "verdict.record" in actions


def test_webhook_urls_are_checked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    client, auth = api.client, api.acme.auth
    assert_error(client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}, headers=auth), 422)
    created = client.post("/v1/webhooks", json={"url": "https://example.com/hook"}, headers=auth)
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert "secret" not in client.get("/v1/webhooks", headers=auth).json()[0]
    # Without the local allowance, URLs into private networks are refused.
    api.settings.webhook_allow_private = False
    for url in ("http://127.0.0.1:8080/x", "http://10.0.0.5/x", "http://localhost/x", "http://169.254.169.254/latest"):
        assert_error(client.post("/v1/webhooks", json={"url": url}, headers=auth), 422)
    assert client.delete(f"/v1/webhooks/{created.json()['id']}", headers=auth).status_code == 204
    assert client.get("/v1/webhooks", headers=auth).json()[0]["active"] is False


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


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    api.upload()
    text = api.client.get("/metrics").text
    assert 'compliance_submissions{status="queued"}' in text
    assert "compliance_queue_depth" in text and "compliance_broker_up 1.0" in text
    assert 'compliance_stage_seconds_count{stage="accept.validate"}' in text


def test_an_upload_while_the_broker_is_down_stays_received(api: Api, redis_server: object) -> None:
    from compliance.queue.publisher import Publisher

    down = api.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    api.client.app.state.publisher = Publisher(down)
    response = api.upload()
    assert response.status_code == 202 and response.json()["status"] == "received"
    assert api.client.get("/readyz").status_code == 503
    assert "compliance_broker_up 0.0" in api.client.get("/metrics").text
