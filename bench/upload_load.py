"""Upload acceptance under load: accepted uploads per second and latency (p50/p90/p99), through
the real API (uvicorn, `compliance api`) with real PostgreSQL and Redis on 127.0.0.1.

    PYTHONPATH=. .venv/bin/python bench/upload_load.py [--clients 16] [--requests 2000] [--api-workers 2]

It measures acceptance, not judging: each upload is validated (decoded), its photo stored
content-addressed (fsynced), the submission recorded in PostgreSQL, the task published to Redis
and the submission marked queued; no worker runs. The load generator shares the machine's cores
with the API, the database and the broker. Its client is a bare asyncio HTTP/1.1 one over
keep-alive connections, sending pre-built multipart bodies, so that it costs little CPU itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

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


async def run_load(base: str, token: str, bodies: list[bytes], total: int, clients: int) -> list[tuple[int, float]]:
    url = urlsplit(base)
    results: list[tuple[int, float]] = []
    counter = iter(range(total))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        for i in counter:
            body = bodies[i % len(bodies)]
            head = (
                f"POST /v1/submissions HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                f"Idempotency-Key: load-{uuid.uuid4().hex}\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            start = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status = await _response(reader)
            results.append((status, time.perf_counter() - start))
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--requests", type=int, default=2000, help="measured uploads (after a warm-up)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--api-workers", type=int, default=2, help="uvicorn processes")
    parser.add_argument("--photos", type=Path, nargs="*", default=DEFAULT_PHOTOS, help="folders of real photos")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()

    import httpx

    from compliance.store import Store
    from tests.databases import postgres_schema
    from tests.service.conftest import add_carrier
    from tests.service.stack import RedisServer, ServiceStack

    photos = photos_in(args.photos)
    sizes = [p.stat().st_size for p in photos]
    console = Console(width=150)
    folder = Path(tempfile.mkdtemp(prefix="upload-load-"))
    redis = RedisServer(folder / "redis")
    redis.start()
    with postgres_schema(args.postgres) as url:
        stack = ServiceStack(folder, url, redis)
        store = Store.open(stack.settings)
        acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
        fields = {"driver_id": str(acme.driver_id), "vehicle_id": str(acme.vehicle_id)}
        bodies = [multipart(fields, p) for p in photos]
        try:
            _, base = stack.api(workers=args.api_workers)
            warm = asyncio.run(run_load(base, acme.token, bodies, args.warmup, min(args.clients, 4)))
            assert all(s == 202 for s, _ in warm), Counter(s for s, _ in warm)
            before = stage_means(httpx.get(base + "/metrics").text)
            start = time.perf_counter()
            results = asyncio.run(run_load(base, acme.token, bodies, args.requests, args.clients))
            wall = time.perf_counter() - start
            after = stage_means(httpx.get(base + "/metrics").text)
            depth = int(__import__("redis").Redis(port=redis.port).llen("multistage"))
        finally:
            stack.stop()
            store.engine.dispose()
            redis.kill()

    statuses = Counter(s for s, _ in results)
    accepted = [t * 1000.0 for s, t in results if s == 202]
    table = Table(
        title=(
            f"upload acceptance: {args.requests} uploads of {len(photos)} real photos "
            f"({min(sizes) // 1024}-{max(sizes) // 1024} KB, median {statistics.median(sizes) // 1024} KB), "
            f"{args.clients} clients, {args.api_workers} API process(es), {os.cpu_count()} cores shared"
        ),
        header_style="bold",
    )
    for col in ("accepted", "other", "wall s", "uploads/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "queued in Redis"):
        table.add_column(col, justify="right")
    table.add_row(
        str(len(accepted)),
        str(sum(n for s, n in statuses.items() if s != 202)),
        f"{wall:.1f}",
        f"{len(accepted) / wall:.1f}",
        f"{percentile(accepted, 50):.1f}",
        f"{percentile(accepted, 90):.1f}",
        f"{percentile(accepted, 99):.1f}",
        f"{max(accepted):.1f}",
        str(depth),
    )
    console.print(table)
    stages = Table(title="server-side time per upload stage (mean over the measured uploads)", header_style="bold")
    for col in ("stage", "uploads", "mean ms"):
        stages.add_column(col, justify="right" if col != "stage" else "left")
    for stage in sorted(after):
        n0, m0 = before.get(stage, (0.0, 0.0))
        n1, m1 = after[stage]
        n = n1 - n0
        mean = (m1 * n1 - m0 * n0) / n if n else 0.0
        stages.add_row(stage, f"{n:.0f}", f"{mean:.1f}")
    console.print(stages)


if __name__ == "__main__":
    main()
