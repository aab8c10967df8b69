"""The service as it runs: real Celery worker processes (started with ``compliance worker``), a real
PostgreSQL schema, a private Redis that keeps nothing on disk, the API as a process or in-process.

Upload to verdict end to end with a webhook that fails once; a worker killed mid-task; Redis
restarted under the queue and the sweeper queueing again; a batch audit with its diff; the GPU
queue gathering photos into one batch.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.judgments import Answer, Judgments, PersonJudgment, Provenance
from compliance.service.webhooks import SIGNATURE_HEADER, verify_signature
from compliance.store import Store, verdicts
from compliance.store.models import AuditEvent, JudgmentRecord, Submission, VerdictRecord
from compliance.verdicts import CheckResult, Outcome, ReasonCode, Verdict
from tests.conftest import POSTGRES_URL, postgres_unavailable, s3_blob_url
from tests.databases import postgres_schema
from tests.service.conftest import PASSING_PHOTO, SAMPLES, Carrier, add_carrier, cmyk_jpeg, png16
from tests.service.stack import RedisServer, ServiceStack, free_port, wait_for

pytestmark = pytest.mark.postgres

# Short enough for a test to see a lost task come back; the ordering Settings demands still holds.
TIMINGS = {
    "task_soft_time_limit_s": 8,
    "task_time_limit_s": 10,
    "task_retry_backoff_max_s": 2,
    "webhook_backoff_s": 0.3,
    "webhook_backoff_max_s": 2,
    "broker_visibility_timeout_s": 13,
    "sweep_interval_s": 0.5,
    "sweep_received_after_s": 2,
    "sweep_stale_after_s": 30,
}


@pytest.fixture()
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServiceStack]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    # PostgreSQL + Redis + S3: photos in a bucket, as hosts that share no disk keep them.
    values = {**TIMINGS, "blob_url": s3_blob_url(request), **getattr(request, "param", {})}
    with postgres_schema(POSTGRES_URL) as url:
        service = ServiceStack(tmp_path, url, redis, **values)
        Store.open(service.settings).engine.dispose()  # migrated once, before any process starts
        try:
            yield service
        finally:
            service.stop()
            redis.kill()


@dataclass
class Live:
    stack: ServiceStack
    store: Store
    client: TestClient
    acme: Carrier

    def upload(self, photo: bytes | None = None, *, name: str = "p.jpg", **fields: object) -> str:
        data = {"driver_id": self.acme.driver_id, "vehicle_id": self.acme.vehicle_id, **fields}
        response = self.client.post(
            "/v1/submissions",
            data={k: str(v) for k, v in data.items()},
            files={"photo": (name, photo if photo is not None else PASSING_PHOTO.read_bytes(), "image/jpeg")},
            headers=self.acme.auth,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def row(self, submission_id: str) -> Submission:
        with self.store.sessions() as s:
            return s.get_one(Submission, submission_id)

    def status(self, submission_id: str) -> str:
        with self.store.engine.connect() as c:
            return str(
                c.execute(sa.text("SELECT status FROM submissions WHERE id = :i"), {"i": submission_id}).scalar()
            )

    def wait_decided(self, *ids: str, timeout: float = 90) -> None:
        wait_for(lambda: all(self.status(i) == "decided" for i in ids), timeout, f"{len(ids)} verdict(s)", 0.2)

    def machine_verdicts(self, submission_id: str) -> int:
        with self.store.sessions() as s:
            return (
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(VerdictRecord)
                    .where(VerdictRecord.submission_id == submission_id, VerdictRecord.decided_by == "machine")
                )
                or 0
            )

    def judgments(self, submission_id: str) -> int:
        with self.store.sessions() as s:
            return (
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(JudgmentRecord)
                    .where(JudgmentRecord.submission_id == submission_id)
                )
                or 0
            )

    def events(self, submission_id: str) -> list[AuditEvent]:
        with self.store.sessions() as s:
            return list(
                s.scalars(sa.select(AuditEvent).where(AuditEvent.subject_id == submission_id).order_by(AuditEvent.id))
            )


@pytest.fixture()
def live(stack: ServiceStack) -> Iterator[Live]:
    app = create_app(stack.settings)
    store: Store = app.state.store
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Live(stack, store, client, acme)
    store.engine.dispose()


# A local webhook receiver


@dataclass
class Receiver:
    url: str = ""
    requests: list[tuple[dict[str, str], bytes, int]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """Answers 500 to the first POST of each delivery and 200 to the next."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            delivery = self.headers.get("X-Compliance-Delivery", "")
            with state.lock:
                status = 200 if delivery in state.seen else 500
                state.seen.add(delivery)
                state.requests.append((dict(self.headers), body, status))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"try again")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/verdicts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def test_upload_to_verdict_end_to_end(stack: ServiceStack, receiver: Receiver) -> None:
    stack.worker(["multistage", "webhooks"])
    _, base = stack.api()
    store = Store.open(stack.settings, migrate=False)
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    api = httpx.Client(base_url=base, headers=acme.auth, timeout=30)
    hook = api.post("/v1/webhooks", json={"url": receiver.url}).json()

    fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)}
    photos = {
        "compliant.jpg": PASSING_PHOTO.read_bytes(),
        "cmyk.jpg": cmyk_jpeg(SAMPLES / "street_taxi.jpg"),
        "grey16.png": png16(SAMPLES / "parked_car_wanA195K9.jpg"),
    }
    ids = {}
    for name, photo in photos.items():
        response = api.post(
            "/v1/submissions", data=fields, files={"photo": (name, photo)}, headers={"Idempotency-Key": f"k-{name}"}
        )
        assert response.status_code == 202, response.text
        assert response.json()["status"] in ("queued", "processing", "decided")
        ids[name] = response.json()["id"]

    def all_decided() -> list[dict[str, Any]] | None:
        details = [api.get(f"/v1/submissions/{i}").json() for i in ids.values()]
        return details if all(d["status"] == "decided" for d in details) else None

    details = {d["id"]: d for d in wait_for(all_decided, 120, "three verdicts", 0.3)}  # type: ignore[union-attr]
    compliant = details[ids["compliant.jpg"]]
    assert compliant["outcome"] == "PASS", compliant["verdict"]
    assert [j["pipeline"] for j in compliant["judgments"]] == ["multistage"]
    assert compliant["judgments"][0]["judgments"]["plate"]["text"] == "皖AUJ299"
    assert [v["decided_by"] for v in compliant["history"]] == ["machine"] and compliant["history"][0]["current"]
    # CMYK and 16-bit photos were judged, not refused.
    assert {details[ids[n]]["outcome"] for n in ("cmyk.jpg", "grey16.png")} <= {"PASS", "FAIL", "REVIEW"}
    # A replay after the verdict answers with the same, decided submission.
    replay = api.post(
        "/v1/submissions",
        data=fields,
        files={"photo": ("x.jpg", photos["compliant.jpg"])},
        headers={"Idempotency-Key": "k-compliant.jpg"},
    ).json()
    assert replay == {"id": ids["compliant.jpg"], "status": "decided", "created": False}
    listed = api.get("/v1/submissions", params={"verdict": "PASS"}).json()["items"]
    assert ids["compliant.jpg"] in [s["id"] for s in listed]

    # Each verdict is POSTed, refused once with a 500, retried after a backoff and delivered.
    wait_for(lambda: len(receiver.requests) >= 6, 60, "six webhook POSTs (three retried)", 0.2)
    time.sleep(1.0)
    assert len(receiver.requests) == 6  # nothing sent twice after a 200
    secret = hook["secret"]
    announced = {}
    for headers, body, _ in receiver.requests:
        assert verify_signature(secret, body, headers[SIGNATURE_HEADER]), "signature does not verify"
        assert not verify_signature("whsec_wrong", body, headers[SIGNATURE_HEADER])
        event = json.loads(body)
        announced[event["submission_id"]] = event["verdict"]["outcome"]
    assert announced == {i: details[i]["outcome"] for i in ids.values()}
    deliveries = api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["items"]
    assert len(deliveries) == 3
    for delivery in deliveries:
        assert delivery["status"] == "delivered"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
        assert delivery["attempts"][0]["error"].startswith("HTTP 500")

    # The API's /metrics adds up what the worker process counted.
    text = api.get("/metrics").text
    passed = [line for line in text.splitlines() if line.startswith('compliance_verdicts_total{outcome="PASS"')]
    assert passed and float(passed[0].split()[-1]) >= 1.0, text[:2000]
    assert 'compliance_stage_seconds_count{stage="judge.plate"}' in text
    assert "compliance_queue_depth" not in text  # the sweeper's to export (tests/service/test_hosts.py)
    store.engine.dispose()


