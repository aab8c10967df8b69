"""Two API hosts and one worker, as an operator deploys them: three processes, each started by
``compliance`` in a working folder of its own, sharing nothing but PostgreSQL, Redis and an S3
bucket (a private SeaweedFS server). A client that reaches both hosts stands in for the load
balancer in front of them: every request names one public host (``Host``), whichever process
answers it.

What must hold across hosts: an upload through A is judged, and its verdict and photo read through
B; a sign-in form fetched from A is posted to B; a review recorded on B is seen on A; failed sign-ins
on A and on B count against one limit; and the hosts' and the worker's /metrics add up to what was
done.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from compliance.settings import Settings
from compliance.store import Store, users
from compliance.store.models import Role
from tests.conftest import POSTGRES_URL, REPO, postgres_unavailable
from tests.databases import postgres_schema
from tests.s3server import S3Server
from tests.service.conftest import PASSING_PHOTO, SAMPLES, Carrier, add_carrier
from tests.service.stack import Process, RedisServer, free_port, start_api, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

PUBLIC = "compliance.example"  # the load balancer's name: the one origin browsers see
PASSWORD = "correct horse battery"
REVIEW_PHOTO = SAMPLES / "street_taxi.jpg"  # its plate cannot be read: the machine leaves it to a person


@dataclass
class Host:
    name: str
    process: Process
    base: str


@dataclass
class Deployment:
    a: Host
    b: Host
    worker_metrics: str
    store: Store
    acme: Carrier


def _compliance_env(folder: Path, shared: dict[str, str]) -> dict[str, str]:
    """The process's own environment: the shared settings, nothing else of this test's (no blob
    folder, no session-secret file), and a metrics folder of its own, as a container's tmpfs."""
    metrics = folder / "metrics"
    metrics.mkdir(parents=True)
    own = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    return {**own, **shared, "PYTHONPATH": str(REPO), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}


def _start_api(name: str, root: Path, shared: dict[str, str]) -> Host:
    folder = root / name
    folder.mkdir()
    process, base = start_api(_compliance_env(folder, shared), folder / "api.log", folder)
    return Host(name, process, base)


@pytest.fixture()
def deployment(tmp_path: Path, s3_server: S3Server) -> Iterator[Deployment]:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    processes: list[Process] = []
    with postgres_schema(POSTGRES_URL, "two_hosts") as url:
        shared = {
            "COMPLIANCE_DATABASE_URL": url,
            "COMPLIANCE_BROKER_URL": redis.url,
            "COMPLIANCE_BLOB_URL": s3_server.url("two-hosts"),
            "COMPLIANCE_SESSION_SECRET": "one-secret-for-every-api-host-0123456789",
            "COMPLIANCE_MIGRATE_ON_START": "false",
            **s3_server.environment(),
        }
        try:
            # The migrations step, on its own, before any host starts.
            step = tmp_path / "migrations"
            step.mkdir()
            migrate = Process(["db", "upgrade"], _compliance_env(step, shared), step / "upgrade.log", cwd=step).start()
            assert migrate.process is not None and migrate.process.wait(timeout=120) == 0, migrate.output()[-3000:]

            settings = Settings(database_url=url, blob_url=shared["COMPLIANCE_BLOB_URL"], migrate_on_start=False)
            store = Store.open(settings, migrate=False)
            acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
            with store.sessions() as s, s.begin():
                users.add_user(s, username="ops", password=PASSWORD, role=Role.ADMIN, carrier_id=None)

            a = _start_api("a", tmp_path, shared)
            processes.append(a.process)
            b = _start_api("b", tmp_path, shared)
            processes.append(b.process)
            worker_folder = tmp_path / "worker"
            worker_folder.mkdir()
            metrics_port = free_port()
            worker = Process(
                ["worker", "--queue", "multistage", "--metrics-port", str(metrics_port), "--loglevel", "info"],
                _compliance_env(worker_folder, shared),
                worker_folder / "worker.log",
                cwd=worker_folder,
            ).start()
            processes.append(worker)
            wait_for(lambda: "ready." in worker.output(), 120, "the worker to be ready")
            yield Deployment(a, b, f"http://127.0.0.1:{metrics_port}/metrics", store, acme)
            store.engine.dispose()
        finally:
            for process in reversed(processes):
                process.stop()
            redis.kill()


def _browser() -> httpx.Client:
    """One browser behind the load balancer: its cookies go to whichever host answers, and every
    request names the public host."""
    return httpx.Client(headers={"Host": PUBLIC, "Origin": f"http://{PUBLIC}"}, timeout=30, follow_redirects=False)


