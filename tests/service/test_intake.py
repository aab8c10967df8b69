"""Accepting an upload (``compliance.service.intake``), on SQLite and PostgreSQL with a real Redis:
the rules on the fields, the parties being the carrier's, idempotency, and a broker that is down.
Whatever is refused leaves neither a row nor a photo behind; whatever is accepted is kept."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from compliance.photos import Photo, read_photo_file
from compliance.queue.publisher import Publisher
from compliance.service.intake import InvalidUpload, Upload, accept, check_upload, receive
from compliance.settings import Settings
from compliance.store import Store, audit
from compliance.store.errors import IdempotencyConflict, UnknownDriver, UnknownVehicle
from compliance.store.models import Submission, SubmissionStatus
from tests.conftest import photo_names
from tests.service.conftest import SAMPLES, Carrier, add_carrier, service_settings
from tests.service.stack import RedisServer

START = datetime(2026, 11, 25, 8, tzinfo=UTC)


def photo(name: str) -> Photo:
    return read_photo_file(SAMPLES / name, max_bytes=20_000_000, max_pixels=50_000_000)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def fleet(
    database_url: str, blob_url: str, tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Store, Settings, Carrier, Carrier]]:
    """On both databases and both photo stores (a folder, an S3 bucket)."""
    settings = service_settings(database_url, tmp_path, redis_server.url, blob_url=blob_url)
    store = Store.open(settings)
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    other = add_carrier(store, "OTHER", "B-1", "licence_b.jpg", "皖A195K9")
    yield store, settings, acme, other
    store.engine.dispose()


def rows(store: Store) -> int:
    with store.sessions() as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(Submission)) or 0)


def blobs(store: Store) -> set[str]:
    return photo_names(store.blobs)


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"job_start": START}, "invalid_request", "both"),
        ({"job_end": START}, "invalid_request", "both"),
        ({"job_start": START.replace(tzinfo=None), "job_end": START.replace(tzinfo=None)}, "invalid_value", "offset"),
        ({"job_start": START, "job_end": START - timedelta(minutes=1)}, "invalid_value", "before"),
        ({"pipeline": "gpt-9"}, "invalid_value", "unknown pipeline"),
    ],
)
def test_the_rules_on_the_fields_are_checked_once_here(fields: dict[str, object], code: str, words: str) -> None:
    with pytest.raises(InvalidUpload, match=words) as refused:
        check_upload(Upload(carrier="ACME", driver="A-1", **fields))  # type: ignore[arg-type]
    assert refused.value.code == code
    check_upload(Upload(carrier="ACME", driver="A-1", job_start=START, job_end=START, pipeline="both"))


def test_another_carriers_driver_or_vehicle_is_refused_and_nothing_is_kept(fleet) -> None:  # type: ignore[no-untyped-def]
    store, _, acme, other = fleet
    before = blobs(store)
    scene = photo("a_by_car_wanAUJ299.jpg")
    for upload, error in (
        (Upload(carrier=acme.id, driver=other.driver_id), UnknownDriver),
        (Upload(carrier=acme.id, driver=other.driver_ref), UnknownDriver),
        (Upload(carrier=acme.id, driver=acme.driver_id, vehicle_id=other.vehicle_id), UnknownVehicle),
        (Upload(carrier=acme.id, driver=acme.driver_id, plate=other.plate), UnknownVehicle),
    ):
        with pytest.raises(error):
            accept(store, scene, upload)
    assert rows(store) == 0 and blobs(store) == before


def test_a_key_replays_with_its_photo_and_is_refused_with_another(fleet) -> None:  # type: ignore[no-untyped-def]
    store, _, acme, _ = fleet
    upload = Upload(carrier=acme.id, driver=acme.driver_ref, plate="皖A·UJ299", idempotency_key="job-7")
    first = accept(store, photo("a_by_car_wanAUJ299.jpg"), upload)
    assert first.created and first.status is SubmissionStatus.RECEIVED
    again = accept(store, photo("a_by_car_wanAUJ299.jpg"), upload)
    assert (again.submission_id, again.created) == (first.submission_id, False)
    kept = blobs(store)
    with pytest.raises(IdempotencyConflict):
        accept(store, photo("street_taxi.jpg"), upload)
    assert rows(store) == 1 and blobs(store) == kept  # the refused photo was never written
    with store.sessions() as s:
        sub = s.get_one(Submission, first.submission_id)
        assert (sub.driver_id, sub.vehicle_id, sub.claimed_plate) == (acme.driver_id, acme.vehicle_id, "皖AUJ299")
        created = audit.list_events(s, subject_id=first.submission_id, action="submission.create")
        assert len(created) == 1 and created[0].after["photo_sha256"] == sub.photo_sha256
        assert store.blobs.exists(sub.photo_sha256)


def test_received_is_queued_and_published_or_left_for_the_sweeper(  # type: ignore[no-untyped-def]
    fleet, redis_server: RedisServer
) -> None:
    store, settings, acme, _ = fleet
    queue = redis.Redis(port=redis_server.port)
    queue.delete("multistage")
    upload = Upload(carrier=acme.id, driver=acme.driver_id, vehicle_id=acme.vehicle_id, actor="tests")
    queued = receive(store, Publisher(settings), settings, photo("a_by_car_wanAUJ299.jpg"), upload)
    assert queued.status is SubmissionStatus.QUEUED and queue.llen("multistage") == 1

    down = settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{closed_port()}/0"})
    left = receive(store, Publisher(down), down, photo("street_taxi.jpg"), upload)
    assert left.created and left.status is SubmissionStatus.RECEIVED
    with store.sessions() as s:
        assert s.get_one(Submission, left.submission_id).status is SubmissionStatus.RECEIVED
        trail = [(e.action, (e.after or {}).get("status")) for e in audit.list_events(s, subject_id=left.submission_id)]
    assert trail == [("submission.create", "queued"), ("submission.status", "received")]
    assert queue.llen("multistage") == 1


@pytest.mark.parametrize("field", ["site", "job_id", "driver", "plate"])
@pytest.mark.parametrize("control", ["\x00", "\x1b[2J", "\x07", "\x7f", "\x85"])
def test_a_control_character_in_a_text_field_is_refused_naming_it(field: str, control: str) -> None:
    fields: dict[str, object] = {"carrier": "ACME", "driver": "A-1", field: f"depot{control}7"}
    with pytest.raises(InvalidUpload, match="control character") as refused:
        check_upload(Upload(**fields))  # type: ignore[arg-type]
    shown = "driver_ref" if field == "driver" else field
    assert str(refused.value).startswith(shown) and refused.value.code == "invalid_text"