def _processing(live: Live, submission_id: str, timeout: float = 60) -> None:
    wait_for(lambda: live.status(submission_id) == "processing", timeout, "the task to start", 0.005)


def test_a_worker_killed_mid_task_is_redelivered(live: Live) -> None:
    worker = live.stack.worker(["multistage"])
    # 1. The pool process running the task is SIGKILLed (the OOM killer's way): the worker puts the
    # task back at once (task_reject_on_worker_lost) and a fresh process judges it.
    for _ in range(3):  # the kill races the ~0.3 s task; try again if the task won
        submission_id = live.upload()
        _processing(live, submission_id)
        for child in worker.children():
            import os
            import signal

            os.kill(child, signal.SIGKILL)
        live.wait_decided(submission_id)
        if live.row(submission_id).attempts >= 2:
            break
    row = live.row(submission_id)
    assert row.attempts >= 2, "the task finished before the kill three times running"
    assert live.machine_verdicts(submission_id) == 1 and live.judgments(submission_id) == 1
    assert "Worker exited prematurely" in worker.output() or "WorkerLostError" in worker.output()

    # 2. The whole worker is SIGKILLed mid-task: Redis hands the unacknowledged task to the next
    # worker once the visibility timeout passes.
    for _ in range(3):
        submission_id = live.upload()
        _processing(live, submission_id)
        worker.kill()
        worker = live.stack.worker(["multistage"])
        # The visibility timeout (13 s) and a fresh worker's start: longer on a loaded machine.
        live.wait_decided(submission_id, timeout=120)
        if live.row(submission_id).attempts >= 2:
            break
    assert live.row(submission_id).attempts >= 2
    assert live.machine_verdicts(submission_id) == 1 and live.judgments(submission_id) == 1
    events = live.events(submission_id)
    started = [e for e in events if e.action == "submission.status" and e.after["status"] == "processing"]
    assert len(started) >= 2 and events[-1].action == "verdict.record" and events[-1].after["status"] == "decided"


