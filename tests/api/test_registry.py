"""Drivers and vehicles through the API: created, refused when repeated or bad, licences replaced,
and listed in pages."""

from __future__ import annotations

from compliance.store.models import Driver
from tests.api.helpers import assert_error, blob_files, count
from tests.service.conftest import SAMPLES, Api, png16


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


def test_a_refused_driver_or_licence_leaves_no_photo_behind(api: Api) -> None:
    """A duplicate ref (409) and another carrier's driver (404) write no file: the photo is put
    inside the transaction, after the row, never before it."""
    client, auth = api.client, api.acme.auth
    first = client.post("/v1/drivers", data={"name": "Li Wei", "ref": "D-9"}, headers=auth)
    assert first.status_code == 201, first.text
    before, drivers = blob_files(api), count(api, Driver)
    unseen = ("l.png", png16(SAMPLES / "licence_b.jpg"), "image/png")  # bytes no blob holds yet
    again = client.post("/v1/drivers", data={"name": "Again", "ref": "D-9"}, files={"licence": unseen}, headers=auth)
    assert_error(again, 409, "already_registered")
    theirs = client.put(f"/v1/drivers/{api.other.driver_id}/licence", files={"licence": unseen}, headers=auth)
    assert_error(theirs, 404, "not_found")
    assert blob_files(api) == before and count(api, Driver) == drivers
