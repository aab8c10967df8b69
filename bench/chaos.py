"""Reliability under failure: N uploads through the API while a worker is SIGKILLed and Redis is
restarted (losing every queued task), then a check that every accepted upload has exactly one
final verdict per model version: none lost, none doubled.

    PYTHONPATH=. .venv/bin/python bench/chaos.py [--n 1000] [--workers 2] [--clients 4]

Runs the real stack on 127.0.0.1: PostgreSQL (a fresh schema), a private redis-server that keeps
nothing on disk (``--save "" --appendonly no``, like production's), the API (``compliance api``),
``--workers`` multistage workers (``compliance worker --queue multistage``) and the sweeper
(``compliance sweeper``). At a third of the uploads one worker's whole process group gets
SIGKILL (restarted 2 s later); at two thirds redis-server gets SIGKILL and is started again, empty,
2 s later (uploads in between are accepted as RECEIVED). Prints accepted, decided, lost, doubled
and the time to drain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

PHOTOS = [
    REPO / "compliance" / "samples" / name
    for name in ("a_by_car_wanAUJ299.jpg", "parked_car_wanA195K9.jpg", "street_taxi.jpg")
]

# Crash-safe settings, with timings short enough for a bench: a SIGKILLed worker's task returns
# after the visibility timeout; the sweeper sweeps every 2 s.
TIMINGS = {
    "task_soft_time_limit_s": 30,
    "task_time_limit_s": 40,
    "task_retry_backoff_max_s": 5,
    "webhook_backoff_max_s": 5,
    "broker_visibility_timeout_s": 60,
    "sweep_interval_s": 2,
    "sweep_received_after_s": 5,
    "sweep_stale_after_s": 120,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="uploads (10000 for the long run)")
    parser.add_argument("--workers", type=int, default=2, help="multistage worker processes")
    parser.add_argument("--clients", type=int, default=4, help="concurrent uploading clients")
    parser.add_argument("--drain-timeout", type=float, default=3600.0, help="seconds to wait for the last verdict")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()

    import httpx
    import sqlalchemy as sa

    from compliance.store import Store
    from tests.databases import postgres_schema
    from tests.service.conftest import add_carrier
    from tests.service.stack import RedisServer, ServiceStack

    console = Console(stderr=True)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    redis = RedisServer(folder / "redis")
    redis.start()
    events: list[str] = []
    with postgres_schema(args.postgres) as url:
        stack = ServiceStack(folder, url, redis, **TIMINGS)
        store = Store.open(stack.settings)
        acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
        photos = [p.read_bytes() for p in PHOTOS]
        try:
            workers = [stack.worker(["multistage"]) for _ in range(args.workers)]
            stack.sweeper()
            _, base = stack.api()
            accepted: list[str] = []
            answers: Counter[str] = Counter()
            lock = threading.Lock()
            counter = iter(range(args.n))
            kill_worker_at, restart_redis_at = args.n // 3, 2 * args.n // 3
            start = time.perf_counter()

            def note(what: str) -> None:
                events.append(f"{time.perf_counter() - start:6.1f}s  {what}")

            def chaos() -> None:
                """Watches the uploads from its own thread, so that the clients never pause."""
                while len(accepted) < kill_worker_at:
                    time.sleep(0.05)
                workers[0].kill()  # SIGKILL to the worker's whole process group, mid-task
                note(f"SIGKILL worker (after {len(accepted)} uploads)")

                def restart_worker() -> None:
                    time.sleep(2)
                    workers[0] = stack.worker(["multistage"])
                    note("worker restarted")

                restarting = threading.Thread(target=restart_worker)
                restarting.start()
                while len(accepted) < restart_redis_at:
                    time.sleep(0.05)
                redis.kill()
                note(f"SIGKILL redis-server (after {len(accepted)} uploads)")
                time.sleep(2)
                redis.start()
                note("redis-server restarted, empty")
                restarting.join()

            def client() -> None:
                with httpx.Client(base_url=base, headers=acme.auth, timeout=60) as http:
                    for i in counter:
                        response = http.post(
                            "/v1/submissions",
                            data={"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)},
                            files={"photo": ("p.jpg", photos[i % len(photos)], "image/jpeg")},
                            headers={"Idempotency-Key": f"chaos-{uuid.uuid4().hex}"},
                        )
                        with lock:
                            if response.status_code == 202:
                                accepted.append(response.json()["id"])
                                answers[response.json()["status"]] += 1
                            else:
                                answers[f"HTTP {response.status_code}"] += 1

            controller = threading.Thread(target=chaos, daemon=True)
            controller.start()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            controller.join()
            uploaded = time.perf_counter()
            note(f"all {args.n} uploads answered")

            def undecided() -> int:
                with store.engine.connect() as c:
                    query = sa.text("SELECT count(*) FROM submissions WHERE status <> 'decided'")
                    return int(c.execute(query).scalar())

            left = undecided()
            while left and time.perf_counter() - uploaded < args.drain_timeout:
                time.sleep(2)
                left = undecided()
                console.print(f"  {left} undecided", end="\r")
            drained = time.perf_counter()
            note(f"drained ({left} undecided)")

            with store.engine.connect() as c:
                statuses = dict(c.execute(sa.text("SELECT id, status FROM submissions")).all())
                machine = c.execute(
                    sa.text(
                        "SELECT submission_id, pipeline, model_version, count(*) FROM verdicts "
                        "WHERE decided_by = 'machine' GROUP BY submission_id, pipeline, model_version"
                    )
                ).all()
                judgments = c.execute(
                    sa.text(
                        "SELECT submission_id, count(*) FROM judgments GROUP BY submission_id, pipeline, model_version"
                    )
                ).all()
                outcomes = Counter(
                    o for (o,) in c.execute(sa.text("SELECT outcome FROM submissions WHERE outcome IS NOT NULL"))
                )
                attempts = Counter(
                    a for (a,) in c.execute(sa.text("SELECT attempts FROM submissions WHERE status = 'decided'"))
                )
                requeued = Counter(
                    (r or "").removeprefix("requeued: ")
                    for (r,) in c.execute(sa.text("SELECT reason FROM audit_events WHERE actor = 'sweeper'"))
                )
        finally:
            stack.stop()
            store.engine.dispose()
            redis.kill()

    accepted_set = set(accepted)
    with_verdict = {s for s, _, _, _ in machine}
    decided = sum(1 for s in accepted_set if statuses.get(s) == "decided" and s in with_verdict)
    lost = len(accepted_set) - decided
    doubled = sum(1 for *_, n in machine if n > 1) + sum(1 for _, n in judgments if n > 1)
    versions = Counter(s for s, _, _, _ in machine)
    extra_versions = sum(1 for n in versions.values() if n > 1)

    out = Console(width=150)
    for line in events:
        out.print(line)
    table = Table(
        title=f"chaos: {args.n} uploads, {args.workers} multistage workers, {args.clients} clients, "
        f"{os.cpu_count()} cores; worker SIGKILLed at {kill_worker_at}, Redis restarted at {restart_redis_at}",
        header_style="bold",
    )
    for col in ("accepted", "decided", "lost", "doubled", "upload s", "drain s", "total s"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(accepted_set)),
        str(decided),
        str(lost),
        str(doubled),
        f"{uploaded - start:.1f}",
        f"{drained - uploaded:.1f}",
        f"{drained - start:.1f}",
    )
    out.print(table)
    detail = Table(header_style="bold", title="how they got there")
    detail.add_column("what")
    detail.add_column("count", justify="right")
    for status, n in sorted(answers.items()):
        detail.add_row(f"upload answered {status}", str(n))
    for outcome, n in sorted(outcomes.items()):
        detail.add_row(f"verdict {outcome}", str(n))
    for n_attempts, n in sorted(attempts.items()):
        detail.add_row(f"decided after {n_attempts} attempt(s)", str(n))
    for why, n in sorted(requeued.items()):
        detail.add_row(f"requeued by the sweeper: {why}", str(n))
    detail.add_row("submissions with verdicts of more than one model version", str(extra_versions))
    out.print(detail)
    if lost or doubled:
        sys.exit(1)


if __name__ == "__main__":
    main()
