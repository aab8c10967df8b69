"""The Batch audits page, on SQLite and PostgreSQL.

Over HTTP with small stored verdicts: who may start an audit, what a bad form is told, scoping, and
a broker that cannot be reached (the job stays queued and the real sweeper publishes it once Redis
is back). In a real browser, over photos the multistage pipeline judges again: an admin starts an
audit, it is published to a private Redis exactly as the page publishes it, its chunks are run
inline by ``run_chunk`` (a worker's queueing is tested in tests/workers), and the page follows its
progress and then shows the diff; a viewer cannot start one; another carrier's is not found."""

from __future__ import annotations

import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.queue.publisher import Publisher
from compliance.service.audits import run_chunk
from compliance.service.intake import Upload, accept
from compliance.service.sweeper import sweep_once
from compliance.settings import Settings
from compliance.store import Store, audit_jobs, registry, submissions, users, verdicts
from compliance.store.models import AuditJob, AuditJobStatus, Role, Submission, utcnow
from compliance.verdicts import Outcome, ReasonCode, Verdict
from tests.dashboard.site import Site, photo
from tests.service.stack import RedisServer, wait_for
from tests.store.samples import judgments, verdict

pytestmark = pytest.mark.timeout(300)
PASSWORD = "correct horse battery"


def closed_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def older(outcome: Outcome, *reasons: ReasonCode) -> Verdict:
    """A verdict as last year's models and policy decided it: what an audit checks again."""
    return verdict(outcome, reasons=reasons, policy_version="2025.1", of=judgments(models={"yolox": "2025-old"}))


def stored_jobs(store: Store) -> list[AuditJob]:
    with store.sessions() as s:
        return list(s.scalars(sa.select(AuditJob).order_by(AuditJob.created_at)))


def audit_queue(broker: RedisServer) -> int:
    return int(redis.Redis(port=broker.port).llen("audit"))


# Over HTTP, with small stored verdicts: the page's edge.


@dataclass
class App:
    client: TestClient
    store: Store
    settings: Settings
    carriers: dict[str, int]
    drivers: dict[str, int]


@pytest.fixture()
def app(database_url: str, tmp_path: Path) -> Iterator[App]:
    # The broker is a port where nothing listens: every publish fails, as when Redis is down.
    settings = Settings(
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        broker_url=f"redis://127.0.0.1:{closed_port()}/0",
        broker_connect_timeout_s=0.5,
    )
    store = Store.open(settings)
    carriers, drivers = {}, {}
    with store.sessions() as s, s.begin():
        for n, code in enumerate(("ACME", "OTHER")):
            carrier = registry.add_carrier(s, code=code, name=code)
            vehicle = registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299", plate_color="blue")
            driver = registry.add_driver(s, carrier_id=carrier.id, name=f"{code} driver", external_ref="D-1")
            carriers[code], drivers[code] = carrier.id, driver.id
            sub = submissions.create_submission(
                s,
                carrier_id=carrier.id,
                driver_id=driver.id,
                vehicle_id=vehicle.id,
                photo_sha256=f"{n + 1:064x}",
                photo_phash=f"{n + 1:016x}",
                source="api",
            ).submission
            verdicts.record_verdict(s, sub.id, older(Outcome.FAIL, ReasonCode.PLATE_MISMATCH))
            for role in Role:
                users.add_user(
                    s, username=f"{code.lower()}.{role.value}", password=PASSWORD, role=role, carrier_id=carrier.id
                )
        users.add_user(s, username="ops", password=PASSWORD, role=Role.ADMIN, carrier_id=None)
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        yield App(client, store, settings, carriers, drivers)
    store.engine.dispose()


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no form token on the page"
    return found[1]