def test_redis_restart_loses_the_queue_and_the_sweeper_brings_it_back(live: Live) -> None:
    stack = live.stack
    # A submission queued while no worker runs, then Redis restarts: its message is gone.
    queued = live.upload()
    assert live.status(queued) == "queued"
    assert stack.redis and _llen(stack.redis, "multistage") == 1
    stack.redis.kill()
    # Accepted while Redis is down: stored, never queued.
    received = live.upload()
    assert live.status(received) == "received"
    stack.redis.start()
    assert _llen(stack.redis, "multistage") == 0
    worker = stack.worker(["multistage"])
    time.sleep(3.0)
    assert live.status(queued) == "queued" and live.status(received) == "received"  # nothing brings them back …

    stack.sweeper()  # … but the sweeper
    live.wait_decided(queued, received, timeout=60)
    for submission_id in (queued, received):
        reasons = [e.reason or "" for e in live.events(submission_id) if e.actor == "sweeper"]
        assert any(r.startswith("requeued: broker_restart") for r in reasons), reasons
        assert live.machine_verdicts(submission_id) == 1 and live.judgments(submission_id) == 1
    # The sweeper marked this Redis: a second sweep after the restart queues nothing again.
    time.sleep(1.5)  # a few more sweeps
    sweeps = next(stack.folder.glob("*-sweeper.log")).read_text()
    assert sweeps.count("broker had restarted") == 1, sweeps
    assert worker.process is not None and worker.process.poll() is None


