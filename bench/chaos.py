"""Reliability under failure: N uploads through the API while a worker is SIGKILLed and Redis is
restarted (losing every queued task), then a check that every accepted upload has exactly one
final verdict per model version: none lost, none doubled.

    PYTHONPATH=. .venv/bin/python bench/chaos.py [--n 1000] [--workers 2] [--clients 4] [--pipeline cascade]
        [--broker redis|rabbitmq]

Runs the real stack on 127.0.0.1: PostgreSQL (a fresh schema), a private redis-server that keeps
nothing on disk (``--save "" --appendonly no``, like production's), the API (``compliance api``),
``--workers`` multistage workers (``compliance worker --queue multistage``) and the sweeper
(``compliance sweeper``). At a third of the uploads one worker's whole process group gets
SIGKILL (restarted 2 s later); at two thirds redis-server gets SIGKILL and is started again, empty,
2 s later (uploads in between are accepted as RECEIVED). Prints accepted, decided, lost, doubled
and the time to drain.

``--pipeline`` is the pipeline every upload asks for. One that runs the MLLM (mllm, both, cascade)
adds a GPU-queue worker (``compliance worker --queue mllm``) with the MLLM of ``--mllm-model``, by
default a tiny random-weight checkpoint built on the spot (``compliance.mllm.tiny``), which runs on
a CPU; that worker's process group is SIGKILLed too, at half the uploads, and restarted 2 s later.
With ``cascade`` the uploads mix photos the baseline settles (a sample against another vehicle's
plate: a sure FAIL; with the dev set, a dev portrait beside a car whose plate reads surely: a sure
PASS) with photos it escalates (the samples against their own plate), and "doubled" also counts
a submission decided twice by different paths or judged by the MLLM although settled.

``--broker rabbitmq`` runs a private RabbitMQ node instead (its own node name, ports, data and
logs: ``tests.service.stack.RabbitServer``; the shared server on 5672 is never touched) and Redis
only for the throttles. The sweeper is OFF: at two thirds the node gets SIGKILL and is started again
2 s later, and everything published before is judged from RabbitMQ's quorum queues alone. Uploads
accepted while it is down wait, RECEIVED, in the database: nothing published them, by design the
sweeper's "received" step does, so after the rest has drained one ``compliance sweeper --once``
queues them, and the table counts them apart.

``--blob-store s3`` keeps the photos in a private S3 server (SeaweedFS, ``tests/s3server.py``, its
own ports and data folder) instead of a folder, and SIGKILLs that server at five sixths of the
uploads, starting it again (with its data) 2 s later: uploads meanwhile are refused or wait, and
no accepted photo may be lost nor any verdict doubled.
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
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

if TYPE_CHECKING:
    from compliance.store import Store
    from tests.service.conftest import Carrier
    from tests.service.stack import Process

PHOTOS = [
    REPO / "compliance" / "samples" / name
    for name in ("a_by_car_wanAUJ299.jpg", "parked_car_wanA195K9.jpg", "street_taxi.jpg")
]
# A cascade's photos the baseline settles: the compliant sample against another registered plate.
WRONG_PLATE = "皖A195K9"
# The tiny MLLM's small image and answer budget (as the tests keep it fast on a CPU).
TINY_MLLM = {
    "mllm_backend": "transformers",
    "mllm_device": "cpu",
    "mllm_min_pixels": 16 * 28 * 28,
    "mllm_max_pixels": 64 * 28 * 28,
    "mllm_max_new_tokens": 24,
    "mllm_batch_size": 4,
    "mllm_batch_wait_s": 0.5,
}

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
    parser.add_argument("--pipeline", default="multistage", help="multistage, mllm, both or cascade")
    parser.add_argument("--mllm-model", help="MLLM checkpoint for the GPU-queue worker (default: a tiny one, built)")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis", help="the broker to kill")
    parser.add_argument("--drain-timeout", type=float, default=3600.0, help="seconds to wait for the last verdict")
    parser.add_argument(
        "--blob-store",
        choices=("local", "s3"),
        default="local",
        help="photos in a folder, or in a private S3 server (SeaweedFS) that is SIGKILLed and restarted",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()

    import httpx
    import sqlalchemy as sa

    from compliance.pipeline import CASCADE
    from compliance.pipelines import pipeline_names
    from compliance.store import Store
    from tests.databases import postgres_schema
    from tests.service.conftest import add_carrier
    from tests.service.stack import Process, RabbitServer, RedisServer, ServiceStack

    console = Console(stderr=True)
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    uses_mllm = "mllm" in pipeline_names(args.pipeline)
    values: dict[str, object] = dict(TIMINGS)
    if uses_mllm:
        values |= TINY_MLLM | {"mllm_model": args.mllm_model or _tiny_checkpoint(folder / "tiny-mllm")}
    s3 = None
    if args.blob_store == "s3":
        from tests.s3server import S3Server

        s3 = S3Server(folder / "s3")
        s3.start()
        os.environ.update(s3.environment())  # the stack's processes inherit the AWS_* variables
        values["blob_url"] = s3.url("chaos")
    redis = RedisServer(folder / "redis")
    redis.start()
    rabbit = RabbitServer(folder / "rabbitmq") if args.broker == "rabbitmq" else None
    broker: RedisServer | RabbitServer = rabbit or redis
    if rabbit is not None:
        rabbit.start()
    broker_name = "RabbitMQ node" if rabbit else "redis-server"
    events: list[str] = []
    received_later = 0
    with postgres_schema(args.postgres) as url:
        stack = ServiceStack(folder, url, redis, rabbit=rabbit, **values)
        store = Store.open(stack.settings)
        acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
        # What each upload sends: a photo and the vehicle it claims.
        uploads = [(p.read_bytes(), acme.vehicle_id) for p in PHOTOS]
        if args.pipeline == CASCADE:
            uploads += _settled_by_the_baseline(store, acme, uploads[0][0])
        try:
            workers = [stack.worker(["multistage"]) for _ in range(args.workers)]
            gpu = [stack.worker(["mllm"])] if uses_mllm else []
            if rabbit is None:
                stack.sweeper()
            else:
                time.sleep(2)  # the workers' queue declarations reach the node's disk
            _, base = stack.api()
            accepted: list[str] = []
            answers: Counter[str] = Counter()
            lock = threading.Lock()
            counter = iter(range(args.n))
            kill_worker_at, kill_gpu_at, restart_redis_at = args.n // 3, args.n // 2, 2 * args.n // 3
            restart_s3_at = 5 * args.n // 6
            start = time.perf_counter()

            def note(what: str) -> None:
                events.append(f"{time.perf_counter() - start:6.1f}s  {what}")

            def chaos() -> None:
                """Watches the uploads from its own thread, so that the clients never pause."""
                while len(accepted) < kill_worker_at:
                    time.sleep(0.05)
                workers[0].kill()  # SIGKILL to the worker's whole process group, mid-task
                note(f"SIGKILL worker (after {len(accepted)} uploads)")

                def restart(which: list[Process], queue: str, what: str) -> None:
                    time.sleep(2)
                    which[0] = stack.worker([queue])
                    note(f"{what} restarted")

                # Restarted from threads of their own: a worker takes seconds to be ready, and the
                # next blow must land on time.
                restarting = [threading.Thread(target=restart, args=(workers, "multistage", "worker"))]
                restarting[0].start()
                if gpu:
                    while len(accepted) < kill_gpu_at:
                        time.sleep(0.05)
                    gpu[0].kill()  # mid-batch: its held messages come back after the visibility timeout
                    note(f"SIGKILL GPU-queue worker (after {len(accepted)} uploads)")
                    restarting.append(threading.Thread(target=restart, args=(gpu, "mllm", "GPU-queue worker")))
                    restarting[-1].start()
                while len(accepted) < restart_redis_at:
                    time.sleep(0.05)
                broker.kill()
                note(f"SIGKILL {broker_name} (after {len(accepted)} uploads)")
                time.sleep(2)
                broker.start()
                note(f"{broker_name} restarted" + ("" if rabbit else ", empty"))
                if s3 is not None:
                    while len(accepted) < restart_s3_at and any(t.is_alive() for t in threads):
                        time.sleep(0.05)
                    s3.kill()
                    note(f"SIGKILL S3 server (after {len(accepted)} uploads)")
                    time.sleep(2)
                    s3.start()
                    note("S3 server restarted, with its data")
                for thread in restarting:
                    thread.join()

            def client() -> None:
                with httpx.Client(base_url=base, headers=acme.auth, timeout=60) as http:
                    for i in counter:
                        photo, vehicle_id = uploads[i % len(uploads)]
                        fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(vehicle_id)}
                        response = http.post(
                            "/v1/submissions",
                            data=fields | {"pipeline": args.pipeline},
                            files={"photo": ("p.jpg", photo, "image/jpeg")},
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

            def undecided(but: str = "decided") -> int:
                with store.engine.connect() as c:
                    query = sa.text("SELECT count(*) FROM submissions WHERE status NOT IN ('decided', :but)")
                    return int(c.execute(query, {"but": but}).scalar())

            if rabbit is not None:
                # No sweeper: what was published drains from RabbitMQ alone; then one sweep queues
                # the uploads accepted while the node was down (RECEIVED).
                left = undecided("received")
                while left and time.perf_counter() - uploaded < args.drain_timeout:
                    time.sleep(2)
                    left = undecided("received")
                    console.print(f"  {left} published, undecided", end="\r")
                received_later = undecided()
                note(f"published ones drained ({left} undecided); {received_later} RECEIVED while the node was down")
                sweep = Process(["sweeper", "--once"], stack.env, folder / "sweep-once.log").start()
                assert sweep.process is not None
                sweep.process.wait(timeout=120)
                note("compliance sweeper --once")
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
                # Each machine verdict's path (a cascade's), and which pipelines judged its submission.
                paths = c.execute(
                    sa.text(
                        "SELECT v.submission_id, j.data FROM verdicts v JOIN judgments j ON j.id = v.judgment_id "
                        "WHERE v.decided_by = 'machine'"
                    )
                ).all()
                photo_of = dict(c.execute(sa.text("SELECT id, photo_sha256 FROM submissions")).all())
                judged_by: dict[str, set[str]] = {}
                for submission_id, pipeline in c.execute(sa.text("SELECT submission_id, pipeline FROM judgments")):
                    judged_by.setdefault(submission_id, set()).add(pipeline)
            # Every accepted upload's photo is still in the store (the folder, or the S3 server restarted).
            missing_photos = sum(1 for sha in {photo_of[s] for s in set(accepted)} if not store.blobs.exists(sha))
        finally:
            stack.stop()
            store.engine.dispose()
            redis.kill()
            if rabbit is not None:
                rabbit.kill()
            if s3 is not None:
                s3.kill()

    accepted_set = set(accepted)
    with_verdict = {s for s, _, _, _ in machine}
    decided = sum(1 for s in accepted_set if statuses.get(s) == "decided" and s in with_verdict)
    lost = len(accepted_set) - decided + missing_photos
    doubled = sum(1 for *_, n in machine if n > 1) + sum(1 for _, n in judgments if n > 1)
    versions = Counter(s for s, _, _, _ in machine)
    extra_versions = sum(1 for n in versions.values() if n > 1)
    path_of = [(s, ((data or {}).get("provenance", {}).get("cascade") or {}).get("path")) for s, data in paths]
    by_path = Counter(path for _, path in path_of)
    # A cascade decided twice (one verdict per path) or sent to the MLLM although settled is doubled work.
    needless_mllm = sum(1 for s, path in path_of if path == "settled_by_baseline" and "mllm" in judged_by[s])
    if args.pipeline == CASCADE:
        doubled += extra_versions + needless_mllm

    out = Console(width=150)
    for line in events:
        out.print(line)
    gpu_note = f", 1 mllm worker SIGKILLed at {kill_gpu_at}" if uses_mllm else ""
    broker_note = "RabbitMQ (sweeper off)" if rabbit else "Redis"
    table = Table(
        title=f"chaos: {args.n} uploads (pipeline {args.pipeline}), {args.workers} multistage workers{gpu_note}, "
        f"{args.clients} clients, {os.cpu_count()} cores; worker SIGKILLed at {kill_worker_at}, "
        f"{broker_note} restarted at {restart_redis_at}"
        + (f", S3 server restarted at {restart_s3_at}" if s3 is not None else ", photos in a folder"),
        header_style="bold",
    )
    for col in ("accepted", "decided", "photos missing", "lost", "doubled", "upload s", "drain s", "total s"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(accepted_set)),
        str(decided),
        str(missing_photos),
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
    if rabbit is not None:
        detail.add_row("accepted while RabbitMQ was down, queued by one sweep after", str(received_later))
    for why, n in sorted(requeued.items()):
        detail.add_row(f"requeued by the sweeper: {why}", str(n))
    detail.add_row("submissions with verdicts of more than one model version", str(extra_versions))
    for path, n in sorted(by_path.items(), key=lambda item: str(item[0])):
        if path is not None:
            detail.add_row(f"cascade verdicts {path}", str(n))
    if args.pipeline == CASCADE:
        detail.add_row("settled by the baseline, yet judged by the MLLM", str(needless_mllm))
    out.print(detail)
    if lost or doubled:
        sys.exit(1)


def _tiny_checkpoint(folder: Path) -> str:
    from compliance.mllm.tiny import build_tiny_checkpoint

    return str(build_tiny_checkpoint(folder))


def _settled_by_the_baseline(store: Store, acme: Carrier, sample: bytes) -> list[tuple[bytes, int]]:
    """Uploads a cascade's baseline settles: the compliant sample against another vehicle's plate (a
    sure FAIL), and, with the dev set, a dev portrait beside a car whose plate reads surely (a sure PASS)."""
    from compliance.store import registry
    from tests.composites import PLATE, driver_by_vehicle, jpeg
    from tests.conftest import eval_dir

    with store.sessions() as s, s.begin():
        other = registry.add_vehicle(s, carrier_id=acme.id, registered_plate=WRONG_PLATE).id
        clear = registry.add_vehicle(s, carrier_id=acme.id, registered_plate=PLATE).id
    settled = [(sample, other)]
    if (eval_dir() / "manifest.csv").is_file():
        settled.append((jpeg(driver_by_vehicle(eval_dir())), clear))
    return settled


if __name__ == "__main__":
    main()
