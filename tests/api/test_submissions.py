"""Submissions through the API as a carrier's system meets them, on SQLite and PostgreSQL: uploads,
idempotency, every bad input the issue names (a clear 4xx JSON error, nothing stored), size limits,
lists and cursor pages, reviews, and an upload while the broker is down."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from compliance.store.models import AuditEvent, Submission
from tests.api.helpers import assert_error, blob_files, count
from tests.service.conftest import PASSING_PHOTO, SAMPLES, Api, cmyk_jpeg, png16, png_bomb


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


def test_a_cascade_is_accepted_and_queued_at_its_first_stage_only(api: Api) -> None:
    import redis

    queues = redis.Redis.from_url(api.settings.broker_url)
    before = {q: queues.llen(q) for q in ("multistage", "mllm")}
    response = api.upload(pipeline="cascade")
    assert response.status_code == 202, response.text
    detail = api.client.get(f"/v1/submissions/{response.json()['id']}", headers=api.acme.auth).json()
    assert detail["pipeline"] == "cascade" and detail["status"] == "queued"
    # The baseline's CPU queue only: the CPU worker sends on to the GPU queue what it cannot settle.
    assert {q: queues.llen(q) - n for q, n in before.items()} == {"multistage": 1, "mllm": 0}


def test_the_spec_lists_the_pipeline_choices(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    upload = next(v for k, v in schemas.items() if k.startswith("Body_create_submission"))
    for field in (upload["properties"]["pipeline"], schemas["AuditIn"]["properties"]["pipeline"]):
        (choice,) = [branch for branch in field["anyOf"] if branch.get("type") == "string"]
        assert choice["enum"] == ["multistage", "mllm", "both", "cascade"]
    refused = api.upload(pipeline="cascades")
    assert_error(refused, 422, "invalid_value")
    assert "multistage, mllm, both, cascade" in refused.json()["error"]["message"]
    started = api.client.post("/v1/audits", json={"pipeline": "cascade"}, headers=api.acme.auth)
    assert started.status_code == 202 and started.json()["pipeline"] == "cascade", started.text


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
        # Under the pixel limit but 1.2 GiB to decode at 16 bits a pixel: refused from its header.
        ("16-bit 7000x7000 PNG", api.upload(photo=png_16_bit_7000(), filename="p.png"), 413, "photo_too_many_pixels"),
        ("job window without end", api.upload(job_start="2026-11-25T08:00:00+08:00"), 422, "invalid_request"),
        ("job window without offset", api.upload(job_start="2026-11-25T08:00", job_end="2026-11-25T10:00"), 422, None),
        (
            "job window backwards",
            api.upload(job_start="2026-11-25T10:00:00+08:00", job_end="2026-11-25T08:00:00+08:00"),
            422,
            "invalid_value",
        ),
        ("unknown pipeline", api.upload(pipeline="gpt-9"), 422, "invalid_value"),
        ("control character in site", api.upload(site="depot\x1b[2J7"), 422, "invalid_text"),
        ("control character in job_id", api.upload(job_id="J-\x007"), 422, "invalid_text"),
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


def png_16_bit_7000() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    ramp = np.broadcast_to((np.arange(7000, dtype=np.uint32) * 9).astype(np.uint16), (7000, 7000))
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(ramp)).save(out, "PNG")
    return out.getvalue()


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
    # true is not one row (pydantic's lax reading took it for 1): found by the negative schemathesis run.
    rows_true = {"outcome": "PASS", "note": "two rows", "corrections": {"plate_rows": True}}
    response = api.client.post(f"/v1/submissions/{submission}/review", json=rows_true, headers=api.acme.auth)
    assert_error(response, 422)
    with api.store.sessions() as s:
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.subject_id == submission)).all()
    assert "verdict.record" in actions


def test_an_upload_while_the_broker_is_down_stays_received(api: Api, redis_server: object) -> None:
    from compliance.queue.publisher import Publisher

    down = api.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    api.client.app.state.publisher = Publisher(down)
    response = api.upload()
    assert response.status_code == 202 and response.json()["status"] == "received"
    assert api.client.get("/readyz").status_code == 503


EXTREME_TIMES = ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00", "1800-01-01T00:00:00+00:00"]


def test_times_outside_what_the_store_holds_are_a_422(api: Api) -> None:
    before = blob_files(api)
    for when in EXTREME_TIMES:
        for name in ("since", "until"):
            response = api.client.get("/v1/submissions", params={name: when}, headers=api.acme.auth)
            assert "outside" in assert_error(response, 422, "invalid_value")["message"], (name, when)
        response = api.upload(job_start=when, job_end="2026-11-25T10:00:00+08:00")
        assert_error(response, 422, "invalid_value")
        response = api.upload(job_start="2026-11-25T08:00:00+08:00", job_end=when)
        assert response.status_code == 422, response.text
    assert count(api, Submission) == 0 and blob_files(api) == before


def test_a_cursor_carrying_a_naive_or_extreme_time_is_a_422(api: Api) -> None:
    import base64
    import json

    api.upload()
    for value, created in (
        ("2026-11-25T08:00:00", "2026-11-25T08:00:00+00:00"),
        ("2026-11-25T08:00:00+00:00", "0001-01-01T00:00:00+08:00"),
        ("9999-12-31T23:59:59-05:00", "2026-11-25T08:00:00+00:00"),
    ):
        raw = json.dumps(["created_at", value, created, "x"]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        response = api.client.get("/v1/submissions", params={"cursor": cursor}, headers=api.acme.auth)
        assert_error(response, 422, "invalid_cursor")


def test_a_body_that_is_not_an_upload_is_small(api: Api) -> None:
    """JSON parsed into Python takes tens of times its size: 20 MiB of ``[{},{},…]`` took 450 MiB.
    Only a photo upload may be large; any other body over COMPLIANCE_API_MAX_JSON_BYTES is a 413,
    declared or streamed, before it is parsed."""
    many = ("[" + ",".join(["{}"] * 200_000) + "]").encode()
    assert api.settings.api_max_json_bytes < len(many) < api.settings.max_upload_bytes
    headers = {**api.acme.auth, "content-type": "application/json"}
    declared = api.client.post("/v1/webhooks", content=many, headers=headers)
    assert_error(declared, 413, "too_large")

    def streamed() -> Iterator[bytes]:
        for start in range(0, len(many), 65536):
            yield many[start : start + 65536]

    assert_error(api.client.post("/v1/webhooks", content=streamed(), headers=headers), 413, "too_large")
    small = api.client.post("/v1/webhooks", json={"url": "not a url"}, headers=api.acme.auth)
    assert small.status_code == 422, small.text  # an ordinary body is still read and judged