def _llen(redis_server: RedisServer, queue: str) -> int:
    import redis

    return int(redis.Redis(port=redis_server.port).llen(queue))


def _old_verdict(outcome: Outcome, reasons: tuple[ReasonCode, ...]) -> Verdict:
    """A verdict as an older model version decided it (what an audit re-checks)."""
    judgments = Judgments(
        person=PersonJudgment(present=Answer.YES, count=1),
        provenance=Provenance(pipeline="multistage", models={"yolox": "2025-old"}),
    )
    results = tuple(CheckResult(check="presence", outcome=outcome, reason=r) for r in reasons) or (
        CheckResult(check="presence", outcome=outcome),
    )
    return Verdict(outcome=outcome, reasons=reasons, results=results, judgments=judgments, policy_version="2025.1")


def test_an_audit_rejudges_with_the_current_models_and_reports_the_diff(live: Live) -> None:
    # Three photos judged last year by an older model: two wrongly.
    cases = {
        "compliant, once failed": (PASSING_PHOTO, Outcome.FAIL, (ReasonCode.PLATE_MISMATCH,)),
        "taxi, once passed": (SAMPLES / "street_taxi.jpg", Outcome.PASS, ()),
        "compliant, once passed": (PASSING_PHOTO, Outcome.PASS, ()),
    }
    ids = {}
    for name, (photo, outcome, reasons) in cases.items():
        ids[name] = live.upload(photo.read_bytes())
        with live.store.sessions() as s, s.begin():
            verdicts.record_verdict(s, ids[name], _old_verdict(outcome, reasons))
    before = {
        n: live.client.get(f"/v1/submissions/{i}", headers=live.acme.auth).json()["outcome"] for n, i in ids.items()
    }
    assert before == {n: c[1].value for n, c in cases.items()}

    live.stack.worker(["audit"])
    job = live.client.post("/v1/audits", json={"driver_ids": [live.acme.driver_id]}, headers=live.acme.auth)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    assert job.json()["total"] == 3

    def done() -> dict[str, Any] | None:
        body = live.client.get(f"/v1/audits/{job_id}", headers=live.acme.auth).json()
        return body if body["status"] == "done" else None

    audit = wait_for(done, 120, "the audit to finish", 0.3)
    after = {n: live.client.get(f"/v1/submissions/{i}", headers=live.acme.auth).json() for n, i in ids.items()}
    assert audit["done"] == 3 and audit["failed"] == 0 and audit["pending"] == 0  # type: ignore[index]
    assert after["compliant, once failed"]["outcome"] == "PASS"
    assert after["taxi, once passed"]["outcome"] != "PASS"
    # The diff is exactly the verdicts that changed, from what to what.
    expected: dict[tuple[str, str], int] = {}
    for name in ids:
        if before[name] != after[name]["outcome"]:
            key = (before[name], after[name]["outcome"])
            expected[key] = expected.get(key, 0) + 1
    diff = audit["diff"]  # type: ignore[index]
    assert {(t["from"], t["to"]): t["count"] for t in diff["transitions"]} == expected
    assert diff["changed"] >= 2 and diff["changed"] + diff["unchanged"] == 3
    assert diff["reasons_removed"].get("PLATE_MISMATCH") == 1
    # The older verdicts stay in the history; the audit's are current.
    history = after["compliant, once failed"]["history"]
    assert history[0]["model_version"] != history[-1]["model_version"] and history[-1]["current"]