def sign_in(client: TestClient, username: str) -> str:
    """Signs in; returns the session's form token."""
    page = client.get("/dashboard/login")
    signed = client.post(
        "/dashboard/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token(page.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return token(client.get("/dashboard/audits").text)


def start(client: TestClient, csrf: str, headers: dict[str, str] | None = None, **form: str):
    fields = {"csrf_token": csrf, "pipeline": "multistage", **form}
    return client.post("/dashboard/audits", data=fields, headers=headers, follow_redirects=False)


def test_only_an_admin_starts_an_audit_and_only_from_this_sites_form(app: App) -> None:
    for username in ("acme.viewer", "acme.reviewer"):
        csrf = sign_in(app.client, username)
        page = app.client.get("/dashboard/audits")
        assert page.status_code == 200 and 'id="start-audit"' not in page.text
        assert "needs the admin role" in page.text
        refused = start(app.client, csrf)
        assert refused.status_code == 403 and "needs the admin role" in refused.text
    csrf = sign_in(app.client, "acme.admin")
    assert 'id="start-audit"' in app.client.get("/dashboard/audits").text
    assert start(app.client, "forged").status_code == 403
    assert start(app.client, csrf, headers={"Origin": "https://evil.test"}).status_code == 403
    assert stored_jobs(app.store) == []

    started = start(app.client, csrf)
    assert started.status_code == 303
    (job,) = stored_jobs(app.store)
    assert started.headers["location"] == f"/dashboard/audits/{job.id}"
    assert job.carrier_id == app.carriers["ACME"] and job.created_by == "acme.admin"
    assert job.pipeline == "multistage" and job.total == 1


def test_an_audit_the_broker_did_not_take_waits_for_the_sweeper(app: App, tmp_path: Path) -> None:
    csrf = sign_in(app.client, "acme.admin")
    zone = app.client.app.state.report_zone  # type: ignore[attr-defined]
    today = zone.today()
    week_ago = today - timedelta(days=6)
    started = start(app.client, csrf, since=week_ago.isoformat(), until=today.isoformat())
    assert started.status_code == 303
    (job,) = stored_jobs(app.store)
    # Saved and queued in the database although nothing could be published.
    assert job.status is AuditJobStatus.QUEUED and job.total == 1
    # The days typed are whole days in the reports' zone, the last one included.
    assert job.criteria["since"] == zone.start_of(week_ago).isoformat()
    assert job.criteria["until"] == zone.start_of(today + timedelta(days=1)).isoformat()
    page = app.client.get(started.headers["location"])
    assert page.status_code == 200 and "could not be reached" in page.text
    assert f"{week_ago.isoformat()} → {today.isoformat()}" in page.text
    assert "could not be reached" not in app.client.get(started.headers["location"]).text  # said once

    # Redis is back: the sweeper finds the job no task took and publishes it to the audit queue.
    broker = RedisServer(tmp_path / "redis")
    broker.start()
    try:
        sweeper_settings = app.settings.model_copy(
            update={
                "broker_url": broker.url,
                "task_soft_time_limit_s": 1,
                "task_time_limit_s": 2,
                "sweep_stale_after_s": 3.0,
            }
        )
        time.sleep(3.2)  # the job is stale now
        publisher = Publisher(sweeper_settings)

        def swept() -> bool:
            # On PostgreSQL another test's sweeper may hold the advisory lock for a moment.
            return sweep_once(app.store, sweeper_settings, publisher).skipped is None

        wait_for(swept, 30, "the sweeper's lock")
        assert audit_queue(broker) == 1
    finally:
        broker.kill()


def test_a_bad_form_says_what_is_wrong_and_starts_nothing(app: App) -> None:
    csrf = sign_in(app.client, "acme.admin")
    for form, message in (
        ({"since": "yesterday"}, "is not a date"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until is before since"),
        ({"pipeline": "gpt"}, "choose one of multistage, mllm, both"),
        ({"driver": "ghost"}, "no driver"),
        ({"plate": "京A00000"}, "no registered vehicle"),
        ({"driver": f"#{app.drivers['OTHER']}"}, "no driver"),  # another carrier's driver
    ):
        refused = start(app.client, csrf, **form)
        assert refused.status_code == 400 and message in refused.text, form
        for name in ("since", "until", "driver", "plate"):  # the form keeps what was typed
            if name in form:
                assert f'name="{name}" value="{form[name]}"' in refused.text, name
    csrf = sign_in(app.client, "ops")
    refused = start(app.client, csrf)
    assert refused.status_code == 400 and "choose the carrier" in refused.text
    # The operator's staff pick the carrier; a driver is looked up in that carrier only.
    refused = start(app.client, csrf, carrier="OTHER", driver=f"#{app.drivers['ACME']}")
    assert refused.status_code == 400 and "no driver" in refused.text
    assert stored_jobs(app.store) == []
    assert start(app.client, csrf, carrier="OTHER", driver="D-1", plate="皖AUJ299").status_code == 303
    (job,) = stored_jobs(app.store)
    assert job.carrier_id == app.carriers["OTHER"] and job.created_by == "ops" and job.total == 1


def test_another_carriers_audit_is_not_found(app: App) -> None:
    with app.store.sessions() as s, s.begin():
        ours = audit_jobs.create_audit_job(s, app.carriers["ACME"], pipeline="multistage").id
        theirs = audit_jobs.create_audit_job(s, app.carriers["OTHER"], pipeline="multistage").id
        since = utcnow() + timedelta(days=1)
        empty = audit_jobs.create_audit_job(s, app.carriers["ACME"], pipeline="mllm", since=since).id
    sign_in(app.client, "acme.viewer")
    listing = app.client.get("/dashboard/audits").text
    assert ours in listing and empty in listing and theirs not in listing
    assert "<th>carrier</th>" not in listing
    for path in (f"/dashboard/audits/{theirs}", f"/dashboard/audits/{theirs}/progress", "/dashboard/audits/x%00y"):
        assert app.client.get(path).status_code == 404, path
    # Their own: the page, and the progress it polls.
    assert app.client.get(f"/dashboard/audits/{ours}").status_code == 200
    progress = app.client.get(f"/dashboard/audits/{ours}/progress")
    assert progress.headers["cache-control"] == "no-store"
    assert progress.json() == {"id": ours, "status": "queued", "total": 1, "pending": 1, "done": 0, "failed": 0}
    # A job that matched nothing is done at once, and says so.
    assert "nothing to audit" in app.client.get(f"/dashboard/audits/{empty}").text
    assert app.client.get(f"/dashboard/audits/{empty}/progress").json()["status"] == "done"

    sign_in(app.client, "other.viewer")
    assert app.client.get(f"/dashboard/audits/{ours}").status_code == 404
    assert app.client.get(f"/dashboard/audits/{theirs}").status_code == 200
    # The operator's staff see every carrier's audits, with the carrier named.
    sign_in(app.client, "ops")
    listing = app.client.get("/dashboard/audits").text
    assert ours in listing and theirs in listing and "<th>carrier</th>" in listing
    assert app.client.get(f"/dashboard/audits/{theirs}").status_code == 200


def test_a_photo_that_cannot_be_judged_again_is_listed_with_its_error(app: App) -> None:
    with app.store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, app.carriers["ACME"], pipeline="multistage").id
    # The stored submission's photo was never kept (its hash names no blob): the item fails, the job ends.
    assert not run_chunk(app.store, app.settings, job_id).more
    sign_in(app.client, "acme.viewer")
    page = app.client.get(f"/dashboard/audits/{job_id}").text
    assert "Could not be re-judged" in page and "MissingBlob" in page
    assert 'id="diff"' not in page  # nothing was re-judged, so nothing changed
    row = re.search(rf'<tr data-job="{job_id}">.*?</tr>', app.client.get("/dashboard/audits").text, re.S)
    assert row and "1 / 1" in row[0] and re.search(r'<td class="num">1</td>', row[0])


# In a real browser, over photos the multistage pipeline judges again.


@pytest.fixture()
def site(brokered_site: Site) -> Site:
    """The dashboard's test site publishing to a private Redis (``broker``, tests/dashboard/conftest.py)."""
    return brokered_site


def decided_last_year(site: Site, picture: str, driver: str, plate: str, old: Verdict) -> str:
    """An ACME photo decided by last year's models (and never by the current ones)."""
    accepted = accept(
        site.store, photo(picture), Upload(carrier="ACME", driver=driver, plate=plate, site="Hefei depot")
    )
    with site.store.sessions() as s, s.begin():
        verdicts.record_verdict(s, accepted.submission_id, old)
    return accepted.submission_id


def verdicts_of(site: Site, carrier: str) -> dict[str, tuple[Outcome | None, set[str]]]:
    """Each of the carrier's submissions' current outcome and reasons."""
    with site.store.sessions() as s:
        ids = s.scalars(sa.select(Submission.id).where(Submission.carrier_id == site.carriers[carrier])).all()
        found = {}
        for submission_id in ids:
            current = submissions.get_submission(s, submission_id).current_verdict
            found[submission_id] = (current.outcome, set(current.reasons)) if current else (None, set())
        return found


def test_an_admin_starts_an_audit_watches_it_run_and_reads_what_changed(site: Site, broker: RedisServer, visit) -> None:
    from playwright.sync_api import expect  # (the browser fixture skips when Playwright is missing)

    # Two photos decided by last year's models: a compliant one failed, the street photo passed.
    once_failed = decided_last_year(
        site, "a_by_car_wanAUJ299.jpg", "A-001", "皖AUJ299", older(Outcome.FAIL, ReasonCode.PLATE_MISMATCH)
    )
    once_passed = decided_last_year(site, "street_taxi.jpg", "B-002", "皖A195K9", older(Outcome.PASS))
    before = verdicts_of(site, "ACME")
    assert before[once_failed] == (Outcome.FAIL, {"PLATE_MISMATCH"})

    tab = visit("admin")
    tab.go("/dashboard/audits")
    assert tab.page.locator("#audits tbody td.empty").count() == 1  # none yet
    tab.page.select_option("select[name=carrier]", "ACME")
    assert tab.page.input_value("select[name=pipeline]") == "multistage"  # the deployment's
    with tab.page.expect_navigation():
        tab.page.click("#start")
    job_id = tab.page.url.rsplit("/", 1)[1]
    # Published to the audit queue, as POST /v1/audits publishes.
    assert audit_queue(broker) == 1
    with site.store.sessions() as s:
        job = audit_jobs.get_audit_job(s, job_id)
        assert job.carrier_id == site.carriers["ACME"] and job.created_by == "admin"
        assert job.total == len(before) == 5 and job.status is AuditJobStatus.QUEUED
    assert tab.page.inner_text("#job-status") == "queued"
    assert tab.page.inner_text("#finished") == "0" and tab.page.locator("#diff").count() == 0

    # The first chunk: the page follows it without being reloaded.
    tab.page.evaluate("window.notReloaded = true")
    assert run_chunk(site.store, site.settings, job_id, limit=2).more
    expect(tab.page.locator("#finished")).to_have_text("2", timeout=15_000)
    assert tab.page.inner_text("#job-status") == "running" and tab.page.inner_text("#pending") == "3"
    assert tab.page.evaluate("document.getElementById('progress').value") == 2
    assert tab.page.evaluate("window.notReloaded") is True
    tab.screenshot("audit-job-running")

    # The rest: when the job ends, the page shows what changed.
    while run_chunk(site.store, site.settings, job_id).more:
        pass
    tab.page.wait_for_selector("#diff", timeout=15_000)
    assert tab.page.inner_text("#job-status") == "done" and tab.page.inner_text("#finished") == "5"
    after = verdicts_of(site, "ACME")
    # The audit's own verdicts are current: last year's FAIL became the current models' decision.
    assert after[once_failed][0] is not Outcome.FAIL and "PLATE_MISMATCH" not in after[once_failed][1]
    assert after[once_passed][0] is not Outcome.PASS
    changed = {i for i in before if before[i] != after[i]}
    assert changed == {once_failed, once_passed}  # those judged by the current models stay as they were
    transitions = Counter((before[i][0].value, after[i][0].value) for i in changed if before[i][0] != after[i][0])
    came = Counter(r for i in changed for r in after[i][1] - before[i][1])
    went = Counter(r for i in changed for r in before[i][1] - after[i][1])

    assert tab.page.inner_text("#changed") == "2"
    rows = tab.page.locator("#transitions tbody tr[data-from]")
    shown = {
        (rows.nth(i).get_attribute("data-from"), rows.nth(i).get_attribute("data-to")): int(
            rows.nth(i).locator("td.num").inner_text()
        )
        for i in range(rows.count())
    }
    assert shown == dict(transitions) and ("FAIL", after[once_failed][0].value) in shown
    reasons = tab.page.locator("#reasons tbody tr[data-reason]")
    assert {reasons.nth(i).get_attribute("data-reason") for i in range(reasons.count())} == set(came) | set(went)
    plate_mismatch = tab.page.locator('#reasons tr[data-reason="PLATE_MISMATCH"]')
    assert plate_mismatch.locator("td.went").inner_text() == "−1"
    items = tab.page.locator("#changed-items tbody tr")
    assert {items.nth(i).get_attribute("data-submission") for i in range(items.count())} == changed
    failed_row = tab.page.locator(f'#changed-items tr[data-submission="{once_failed}"]')
    assert "FAIL" in failed_row.locator("td.before").inner_text()
    assert after[once_failed][0].value in failed_row.locator("td.after").inner_text()
    tab.screenshot("audit-job")

    # A changed submission's link opens it: last year's verdict superseded by the audit's.
    with tab.page.expect_navigation():
        failed_row.locator("a").click()
    assert tab.page.url.endswith(f"/dashboard/submissions/{once_failed}")
    history = tab.page.locator("#verdicts tbody tr")
    assert "current" in history.first.inner_text() and after[once_failed][0].value in history.first.inner_text()
    assert "FAIL" in tab.page.locator("#verdicts tbody tr.superseded").first.inner_text()

    # The list: the job done, every item re-judged, the carrier named for the operator's staff.
    tab.go("/dashboard/audits")
    row = tab.page.locator(f'#audits tr[data-job="{job_id}"]')
    assert "done" in row.inner_text() and "5 / 5" in row.inner_text() and "ACME" in row.inner_text()
    tab.screenshot("audits-list")


def test_a_viewer_cannot_start_an_audit(site: Site, broker: RedisServer, visit) -> None:
    with site.store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, site.carriers["ACME"], pipeline="multistage", actor="admin").id
    tab = visit("acme.viewer")
    tab.go("/dashboard/audits")
    assert tab.page.locator("#start-audit").count() == 0
    assert "needs the admin role" in tab.page.inner_text("main")
    # They follow the carrier's audits all the same.
    with tab.page.expect_navigation():
        tab.page.locator(f'#audits tr[data-job="{job_id}"] a').click()
    assert tab.page.inner_text("#job-status") == "queued"
    # Nor can they start one by posting the form straight to the server (with their own form token).
    csrf = tab.page.locator("input[name=csrf_token]").first.input_value()
    posted = tab.page.request.post(
        f"{site.url}/dashboard/audits", form={"csrf_token": csrf, "carrier": "ACME", "pipeline": "multistage"}
    )
    assert posted.status == 403
    assert len(stored_jobs(site.store)) == 1 and audit_queue(broker) == 0


def test_another_carriers_audit_is_a_404(site: Site, visit) -> None:
    with site.store.sessions() as s, s.begin():
        job_id = audit_jobs.create_audit_job(s, site.carriers["ACME"], pipeline="multistage", actor="admin").id
    tab = visit("other.reviewer")
    assert tab.go(f"/dashboard/audits/{job_id}").status == 404
    assert "no such audit" in tab.page.inner_text("main")
    assert tab.page.request.get(f"{site.url}/dashboard/audits/{job_id}/progress").status == 404
    tab.go("/dashboard/audits")
    assert tab.page.locator(f'#audits tr[data-job="{job_id}"]').count() == 0
