"""POST /v1/prechecks through the real app (SQLite and PostgreSQL, a private Redis): the problems a
retake fixes, in both languages; nothing of the photo stored, only the driver's counters, which the
driver's page shows; the upload's 4xx for bad input; the submit scope; the per-key rate limit."""

from __future__ import annotations

import io
import uuid

import cv2
import numpy as np
import pytest

from compliance.messages import MESSAGES
from compliance.prechecks import PrecheckCode
from compliance.store import keys, users
from compliance.store.models import DriverPrechecks, Role, Submission
from compliance.store.prechecks import precheck_counts
from tests.api.helpers import assert_error, blob_files, count
from tests.dashboard.test_security import PASSWORD, sign_in
from tests.exif_photos import exif_jpeg
from tests.service.conftest import PASSING_PHOTO, Api, Carrier


def _precheck(api: Api, photo: bytes | None = None, carrier: Carrier | None = None, auth=None, **fields: object):
    carrier = carrier or api.acme
    data = {"driver_id": carrier.driver_id, "vehicle_id": carrier.vehicle_id, **fields}
    data = {k: str(v) for k, v in data.items() if v is not None}
    content = photo if photo is not None else PASSING_PHOTO.read_bytes()
    return api.client.post(
        "/v1/prechecks",
        data=data,
        files={"photo": ("photo.jpg", content, "image/jpeg")},
        headers=auth if auth is not None else carrier.auth,
    )


def _dark() -> bytes:
    image = cv2.imread(str(PASSING_PHOTO))
    ok, encoded = cv2.imencode(".jpg", (image.astype(np.float32) * 0.12).astype(np.uint8))
    assert ok
    return encoded.tobytes()


def _counter(api: Api, driver_id: int) -> DriverPrechecks | None:
    with api.store.sessions() as s:
        row = s.get(DriverPrechecks, driver_id)
        if row is not None:
            s.expunge(row)
        return row


def test_a_good_photo_has_no_problem_and_only_the_counter_is_stored(api: Api) -> None:
    blobs = blob_files(api)
    response = _precheck(api)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "problems": []}
    # Nothing of the photo: no submission, no new file. Only the driver's counter.
    assert count(api, Submission) == 0 and blob_files(api) == blobs
    row = _counter(api, api.acme.driver_id)
    assert row is not None and row.total == 1 and row.streak == 1 and row.carrier_id == api.acme.id
    assert _counter(api, api.other.driver_id) is None


def test_a_dark_photo_is_told_to_be_retaken_in_both_languages(api: Api) -> None:
    response = _precheck(api, _dark())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False
    dark = MESSAGES[PrecheckCode.PHOTO_TOO_DARK]
    assert {"code": "PHOTO_TOO_DARK", "zh": dark.zh, "en": dark.en} in body["problems"]
    # Never what would be an oracle: no plate text, no similarity, no liveness.
    assert "皖AUJ299" not in response.text and "similar" not in response.text and "live" not in response.text


