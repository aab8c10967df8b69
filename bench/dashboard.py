"""Server time of the dashboard's overview and submissions pages at 100,000 submissions, on SQLite
and PostgreSQL (target: 300 ms or less).

    .venv/bin/python bench/dashboard.py [--submissions 100000] [--runs 15] [--databases sqlite,postgresql]

Each database is fresh (a SQLite file in a temporary folder; a new schema in the PostgreSQL test
database, dropped afterwards), migrated to head and filled by ``compliance demo-data`` (SYNTHETIC
history over 180 days). The real app (``create_app``) is served by uvicorn on a free port and read
over HTTP by a signed-in user; server time is the app's own ``Server-Timing`` header (from the
request's arrival to its response's first byte), the round trip is measured by the client too.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.databases: the same scratch schemas the tests use

from compliance.api.app import create_app  # noqa: E402
from compliance.demo_data import generate  # noqa: E402
from compliance.settings import Settings  # noqa: E402
from compliance.store import (  # noqa: E402
    Store,
    users,
)
from compliance.store.models import Carrier, Role  # noqa: E402

POSTGRES_URL = os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_MS = 300.0
PASSWORD = "bench-password-not-secret"
console = Console(stderr=True)


@contextmanager
def sqlite_database() -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        yield f"sqlite:///{folder}/bench.db", Path(folder)


@contextmanager
def postgres_database() -> Iterator[tuple[str, Path]]:
    from tests.databases import postgres_schema

    with (
        postgres_schema(POSTGRES_URL, "bench_dashboard") as url,
        tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder,
    ):
        yield url, Path(folder)


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def signed_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60, follow_redirects=True)
    page = client.get("/dashboard/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no form token on the sign-in page"
    done = client.post(
        "/dashboard/login", data={"username": username, "password": PASSWORD, "csrf_token": token[1], "next": "/"}
    )
    done.raise_for_status()
    return client


def server_ms(response: httpx.Response) -> float:
    timing = re.search(r"dur=([0-9.]+)", response.headers.get("server-timing", ""))
    assert timing, f"no Server-Timing on {response.request.url}"
    return float(timing[1])


def measure(client: httpx.Client, path: str, runs: int) -> tuple[list[float], list[float]]:
    for _ in range(2):  # warm-up: compiled statements, the database's caches
        client.get(path).raise_for_status()
    server, round_trip = [], []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(path)
        round_trip.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        server.append(server_ms(response))
    return server, round_trip


def deep_page(client: httpx.Client, query: str, pages: int) -> str:
    """The path of page ``pages`` of the list, reached by following the next-page links."""
    path = f"/dashboard/submissions?{query}"
    for _ in range(pages - 1):
        found = re.search(r'rel="next" href="([^"]+)"', client.get(path).text)
        if not found:
            break
        path = found[1].replace("&amp;", "&")
    return path


def bench_one(name: str, url: str, folder: Path, submissions: int, runs: int, table: Table) -> None:
    settings = Settings(database_url=url, blob_dir=folder / "blobs", session_secret_file=folder / "session-secret")
    store = Store.open(settings)
    started = time.perf_counter()
    summary = generate(store, settings, submissions=submissions, console=console)
    console.print(f"{name}: {summary.describe()} ({time.perf_counter() - started:.0f} s)")
    with store.sessions() as s, s.begin():
        users.add_user(s, username="bench.admin", password=PASSWORD, role=Role.ADMIN, carrier_id=None)
        east = s.scalar(sa.select(Carrier.id).where(Carrier.code == "SYN-EAST"))
        users.add_user(s, username="bench.east", password=PASSWORD, role=Role.VIEWER, carrier_id=east)
    if store.engine.dialect.name == "postgresql":
        # After a bulk load, as autovacuum would shortly: planner statistics and the visibility map.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE"))
    store.engine.dispose()

    with served(settings) as base:
        admin, east = signed_in(base, "bench.admin"), signed_in(base, "bench.east")
        cases = [
            ("overview, last 30 days, all carriers", admin, "/dashboard/"),
            ("overview, all 180 days, all carriers", admin, "/dashboard/?since=2000-01-01&until=2100-01-01"),
            ("overview, all 180 days, one carrier (its user)", east, "/dashboard/?since=2000-01-01&until=2100-01-01"),
            ("submissions, first page", admin, "/dashboard/submissions"),
            ("submissions, page 40 (keyset)", admin, deep_page(admin, "", 40)),
            ("submissions, FAIL sorted by site", admin, "/dashboard/submissions?outcome=FAIL&sort=site&order=asc"),
            ("submissions, reason PLATE_UNREADABLE", admin, "/dashboard/submissions?reason=PLATE_UNREADABLE"),
            ("submissions, one carrier (its user)", east, "/dashboard/submissions"),
            ("review queue, next photo", admin, "/dashboard/review"),
        ]
        for label, client, path in cases:
            server, round_trip = measure(client, path, runs)
            median = statistics.median(server)
            p95 = sorted(server)[max(0, round(0.95 * len(server)) - 1)]
            verdict = "[green]ok[/]" if p95 <= TARGET_MS else "[red]over[/]"
            table.add_row(
                name,
                label,
                f"{median:.0f}",
                f"{p95:.0f}",
                f"{max(server):.0f}",
                f"{statistics.median(round_trip):.0f}",
                verdict,
            )
        admin.close()
        east.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()

    table = Table(
        title=f"dashboard server time at {args.submissions:,} SYNTHETIC submissions, {args.runs} runs each, "
        f"{os.cpu_count()} CPU cores (target p95 ≤ {TARGET_MS:.0f} ms)"
    )
    for column in ("database", "page", "median ms", "p95 ms", "max ms", "round trip ms", "target"):
        table.add_column(column, justify="left" if column in ("database", "page") else "right")
    databases = {"sqlite": sqlite_database, "postgresql": postgres_database}
    for name in args.databases.split(","):
        with databases[name.strip()]() as (url, folder):
            bench_one(name.strip(), url, folder, args.submissions, args.runs, table)
    Console(width=170).print(table)


if __name__ == "__main__":
    main()