def _form_value(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} in the form"
    return found[1]


def _sign_in(browser: httpx.Client, form_from: Host, post_to: Host, password: str) -> httpx.Response:
    form = browser.get(form_from.base + "/dashboard/login")
    assert form.status_code == 200, form.text[:500]
    data = {"username": "ops", "password": password, "csrf_token": _form_value(form.text, "csrf_token")}
    return browser.post(post_to.base + "/dashboard/login", data=data)


def _counted(text: str, metric: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels`` (0 when none)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_two_api_hosts_and_a_worker_share_only_the_database_the_broker_and_the_bucket(
    deployment: Deployment,
) -> None:
    a, b, acme = deployment.a, deployment.b, deployment.acme
    api = httpx.Client(headers=acme.auth, timeout=30)
    fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)}
    uploads = {  # photo -> the host a driver's app reached
        PASSING_PHOTO: a,
        REVIEW_PHOTO: a,
        SAMPLES / "parked_car_wanA195K9.jpg": b,
    }
    ids: dict[Path, str] = {}
    for photo, host in uploads.items():
        answer = api.post(host.base + "/v1/submissions", data=fields, files={"photo": (photo.name, photo.read_bytes())})
        assert answer.status_code == 202, answer.text
        ids[photo] = answer.json()["id"]

    # The verdicts, read through the other host.
    def decided_on(host: Host) -> dict[Path, dict[str, object]] | None:
        details = {p: api.get(f"{host.base}/v1/submissions/{i}").json() for p, i in ids.items()}
        return details if all(d["status"] == "decided" for d in details.values()) else None

    details = wait_for(lambda: decided_on(b), 180, "three verdicts, read on host B", 0.5)
    assert isinstance(details, dict)
    assert details[PASSING_PHOTO]["outcome"] == "PASS", details[PASSING_PHOTO]
    assert details[REVIEW_PHOTO]["outcome"] == "REVIEW", details[REVIEW_PHOTO]

    # A sign-in form from A, posted to B: one session secret, so B reads A's session and its token.
    browser = _browser()
    signed_in = _sign_in(browser, a, b, PASSWORD)
    assert signed_in.status_code == 303, signed_in.text[:1000]
    assert browser.get(a.base + "/dashboard/").status_code == 200  # and the session holds on A

    # The photo uploaded through A, served by B from the bucket (no folder is shared).
    served = browser.get(f"{b.base}/dashboard/submissions/{ids[PASSING_PHOTO]}/photo")
    assert served.status_code == 200
    assert hashlib.sha256(served.content).digest() == hashlib.sha256(PASSING_PHOTO.read_bytes()).digest()

    # A review recorded on B, seen on A.
    page = browser.get(f"{b.base}/dashboard/review/{ids[REVIEW_PHOTO]}")
    assert page.status_code == 200, page.text[:500]
    recorded = browser.post(
        f"{b.base}/dashboard/review/{ids[REVIEW_PHOTO]}",
        data={
            "csrf_token": _form_value(page.text, "csrf_token"),
            "verdict_id": _form_value(page.text, "verdict_id"),
            "decision": "approve",
        },
    )
    assert recorded.status_code == 303, recorded.text[:1000]
    seen = api.get(f"{a.base}/v1/submissions/{ids[REVIEW_PHOTO]}").json()
    assert seen["outcome"] == "PASS"
    assert [v["decided_by"] for v in seen["history"]] == ["machine", "ops"], seen["history"]

    # Failed sign-ins on A and on B count against one limit (10 per name): the right password is
    # then refused on both, whichever host counted the guesses.
    guesser = _browser()
    for host in (a, b) * 5:
        assert _sign_in(guesser, host, host, "guess").status_code == 401
    assert _sign_in(guesser, a, a, PASSWORD).status_code == 429
    assert _sign_in(guesser, b, b, PASSWORD).status_code == 429

    # Each host counts its own uploads, the worker its verdicts: together, what was done.
    on_a, on_b = (httpx.get(h.base + "/metrics", timeout=10).text for h in (a, b))
    worker = httpx.get(deployment.worker_metrics, timeout=10).text
    assert _counted(on_a, "compliance_uploads_total", result="accepted") == 2
    assert _counted(on_b, "compliance_uploads_total", result="accepted") == 1
    assert _counted(worker, "compliance_verdicts_total") == len(ids)
    assert _counted(on_a, "compliance_verdicts_total") == _counted(on_b, "compliance_verdicts_total") == 0
    # The global gauges are the sweeper's to export, once: no API host repeats them.
    assert "compliance_queue_depth" not in on_a + on_b