@pytest.fixture(scope="module")
def tiny_mllm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from compliance.mllm.tiny import build_tiny_checkpoint

    folder = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_qwen2_vl"))
    # As tests/mllm keeps it fast on CPU: small images, few new tokens; the production code path.
    return {
        "mllm_backend": "transformers",
        "mllm_model": str(folder),
        "mllm_device": "cpu",
        "mllm_min_pixels": 16 * 28 * 28,
        "mllm_max_pixels": 64 * 28 * 28,
        "mllm_max_new_tokens": 24,
        "mllm_batch_size": 4,
        "mllm_batch_wait_s": 3.0,
        "task_soft_time_limit_s": 120,
        "task_time_limit_s": 150,
        "broker_visibility_timeout_s": 300,
        "sweep_stale_after_s": 200,
    }


@contextmanager
def _tiny_mllm_stack(tmp_path: Path, tiny_mllm: dict[str, object]) -> Iterator[tuple[Live, RedisServer]]:
    """The API in process over a fresh PostgreSQL schema and a private Redis, with the tiny MLLM
    configured for the workers a test starts."""
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    with postgres_schema(POSTGRES_URL) as url:
        stack = ServiceStack(tmp_path, url, redis, **{**TIMINGS, **tiny_mllm})
        app = create_app(stack.settings)
        store: Store = app.state.store
        acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
        try:
            yield Live(stack, store, TestClient(app), acme), redis
        finally:
            stack.stop()
            store.engine.dispose()
            redis.kill()


def test_the_gpu_queue_judges_queued_photos_in_one_batch(tmp_path: Path, tiny_mllm: dict[str, object]) -> None:
    with _tiny_mllm_stack(tmp_path, tiny_mllm) as (live, redis):
        # Three photos wait in the mllm queue before the GPU worker starts: it takes them together.
        photos = [PASSING_PHOTO, SAMPLES / "street_taxi.jpg", SAMPLES / "parked_car_wanA195K9.jpg"]
        ids = [live.upload(p.read_bytes(), pipeline="mllm") for p in photos]
        assert _llen(redis, "mllm") == 3
        port = free_port()
        live.stack.worker(["mllm"], "--metrics-port", str(port))
        live.wait_decided(*ids, timeout=240)
        for submission_id in ids:
            detail = live.client.get(f"/v1/submissions/{submission_id}", headers=live.acme.auth).json()
            assert [j["pipeline"] for j in detail["judgments"]] == ["mllm"]
            assert detail["verdict"]["pipeline"] == "mllm"
            # Random weights answer noise; noise is never a PASS.
            assert detail["outcome"] in ("REVIEW", "FAIL")
            assert live.machine_verdicts(submission_id) == 1
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        batches = _sample(text, "compliance_mllm_batch_size_count")
        photos_judged = _sample(text, "compliance_mllm_batch_size_sum")
        assert photos_judged == 3 and batches == 1, text


def test_both_pipelines_run_on_their_own_queues_and_the_second_to_finish_decides(
    tmp_path: Path, tiny_mllm: dict[str, object]
) -> None:
    with _tiny_mllm_stack(tmp_path, tiny_mllm) as (live, redis):
        submission_id = live.upload(PASSING_PHOTO.read_bytes(), pipeline="both")
        # One message on each queue: the CPU half and the GPU half.
        assert (_llen(redis, "multistage"), _llen(redis, "mllm")) == (1, 1)
        live.stack.worker(["multistage"])
        # The baseline alone decides nothing: its judgments wait for the MLLM's.
        wait_for(lambda: len(_detail(live, submission_id)["judgments"]) == 1, 120, "the multistage half")
        assert _detail(live, submission_id)["verdict"] is None
        live.stack.worker(["mllm"])
        live.wait_decided(submission_id, timeout=240)
        detail = _detail(live, submission_id)
        # Each half's own judgments, and the combined ones the verdict was decided from.
        assert sorted(j["pipeline"] for j in detail["judgments"]) == ["both", "mllm", "multistage"]
        assert detail["verdict"]["pipeline"] == "both"
        # The baseline passes this photo on its own; random MLLM weights disagree with it.
        assert detail["outcome"] == "REVIEW"
        assert any(r.startswith("PIPELINES_DISAGREE_") for r in detail["reasons"]), detail["reasons"]
        assert live.machine_verdicts(submission_id) == 1


