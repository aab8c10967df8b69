"""API keys carry scopes: a key reaches only the routes of its scopes (403 elsewhere, in the one
error shape), ``admin`` reaches all, and a changed scope takes effect within the cache time."""

from __future__ import annotations

import time

from compliance.store import keys
from tests.api.helpers import assert_error
from tests.service.conftest import SAMPLES, Api


def _key(api: Api, name: str, *scopes: str) -> dict[str, str]:
    with api.store.sessions() as s, s.begin():
        if scopes:
            _, token = keys.create_key(s, api.acme.id, name=name, scopes=scopes)
        else:  # the default a new key gets
            _, token = keys.create_key(s, api.acme.id, name=name)
    return {"Authorization": f"Bearer {token}"}


def _licence() -> dict[str, tuple[str, bytes, str]]:
    return {"licence": ("l.jpg", (SAMPLES / "licence_b.jpg").read_bytes(), "image/jpeg")}


def test_a_driver_apps_key_uploads_and_reads_but_does_nothing_else(api: Api) -> None:
    client, app = api.client, _key(api, "driver app")  # a new key: submit only
    submission = client.post(
        "/v1/submissions",
        data={"driver_id": str(api.acme.driver_id), "vehicle_id": str(api.acme.vehicle_id)},
        files={"photo": ("p.jpg", (SAMPLES / "a_by_car_wanAUJ299.jpg").read_bytes(), "image/jpeg")},
        headers=app,
    )
    assert submission.status_code == 202, submission.text
    sid = submission.json()["id"]
    assert client.get(f"/v1/submissions/{sid}", headers=app).status_code == 200
    assert client.get("/v1/submissions", headers=app).status_code == 200

    review = client.post(f"/v1/submissions/{sid}/review", json={"outcome": "PASS", "note": "mine"}, headers=app)
    assert "review" in assert_error(review, 403, "forbidden")["message"]
    licence = client.put(f"/v1/drivers/{api.acme.driver_id}/licence", files=_licence(), headers=app)
    assert "registry" in assert_error(licence, 403, "forbidden")["message"]
    assert_error(client.get("/v1/drivers", headers=app), 403, "forbidden")
    assert_error(client.post("/v1/vehicles", json={"plate": "京A12345"}, headers=app), 403, "forbidden")
    hook = client.post("/v1/webhooks", json={"url": "https://example.com/hook"}, headers=app)
    assert "webhooks" in assert_error(hook, 403, "forbidden")["message"]
    assert "audit" in assert_error(client.post("/v1/audits", json={}, headers=app), 403, "forbidden")["message"]
    assert_error(client.get("/v1/audits", headers=app), 403, "forbidden")
    # Nothing it was refused happened: no one's verdict on its upload.
    assert client.get(f"/v1/submissions/{sid}", headers=app).json()["history"] == []
    # Health and metrics need no key at all.
    assert client.get("/healthz").status_code == 200


def test_a_review_key_reviews_and_nothing_more(api: Api) -> None:
    client = api.client
    sid = api.upload().json()["id"]
    reviewer = _key(api, "reviewers", "review")
    response = client.post(f"/v1/submissions/{sid}/review", json={"outcome": "PASS", "note": "ok"}, headers=reviewer)
    assert response.status_code == 201, response.text
    assert_error(client.get(f"/v1/submissions/{sid}", headers=reviewer), 403, "forbidden")
    assert_error(client.post("/v1/audits", json={}, headers=reviewer), 403, "forbidden")


def test_an_admin_key_does_everything(api: Api) -> None:
    client, admin = api.client, _key(api, "operator", "admin")
    sid = api.upload().json()["id"]
    assert client.get(f"/v1/submissions/{sid}", headers=admin).status_code == 200
    review = client.post(f"/v1/submissions/{sid}/review", json={"outcome": "PASS", "note": "ok"}, headers=admin)
    assert review.status_code == 201, review.text
    licence = client.put(f"/v1/drivers/{api.acme.driver_id}/licence", files=_licence(), headers=admin)
    assert licence.status_code == 200, licence.text
    assert client.get("/v1/vehicles", headers=admin).status_code == 200
    assert client.post("/v1/webhooks", json={"url": "https://example.com/hook"}, headers=admin).status_code == 201
    assert client.post("/v1/audits", json={}, headers=admin).status_code == 202


def test_two_scopes_add_up(api: Api) -> None:
    both = _key(api, "back office", "registry", "webhooks")
    assert api.client.get("/v1/drivers", headers=both).status_code == 200
    assert api.client.get("/v1/webhooks", headers=both).status_code == 200
    assert_error(api.client.get("/v1/submissions", headers=both), 403, "forbidden")


def test_a_scope_change_takes_effect_within_the_cache_time(api: Api) -> None:
    client = api.client
    with api.store.sessions() as s, s.begin():
        key, token = keys.create_key(s, api.acme.id, name="grows", scopes=["submit"])
    auth = {"Authorization": f"Bearer {token}"}
    assert_error(client.get("/v1/drivers", headers=auth), 403, "forbidden")  # verified and cached now
    with api.store.sessions() as s, s.begin():
        keys.set_scopes(s, key.key_id, ["submit", "registry"])
    time.sleep(api.settings.api_key_cache_s)
    assert client.get("/v1/drivers", headers=auth).status_code == 200
    with api.store.sessions() as s, s.begin():
        keys.set_scopes(s, key.key_id, ["registry"])
    time.sleep(api.settings.api_key_cache_s)
    assert_error(client.get("/v1/submissions", headers=auth), 403, "forbidden")