def test_a_registered_site_with_a_position_asks_for_one(api: Api) -> None:
    """A site registered with a position: a photo that recorded none is told to be retaken with the
    phone's location on; one with a GPS position is not (inside or outside is the verdict's to say)."""
    site = {"code": "SH-JD", "name": "上海嘉定", "lat": 31.3756, "lon": 121.2489, "radius_m": 500}
    assert api.client.post("/v1/sites", json=site, headers=api.acme.auth).status_code == 201
    without = _precheck(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI"), site="SH-JD").json()
    assert [p["code"] for p in without["problems"]] == ["NO_POSITION"]
    far_away = exif_jpeg(PASSING_PHOTO, make="HUAWEI", gps=(31.3956, 121.2489))
    assert _precheck(api, far_away, site="SH-JD").json()["problems"] == []
    # A site without a position, and free text, ask for none.
    plain = {"code": "HF", "name": "合肥"}
    assert api.client.post("/v1/sites", json=plain, headers=api.acme.auth).status_code == 201
    assert _precheck(api, exif_jpeg(PASSING_PHOTO), site="HF").json()["problems"] == []
    # An unknown code is refused as an upload refuses it.
    refused, uploaded = _precheck(api, site="nowhere"), api.upload(site="nowhere")
    assert refused.status_code == uploaded.status_code == 422
    assert refused.json()["error"]["code"] == uploaded.json()["error"]["code"]


def test_counters_count_prechecks_since_the_last_upload_and_show_on_the_drivers_page(api: Api) -> None:
    for _ in range(2):
        assert _precheck(api).status_code == 200
    assert api.upload().status_code == 202
    for _ in range(5):
        assert _precheck(api).status_code == 200
    with api.store.sessions() as s:
        counts = precheck_counts(s, api.acme.driver_id)
    assert counts is not None and counts.total == 7 and counts.since_upload == 5
    with api.store.sessions() as s, s.begin():
        users.add_user(s, username="acme.viewer", password=PASSWORD, role=Role.VIEWER, carrier_id=api.acme.id)
    assert sign_in(api.client, "acme.viewer").status_code == 303
    page = api.client.get(f"/dashboard/drivers/{api.acme.driver_id}")
    assert page.status_code == 200
    assert 'data-precheck-total="7"' in page.text and 'data-precheck-since-upload="5"' in page.text
    assert "上次上传后已预检 5 次" in page.text  # flagged: many before one upload (the default, Chinese)
    # An upload after them: none since the last upload.
    assert api.upload(photo=_dark()).status_code == 202
    assert 'data-precheck-since-upload="0"' in api.client.get(f"/dashboard/drivers/{api.acme.driver_id}").text


@pytest.mark.parametrize(
    ("photo", "fields", "status", "code"),
    [
        (b"not an image at all", {}, 415, "photo_not_an_image"),
        (b"", {}, 422, None),
        (None, {"driver_id": None}, 422, "invalid_request"),
        (None, {"driver_id": 999_999}, 422, "unknown_reference"),
        (None, {"vehicle_id": None, "plate": "京Z99999"}, 422, "unknown_reference"),
        (None, {"job_start": "2026-11-25T08:00:00+08:00"}, 422, "invalid_request"),
        (None, {"pipeline": "nonesuch"}, 422, None),
    ],
)
def test_bad_input_is_the_uploads_4xx_and_stores_nothing(
    api: Api, photo: bytes | None, fields: dict, status: int, code: str | None
) -> None:
    before = blob_files(api)
    upload = api.upload(photo=photo, **fields)
    response = _precheck(api, photo, **fields)
    assert response.status_code == upload.status_code == status, response.text
    error = assert_error(response, status, code)
    assert error["code"] == upload.json()["error"]["code"]
    assert count(api, DriverPrechecks) == 0 and count(api, Submission) == 0 and blob_files(api) == before


def test_a_photo_over_the_limit_is_413_and_counts_nothing(api: Api) -> None:
    big = io.BytesIO(PASSING_PHOTO.read_bytes() + b"\0" * (api.settings.max_upload_bytes + 1))
    response = _precheck(api, big.getvalue())
    assert response.status_code == 413, response.text
    assert count(api, DriverPrechecks) == 0


def test_a_key_without_submit_is_refused(api: Api) -> None:
    with api.store.sessions() as s, s.begin():
        _, token = keys.create_key(s, api.acme.id, name="back office", scopes=("registry", "review"))
    response = _precheck(api, auth={"Authorization": f"Bearer {token}"})
    assert "submit" in assert_error(response, 403, "forbidden")["message"]
    assert_error(_precheck(api, auth={}), 401, "unauthorized")
    with api.store.sessions() as s, s.begin():
        _, driver_app = keys.create_key(s, api.acme.id, name="driver app")  # the default: submit
    assert _precheck(api, auth={"Authorization": f"Bearer {driver_app}"}).status_code == 200
    assert count(api, DriverPrechecks) == 1


def test_each_key_is_limited_per_window_with_retry_after(api: Api) -> None:
    limiter = api.client.app.state.precheck_limiter  # type: ignore[attr-defined]
    assert (limiter.limit, limiter.window_s) == (api.settings.precheck_rate_limit, api.settings.precheck_rate_window_s)
    assert limiter.redis is not None and limiter.redis.ping()  # counted in the shared Redis
    limiter.limit = 2
    assert [_precheck(api, b"junk").status_code for _ in range(2)] == [415, 415]  # refusals count too
    refused = _precheck(api)
    error = assert_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= limiter.window_s and "retry in" in error["message"]
    assert count(api, DriverPrechecks) == 0  # refused before any work
    # Another key has its own allowance; uploads are not limited by it.
    assert _precheck(api, carrier=api.other).status_code == 200
    assert api.upload().status_code == 202


def test_the_limit_is_shared_across_processes_through_redis(api: Api) -> None:
    from compliance.api.ratelimit import FixedWindowLimiter

    url, deployment = api.settings.broker_url, uuid.uuid4().hex
    one, two = (FixedWindowLimiter.on(url, name="t", limit=3, window_s=60, namespace=deployment) for _ in range(2))
    elsewhere = FixedWindowLimiter.on(url, name="t", limit=3, window_s=60, namespace=deployment + "-other")
    now = 60.0 * 16_666_667 + 30  # half-way through a window
    one.clock = two.clock = elsewhere.clock = lambda: now
    assert [one.hit("k").allowed, two.hit("k").allowed, one.hit("k").allowed] == [True, True, True]
    refused = two.hit("k")
    assert not refused.allowed and refused.retry_after_s == 30  # to the window's end
    assert elsewhere.hit("k").allowed  # another deployment's counters
    now += 30  # the next window
    assert one.hit("k").allowed
    # Redis unreachable: each process limits in its own memory rather than not at all.
    offline = FixedWindowLimiter.on("redis://127.0.0.1:1/0", name="t", limit=1, window_s=60, namespace=deployment)
    assert offline.hit("k").allowed and not offline.hit("k").allowed


def test_the_spec_lists_the_route(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/prechecks"]["post"]
    assert {"200", "403", "413", "415", "422", "429"} <= set(operation["responses"])
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    ref = form["$ref"].rsplit("/", 1)[-1]
    fields = set(spec["components"]["schemas"][ref]["properties"])
    upload = spec["paths"]["/v1/submissions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert fields == set(spec["components"]["schemas"][upload["$ref"].rsplit("/", 1)[-1]]["properties"])
