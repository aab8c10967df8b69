"""The service over RabbitMQ (``COMPLIANCE_BROKER_URL=amqp://…``): PostgreSQL, a private RabbitMQ
node (never the shared server on 5672), a private Redis for the throttles only, the local photo
folder, and real API and worker processes.

What RabbitMQ is chosen for: queued work survives the broker's restart with no sweeper running
(quorum queues), countdowns wait in RabbitMQ (native delayed delivery), and the sweeper, /readyz and
/metrics read the broker's state over AMQP.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import amqp
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from kombu import Connection

from compliance import metrics
from compliance.api.app import create_app
from compliance.queue.publisher import Publisher
from compliance.service.sweeper import service_collector, sweep_once
from compliance.store import Store
from compliance.store.models import Submission, VerdictRecord
from tests.conftest import POSTGRES_URL, postgres_unavailable
from tests.databases import postgres_schema
from tests.service.conftest import PASSING_PHOTO, SAMPLES, add_carrier
from tests.service.stack import RabbitServer, RedisServer, ServiceStack, free_port, wait_for
from tests.workers.test_tasks import TIMINGS, _sample, tiny_mllm  # noqa: F401 (a fixture)

pytestmark = pytest.mark.postgres


@contextmanager
def _rabbit_stack(tmp_path: Path, **values: object) -> Iterator[ServiceStack]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    rabbit = RabbitServer(tmp_path / "rabbitmq")
    try:
        rabbit.start()
        with postgres_schema(POSTGRES_URL) as url:
            service = ServiceStack(tmp_path, url, redis, rabbit=rabbit, **{**TIMINGS, **values})
            Store.open(service.settings).engine.dispose()
            try:
                yield service
            finally:
                service.stop()
    finally:
        rabbit.kill()
        redis.kill()


@pytest.fixture()
def stack(tmp_path: Path) -> Iterator[ServiceStack]:
    with _rabbit_stack(tmp_path) as service:
        yield service


def _status(store: Store, submission_id: str) -> str:
    with store.sessions() as s:
        return s.get_one(Submission, submission_id).status.value


def _machine_verdicts(store: Store, submission_id: str) -> int:
    with store.sessions() as s:
        query = sa.select(sa.func.count()).select_from(VerdictRecord)
        return int(
            s.scalar(query.where(VerdictRecord.submission_id == submission_id, VerdictRecord.decided_by == "machine"))
            or 0
        )


def test_rabbitmq_keeps_queued_work_across_a_restart_and_delivers_countdowns(stack: ServiceStack) -> None:
    assert stack.rabbit is not None
    store = Store.open(stack.settings, migrate=False)
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    publisher = Publisher(stack.settings)
    _, base = stack.api()
    api = httpx.Client(base_url=base, headers=acme.auth, timeout=30)
    fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)}

    # A worker declares the queues (and the delay queues) at its start, as in production, and stops.
    # RabbitMQ 3.10 writes a declaration to disk shortly after answering it: a node killed within a
    # second of the very first declaration may come back without the queue.
    first = stack.worker(["multistage"])
    first.stop()
    # ...every queue's, not only those it consumes, so the delay exchanges are bound to all of them.
    assert "Failed to bind" not in first.output(), first.output()[-3000:]
    with Connection(stack.rabbit.url) as connection:
        for name in ("multistage", "mllm", "audit", "webhooks"):
            connection.channel().exchange_declare(exchange=name, type="topic", passive=True)
            connection.channel().queue_declare(queue=name, passive=True)
    time.sleep(2)

    # Queued with no worker running, then the node is SIGKILLed and started again; no sweeper runs.
    queued = []
    for n in range(2):
        response = api.post("/v1/submissions", data=fields, files={"photo": (f"{n}.jpg", PASSING_PHOTO.read_bytes())})
        assert response.status_code == 202, response.text
        queued.append(response.json()["id"])
    assert publisher.queue_depths()["multistage"] == 2
    stack.rabbit.restart()
    # Kept on disk by the quorum queue; it counts them again while it recovers its log.
    wait_for(lambda: publisher.queue_depths()["multistage"] == 2, 30, "the two queued tasks back after the restart")
    assert publisher.lost_data_since() is None

    # The queues are quorum queues: declaring one as classic is refused.
    with Connection(stack.rabbit.url) as connection, pytest.raises(amqp.exceptions.PreconditionFailed):
        connection.channel().queue_declare(queue="multistage", durable=True, passive=False)

    stack.worker(["multistage"])
    wait_for(lambda: all(_status(store, i) == "decided" for i in queued), 120, "the queued uploads' verdicts", 0.3)
    assert [_machine_verdicts(store, i) for i in queued] == [1, 1]

    # Accepted while the broker is unreachable: RECEIVED, nothing published.
    down = stack.settings.model_copy(update={"broker_url": "amqp://guest:guest@127.0.0.1:1//"})
    app = create_app(stack.settings, publisher=Publisher(down))
    with TestClient(app) as client:
        received = []
        for n in range(2):
            response = client.post(
                "/v1/submissions",
                data=fields,
                files={"photo": (f"r{n}.jpg", PASSING_PHOTO.read_bytes())},
                headers=acme.auth,
            )
            assert response.status_code == 202, response.text
            received.append(response.json()["id"])
    app.state.store.engine.dispose()
    assert [_status(store, i) for i in received] == ["received", "received"]

    # A countdown waits in RabbitMQ's delay queues, not in the work queue nor in a worker.
    started = time.monotonic()
    publisher.judge_part(received[0], "multistage", countdown=4)
    assert publisher.queue_depths()["multistage"] == 0
    wait_for(lambda: _status(store, received[0]) == "decided", 60, "the delayed task's verdict", 0.1)
    assert time.monotonic() - started >= 3.5

    # The sweeper reads RabbitMQ's state (it used to skip every sweep as "broker unavailable") and
    # queues the upload the broker never got.
    time.sleep(stack.settings.sweep_received_after_s)
    swept = sweep_once(store, stack.settings, publisher)
    assert swept.skipped is None and not swept.broker_restarted
    assert swept.requeued == {"received": 1}
    wait_for(lambda: _status(store, received[1]) == "decided", 60, "the swept upload's verdict", 0.2)
    assert [_machine_verdicts(store, i) for i in [*queued, *received]] == [1, 1, 1, 1]

    # /readyz and the global gauges (the sweeper exports them) answer from RabbitMQ.
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "ok", ready.text
    text = metrics.render(service_collector(store, publisher)).decode()
    assert "compliance_broker_up 1.0" in text, text[:2000]
    assert 'compliance_queue_depth{queue="multistage"} 0.0' in text
    assert 'compliance_submissions{status="decided"} 4.0' in text
    store.engine.dispose()


def test_the_gpu_queue_batches_over_rabbitmq(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """celery-batches on a quorum queue (per-consumer prefetch, no global QoS): queued photos are
    judged in one batch."""
    with _rabbit_stack(tmp_path, **request.getfixturevalue("tiny_mllm")) as stack:
        store = Store.open(stack.settings, migrate=False)
        acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
        publisher = Publisher(stack.settings)
        stack.worker(["mllm"]).stop()  # declares the queues, as a deployed worker has
        time.sleep(2)
        app = create_app(stack.settings)
        with TestClient(app) as client:
            ids = []
            for photo in (PASSING_PHOTO, SAMPLES / "street_taxi.jpg", SAMPLES / "parked_car_wanA195K9.jpg"):
                fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id), "pipeline": "mllm"}
                response = client.post(
                    "/v1/submissions", data=fields, files={"photo": (photo.name, photo.read_bytes())}, headers=acme.auth
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        app.state.store.engine.dispose()
        assert publisher.queue_depths()["mllm"] == 3
        port = free_port()
        stack.worker(["mllm"], "--metrics-port", str(port))
        wait_for(lambda: all(_status(store, i) == "decided" for i in ids), 240, "three MLLM verdicts", 0.3)
        assert [_machine_verdicts(store, i) for i in ids] == [1, 1, 1]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert _sample(text, "compliance_mllm_batch_size_sum") == 3, text
        assert _sample(text, "compliance_mllm_batch_size_count") == 1, text
        store.engine.dispose()


def test_an_amqp_broker_needs_a_redis_for_the_throttles() -> None:
    from pydantic import ValidationError

    from compliance.settings import Settings

    with pytest.raises(ValidationError, match="COMPLIANCE_REDIS_URL"):
        Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")
    settings = Settings(broker_url="amqp://guest:guest@127.0.0.1:5672//", redis_url="redis://127.0.0.1:6379/3")
    assert settings.limits_redis_url == "redis://127.0.0.1:6379/3"
    assert Settings(broker_url="redis://127.0.0.1:6379/2").limits_redis_url == "redis://127.0.0.1:6379/2"
