"""Fixtures every test room shares: the labelled dev photos and isolated settings."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from compliance.store import db
from compliance.store.blobs import PhotoStore
from tests.databases import postgres_schema
from tests.s3server import S3Server
from tests.service.stack import RedisServer

REPO = Path(__file__).resolve().parents[1]
# ultralytics must neither use the network nor write to the home folder.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI nothing is skipped: a missing PostgreSQL, Redis, Chromium or dev set fails the run, named."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI is set, so this may not be skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """... nor a whole module skipped while it is collected (``pytest.importorskip`` at its top)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI is set, so this may not be skipped: {reason}"


def eval_dir() -> Path:
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", REPO.parent / "shared" / "eval" / "dev"))


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    path = eval_dir()
    if not (path / "manifest.csv").is_file():
        pytest.skip(
            f"the labelled dev set is missing at {path} (set COMPLIANCE_EVAL_DIR to the shared/eval/dev folder)"
        )
    return path


@pytest.fixture()
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh SQLite database and blob folder for one test, through the real settings."""
    monkeypatch.setenv("COMPLIANCE_DATABASE_URL", f"sqlite:///{tmp_path / 'compliance.db'}")
    monkeypatch.setenv("COMPLIANCE_BLOB_DIR", str(tmp_path / "blobs"))
    from compliance.settings import get_settings

    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


POSTGRES_URL = os.environ.get("COMPLIANCE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL can't be used, or None when it can."""
    try:
        engine = sa.create_engine(db.database_url(POSTGRES_URL), connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect means skip, saying why
        return f"PostgreSQL not reachable at {POSTGRES_URL} (set COMPLIANCE_TEST_POSTGRES_URL): {exc}"
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema first on the
    search_path, dropped afterwards, so tests never see each other's tables."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_schema(POSTGRES_URL, "store_test") as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A private SeaweedFS S3 server for the session (data, logs and sockets in a temporary folder),
    stopped by its process id. Skips, naming what is missing, when it cannot start (under CI: fails)."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in server.environment().items():
                env.setenv(name, value)  # the standard AWS variables, as obstore and boto3 read them
            yield server
    finally:
        server.kill()


def s3_blob_url(request: pytest.FixtureRequest) -> str:
    """A fresh prefix in the session's S3 server, so tests never see each other's photos."""
    server: S3Server = request.getfixturevalue("s3_server")
    return server.url(f"t-{uuid.uuid4().hex[:12]}")


def folder_blob_url(tmp_path: Path) -> str:
    return (tmp_path / "blobs").as_uri()


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def blob_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's photos live: a fresh local folder, or a fresh prefix of the S3 server."""
    return folder_blob_url(tmp_path) if request.param == "folder" else s3_blob_url(request)


def paired_blob_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> str:
    """For the rooms that already run on both databases (the API, the dashboard): the folder beside
    SQLite (the embedded default) and S3 beside PostgreSQL (production), so both photo stores are
    covered without doubling the room."""
    return s3_blob_url(request) if database_url.startswith("postgresql") else folder_blob_url(tmp_path)


def photo_names(photos: PhotoStore) -> set[str]:
    """Every name in a photo store (folder or bucket): photos, temporary files, copies set aside."""
    names: set[str] = set()
    for prefix in photos.prefixes():
        found = photos.listing(prefix)
        names |= {b.name for b in found.blobs} | {t.name for t in found.temporary}
        names |= {f".orphan-{a.name}" for a in found.aside}
    return names


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private Redis for the session (``tests.service.stack.RedisServer``: keeps nothing on disk),
    for every room whose code counts or queues in Redis."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()
