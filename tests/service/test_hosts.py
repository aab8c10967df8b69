"""Several hosts over one database: two chains of one audit judge no item twice, the sweeper leaves
a job alone while a chunk of it runs, and a host whose clock is off re-queues nothing early (ages
are read on the database's clock). On SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from compliance.queue.publisher import Publisher
from compliance.service.audits import run_chunk
from compliance.service.sweeper import run_sweeper, sweep_once
from compliance.settings import Settings
from compliance.store import Store, audit_jobs, registry, submissions, verdicts
from compliance.store.models import AuditJob, Submission, SubmissionStatus, utcnow
from compliance.verdicts import Outcome, ReasonCode
from tests.service.stack import RedisServer, free_port, wait_for
from tests.store.samples import verdict

ITEMS = 12


def decided_store(settings: Settings, n: int) -> tuple[Store, tuple[int, int, int]]:
    """A carrier with ``n`` decided submissions (their photos are not stored: re-judging each fails
    quickly and is recorded on its item, which is all the claim needs)."""
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="ACME")
        vehicle = registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299", plate_color="blue")
        driver = registry.add_driver(s, carrier_id=carrier.id, name="张伟", external_ref="D-1")
        for i in range(n):
            sub = submissions.create_submission(
                s,
                carrier_id=carrier.id,
                driver_id=driver.id,
                vehicle_id=vehicle.id,
                photo_sha256=f"{i + 1:064x}",
                photo_phash=f"{i + 1:016x}",
                source="api",
            ).submission
            verdicts.record_verdict(s, sub.id, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
        ids = (carrier.id, driver.id, vehicle.id)
    return store, ids


def test_two_chains_of_one_audit_judge_no_item_twice(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs", audit_chunk=3)
    store, (carrier_id, _, _) = decided_store(settings, ITEMS)
    with store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, carrier_id, pipeline="multistage").id
    judged: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def on_item(submission_id: str) -> None:
        with lock:
            judged.append(submission_id)
        threading.Event().wait(0.05)  # a judgment takes a while: the chains overlap

    def chain() -> None:
        try:
            # The chain as a worker runs it: a chunk, then the next while this chain holds items.
            while True:
                chunk = run_chunk(store, settings, job_id, on_item=on_item)
                if not (chunk.more and chunk.claimed):
                    return
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    chains = [threading.Thread(target=chain) for _ in range(2)]
    for t in chains:
        t.start()
    for t in chains:
        t.join(timeout=120)
    assert not errors, errors
    twice = {sid: n for sid, n in Counter(judged).items() if n > 1}
    assert not twice, f"judged more than once: {twice}"
    assert len(judged) == ITEMS
    assert run_chunk(store, settings, job_id).more is False  # done
    with store.sessions() as s:
        assert audit_jobs.progress(s, job_id).as_json()["total"] == ITEMS
    store.engine.dispose()


def test_the_sweeper_leaves_a_job_alone_while_a_chunk_holds_its_items(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store, (carrier_id, _, _) = decided_store(settings, 2)
    with store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, carrier_id, pipeline="multistage").id
    with store.sessions() as s, s.begin():
        assert len(audit_jobs.claim_items(s, job_id, limit=1, lease_s=600)) == 1
    with store.sessions() as s, s.begin():  # no progress for an hour, as a slow chunk would show
        s.execute(sa.update(AuditJob).values(updated_at=utcnow() - timedelta(hours=1)))
    with store.sessions() as s:
        assert audit_jobs.stalled_jobs(s, stale_s=900, limit=10) == []  # a chunk holds an item: alive
    with store.sessions() as s, s.begin():  # the chunk died: its lease ends
        audit_jobs.release_items(s, job_id, [sid for (sid,) in s.execute(sa.select(Submission.id))])
    with store.sessions() as s:
        assert audit_jobs.stalled_jobs(s, stale_s=900, limit=10) == [job_id]
    store.engine.dispose()


def test_an_upload_accepted_by_a_host_whose_clock_is_slow_is_not_requeued_early(
    database_url: str, tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        broker_url=redis_server.url,
        sweep_received_after_s=30,
        orphan_sweep_interval_s=3600,
    )
    store, (carrier_id, driver_id, vehicle_id) = decided_store(settings, 0)
    # The host that accepts the upload runs an hour slow: by its own clock, the upload is an hour old.
    monkeypatch.setattr(submissions, "utcnow", lambda: utcnow() - timedelta(hours=1))
    with store.sessions() as s, s.begin():
        received = submissions.create_submission(
            s,
            carrier_id=carrier_id,
            driver_id=driver_id,
            vehicle_id=vehicle_id,
            photo_sha256="a" * 64,
            photo_phash="a" * 16,
            source="api",
        ).submission.id
    publisher = Publisher(settings)
    publisher.mark_broker()  # the broker lost nothing: only the age of the upload counts
    result = sweep_once(store, settings, publisher)
    assert result.skipped is None, result.skipped
    assert result.requeued == {}, "re-queued an upload accepted a moment ago"
    # An upload that did wait past sweep_received_after_s is re-queued, whatever this host's clock says.
    with store.sessions() as s, s.begin():
        s.execute(sa.update(Submission).values(updated_at=utcnow() - timedelta(minutes=5)))
    assert sweep_once(store, settings, publisher).requeued == {"received": 1}
    with store.sessions() as s:
        assert s.get_one(Submission, received).status is SubmissionStatus.QUEUED
    store.engine.dispose()


def test_the_sweeper_alone_exports_the_global_gauges_on_its_port(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    port = free_port()
    settings = Settings(
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        broker_url=redis_server.url,
        sweeper_metrics_port=port,
        sweep_interval_s=0.2,
    )
    store, _ = decided_store(settings, 3)
    stop = threading.Event()
    running = threading.Thread(target=run_sweeper, args=(settings,), kwargs={"stop": stop})
    running.start()
    try:

        def scraped() -> str | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                return None

        wait_for(lambda: scraped() is not None, 30, "the sweeper's metrics port")
        text = scraped() or ""
        assert 'compliance_submissions{status="decided"} 3.0' in text
        assert 'compliance_queue_depth{queue="multistage"}' in text and "compliance_broker_up 1.0" in text
        assert 'compliance_current_verdicts{outcome="FAIL"} 3.0' in text
    finally:
        stop.set()
        running.join(timeout=60)
    assert not running.is_alive()
    with pytest.raises(httpx.HTTPError):  # the port is closed with the sweeper
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
    store.engine.dispose()


def test_the_sweeper_requeues_an_audit_only_when_none_of_it_waits_in_the_queue(
    database_url: str, tmp_path: Path
) -> None:
    broker = RedisServer(tmp_path / "redis")  # private: its audit queue holds only this test's chunk
    broker.start()
    try:
        settings = Settings(
            database_url=database_url,
            blob_dir=tmp_path / "blobs",
            broker_url=broker.url,
            task_soft_time_limit_s=1,
            task_time_limit_s=2,
            sweep_stale_after_s=3.0,
        )
        store, (carrier_id, _, _) = decided_store(settings, 2)
        with store.sessions() as s, s.begin():
            audit_jobs.create_audit_job(s, carrier_id, pipeline="multistage")
        publisher = Publisher(settings)
        publisher.mark_broker()

        def stale() -> None:  # no progress for an hour
            with store.sessions() as s, s.begin():
                s.execute(sa.update(AuditJob).values(updated_at=utcnow() - timedelta(hours=1)))

        stale()
        assert sweep_once(store, settings, publisher).audits == 1  # lost: queued again
        stale()
        # Its chunk waits behind a backlog (still in the queue): queueing another would start a second chain.
        assert sweep_once(store, settings, publisher).audits == 0
        assert publisher.queue_depths()["audit"] == 1
        store.engine.dispose()
    finally:
        broker.kill()


def test_failed_sign_ins_on_two_hosts_count_against_one_limit(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    from fastapi.testclient import TestClient

    from compliance.api.app import create_app
    from compliance.store import users
    from compliance.store.models import Role
    from tests.dashboard.test_security import PASSWORD, sign_in

    def host(name: str) -> Settings:  # a working folder of its own; the database and Redis shared
        return Settings(
            database_url=database_url,
            blob_dir=tmp_path / name / "blobs",
            session_secret_file=tmp_path / name / "session-secret",
            broker_url=redis_server.url,
        )

    store = Store.open(host("a"))
    with store.sessions() as s, s.begin():
        users.add_user(s, username="ops", password=PASSWORD, role=Role.ADMIN, carrier_id=None)
    store.engine.dispose()
    with TestClient(create_app(host("a"))) as a, TestClient(create_app(host("b"))) as b:
        for client in (a, b) * 5:  # ten guesses, half on each host
            assert sign_in(client, "ops", "guess").status_code == 401
        assert sign_in(a, "ops", PASSWORD).status_code == 429  # the limit is one, whichever host counted
        assert sign_in(b, "ops", PASSWORD).status_code == 429


def test_the_sweepers_metrics_port_answers_the_metrics_token_or_this_host_only() -> None:
    from prometheus_client.core import GaugeMetricFamily

    from compliance import metrics

    class Gauges:
        def collect(self) -> Iterator[GaugeMetricFamily]:
            yield GaugeMetricFamily("compliance_submissions", "by status", value=7)

    port = free_port()
    server, _ = metrics.serve_service_metrics(Gauges(), host="0.0.0.0", port=port, token="s3cret-token")
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        scraped = httpx.get(url, headers={"Authorization": "Bearer s3cret-token"}, timeout=5)
        assert scraped.status_code == 200 and "compliance_submissions 7.0" in scraped.text
    finally:
        server.shutdown()
        server.server_close()
    # Without a token: a client on this host only, as the API's /metrics (asked as the WSGI server
    # asks it, with the address the connection came from: this machine may have no other interface).
    guarded = metrics._scrapers_only(lambda environ, start: [b"gauges"], None)
    answers: list[str] = []
    for remote in ("127.0.0.1", "::1", "192.0.2.2", "203.0.113.7"):
        body = guarded({"REMOTE_ADDR": remote}, lambda status, headers: answers.append(status))
        assert (b"".join(body) == b"gauges") == ipaddress.ip_address(remote).is_loopback
    assert answers == ["401 Unauthorized", "401 Unauthorized"]


def test_an_audit_waits_out_a_photo_store_that_is_away(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket that does not answer is a "try again later", as a database or broker that does not:
    the chunk hands its items back for the retry instead of recording them failed for good."""
    from compliance.store.blobs import s3 as s3_store
    from compliance.store.errors import PhotoStoreUnavailable
    from compliance.store.models import AuditItemStatus, AuditJobItem

    for name, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(s3_store, "_RETRY_TIMEOUT", timedelta(seconds=1))
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", blob_url="s3://photos/away", audit_chunk=3)
    store, (carrier_id, _, _) = decided_store(settings, 3)
    with store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, carrier_id, pipeline="multistage").id
    with pytest.raises(PhotoStoreUnavailable):
        run_chunk(store, settings, job_id)
    with store.sessions() as s:
        items = list(s.scalars(sa.select(AuditJobItem).where(AuditJobItem.job_id == job_id)))
    assert [i.status for i in items] == [AuditItemStatus.PENDING] * 3  # none given up on
    assert all(i.claimed_until is None for i in items)  # free for the retry at once
    store.engine.dispose()


def test_a_chunk_renews_its_claim_on_what_it_has_yet_to_judge(database_url: str, tmp_path: Path) -> None:
    """An inline audit (``compliance audit start --inline``) has no task time limit: its chunk keeps
    the items it has yet to judge claimed one lease past each item it finishes, so a chunk slower
    than one lease never lets another chain take them."""
    from compliance.store.models import AuditJobItem

    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs", audit_chunk=3)
    store, (carrier_id, _, _) = decided_store(settings, 3)
    with store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, carrier_id, pipeline="multistage").id
    last_claims: list[object] = []

    def on_item(_: str) -> None:
        with store.sessions() as s:
            items = s.scalars(sa.select(AuditJobItem).where(AuditJobItem.job_id == job_id)).all()
            # The items still to judge: when does their claim run out? (A judged item's claim ends.)
            last_claims.extend(sorted(i.claimed_until for i in items if i.claimed_until is not None)[-1:])
        threading.Event().wait(0.3)

    run_chunk(store, settings, job_id, on_item=on_item)
    assert len(last_claims) == 2  # after the first and the second item; none left after the third
    assert last_claims[0] < last_claims[1], "the claim was not renewed after an item"
    store.engine.dispose()