def test_a_cascade_settles_on_the_cpu_worker_and_escalates_the_rest_to_the_gpu_queue(
    tmp_path: Path, tiny_mllm: dict[str, object], dev_dir: Path
) -> None:
    from compliance.store import registry
    from tests.composites import PLATE, driver_by_vehicle, jpeg

    with _tiny_mllm_stack(tmp_path, tiny_mllm) as (live, redis):
        with live.store.sessions() as s, s.begin():
            clear_car = registry.add_vehicle(s, carrier_id=live.acme.id, registered_plate=PLATE).id
        # A dev portrait beside a car whose plate reads surely: the baseline settles it (PASS).
        settled = live.upload(jpeg(driver_by_vehicle(dev_dir)), pipeline="cascade", vehicle_id=clear_car)
        # The bundled sample: the baseline passes it but sees its car weakly, so the MLLM looks too.
        escalated = live.upload(PASSING_PHOTO.read_bytes(), pipeline="cascade")
        # A cascade starts at the baseline: both on the CPU queue, nothing on the GPU queue.
        assert (_llen(redis, "multistage"), _llen(redis, "mllm")) == (2, 0)

        port = free_port()
        live.stack.worker(["multistage"], "--metrics-port", str(port))
        live.wait_decided(settled, timeout=120)
        # The CPU worker kept the other's judgments and queued it, alone, for the GPU.
        wait_for(lambda: _llen(redis, "mllm") == 1, 60, "the escalated photo on the GPU queue")
        assert live.status(escalated) == "processing" and _detail(live, escalated)["verdict"] is None
        assert [j["pipeline"] for j in _detail(live, escalated)["judgments"]] == ["multistage"]

        live.stack.worker(["mllm"])
        live.wait_decided(escalated, timeout=240)

        first = _detail(live, settled)
        assert first["outcome"] == "PASS" and first["verdict"]["pipeline"] == "cascade"
        assert first["verdict"]["cascade"]["path"] == "settled_by_baseline"
        assert first["verdict"]["cascade"]["reason"].startswith("PASS: person score")
        assert sorted(j["pipeline"] for j in first["judgments"]) == ["cascade", "multistage"]  # no MLLM ran

        second = _detail(live, escalated)
        assert second["verdict"]["cascade"]["path"] == "escalated"
        assert "not sure of the vehicle" in second["verdict"]["cascade"]["reason"]
        assert sorted(j["pipeline"] for j in second["judgments"]) == ["cascade", "mllm", "multistage"]
        # Decided as "both" decides: random MLLM weights disagree with the baseline, field by field.
        assert second["outcome"] == "REVIEW"
        assert any(r.startswith("PIPELINES_DISAGREE_") for r in second["reasons"]), second["reasons"]
        cascade = next(j for j in second["judgments"] if j["pipeline"] == "cascade")["judgments"]["provenance"]
        assert cascade["pipelines"] == ["mllm", "multistage"] and cascade["cascade"]["path"] == "escalated"

        for submission_id in (settled, escalated):
            assert live.machine_verdicts(submission_id) == 1
        assert (_llen(redis, "multistage"), _llen(redis, "mllm")) == (0, 0)
        # Both paths counted, by whichever worker decided (the processes share one metrics folder).
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert _sample(text, 'compliance_cascade_total{path="settled_by_baseline"}') == 1, text
        assert _sample(text, 'compliance_cascade_total{path="escalated"}') == 1, text


def _detail(live: Live, submission_id: str) -> dict[str, Any]:
    return live.client.get(f"/v1/submissions/{submission_id}", headers=live.acme.auth).json()


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or (not name.endswith("}") and line.startswith(name + "{")):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in metrics")
