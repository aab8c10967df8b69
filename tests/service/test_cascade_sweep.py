"""The sweeper re-queues a cascade submission at the stage it waits for, on SQLite and PostgreSQL with
a real Redis: the baseline's (CPU) queue until the baseline's judgments are stored, the MLLM's (GPU)
queue once the baseline has judged and could not settle it; and it looks for a lost message in that
stage's queue only."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from compliance.photos import Photo, receive_photo
from compliance.pipelines import get_pipeline
from compliance.queue.publisher import Publisher
from compliance.service.intake import Upload, accept
from compliance.service.sweeper import sweep_once
from compliance.service.verdicts import record_judgments
from compliance.settings import Settings
from compliance.store import Store, registry
from compliance.store.models import Submission, SubmissionStatus, utcnow
from tests.composites import PLATE, driver_by_vehicle, jpeg
from tests.service.conftest import PASSING_PHOTO, add_carrier, service_settings
from tests.service.stack import RedisServer, wait_for

QUEUES = ("multistage", "mllm")


@pytest.fixture()
def swept(database_url: str, tmp_path: Path, redis_server: RedisServer) -> Iterator[tuple[Store, Settings]]:
    # Stale after 3 s (the shortest the timing rules allow); the test dates rows back instead of waiting.
    settings = service_settings(
        database_url, tmp_path, redis_server.url, task_soft_time_limit_s=1, task_time_limit_s=2, sweep_stale_after_s=3
    )
    store = Store.open(settings)
    add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    queues = redis.Redis(port=redis_server.port)
    queues.delete(*QUEUES)
    Publisher(settings).mark_broker()  # no broker restart to sweep: only what is stale
    yield store, settings
    queues.delete(*QUEUES)
    store.engine.dispose()


def photo(data: bytes) -> Photo:
    return receive_photo(data, max_bytes=1 << 26, max_pixels=80_000_000)  # type: ignore[return-value]


def submit(store: Store, data: bytes, plate: str, status: SubmissionStatus) -> str:
    return accept(
        store, photo(data), Upload(carrier="ACME", driver="A-1", plate=plate, pipeline="cascade"), status=status
    ).submission_id


def queued(redis_server: RedisServer) -> dict[str, list[tuple[str, str]]]:
    """Each queue's messages as (submission id, the pipeline part the task runs)."""
    client = redis.Redis(port=redis_server.port)
    found: dict[str, list[tuple[str, str]]] = {}
    for queue in QUEUES:
        for raw in client.lrange(queue, 0, -1):
            args, _, _ = json.loads(base64.b64decode(json.loads(raw)["body"]))
            found.setdefault(queue, []).append((args[0], args[1]))
    return {queue: sorted(messages) for queue, messages in found.items()}


def date_back(store: Store, *ids: str) -> None:
    with store.engine.begin() as c:
        c.execute(sa.update(Submission).where(Submission.id.in_(ids)).values(updated_at=utcnow() - timedelta(hours=1)))


def sweep(store: Store, settings: Settings) -> dict[str, int]:
    publisher = Publisher(settings)
    # On PostgreSQL another test's sweeper may hold the advisory lock for a moment.
    result = wait_for(lambda: (r := sweep_once(store, settings, publisher)).skipped is None and r, 30, "a sweep")
    return result.requeued  # type: ignore[union-attr]


def test_a_cascade_is_requeued_at_the_stage_it_waits_for(
    swept: tuple[Store, Settings], redis_server: RedisServer, dev_dir: Path
) -> None:
    store, settings = swept
    with store.sessions() as s, s.begin():
        registry.add_vehicle(s, carrier_id=registry.get_carrier(s, "ACME").id, registered_plate=PLATE)
    baseline = get_pipeline("multistage", settings)
    clear = jpeg(driver_by_vehicle(dev_dir))
    # Queued, its message lost before the baseline judged.
    untouched = submit(store, PASSING_PHOTO.read_bytes(), "皖AUJ299", SubmissionStatus.QUEUED)
    # The baseline judged and could not settle it (the sample's car is seen weakly): escalated.
    escalated = submit(store, PASSING_PHOTO.read_bytes() + b"\0", "皖AUJ299", SubmissionStatus.QUEUED)
    record_judgments(store, settings, escalated, baseline)
    # The baseline judged and settled it, and its worker died before keeping the verdict.
    settled = submit(store, clear, PLATE, SubmissionStatus.QUEUED)
    record_judgments(store, settings, settled, baseline)
    # Accepted while the broker was down.
    received = submit(store, clear + b"\0", PLATE, SubmissionStatus.RECEIVED)
    date_back(store, untouched, escalated, settled, received)

    # Work waits in the CPU queue: what waits for the baseline may be behind it; the GPU queue is empty,
    # so the escalated submission's message is lost.
    Publisher(settings).judge_part("someone-else", "multistage")
    assert sweep(store, settings) == {"received": 1, "stale": 1}
    assert queued(redis_server) == {
        "multistage": sorted([("someone-else", "multistage"), (received, "multistage")]),
        "mllm": [(escalated, "mllm")],
    }

    # The CPU queue drained without them: lost too, and queued at the baseline's stage (the settled one's
    # worker then decides from what is stored, running no model).
    redis.Redis(port=redis_server.port).delete(*QUEUES)
    date_back(store, untouched, settled)
    assert sweep(store, settings) == {"stale": 2}
    assert queued(redis_server) == {"multistage": sorted([(untouched, "multistage"), (settled, "multistage")])}
