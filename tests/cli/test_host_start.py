"""What a host checks before it starts, each refusal one line: API hosts over an object store share
a session secret, and no host starts on a database that is not at its code's revision (migrated
first only when COMPLIANCE_MIGRATE_ON_START)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from compliance.api.app import create_app
from compliance.settings import Settings, get_settings
from compliance.store.db import SchemaMismatch, current_revision, head_revision, make_engine, upgrade
from tests.cli.helpers import assert_one_line_error, run
from tests.conftest import REPO


@pytest.fixture()
def host_env(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPLIANCE_BROKER_URL", "redis://127.0.0.1:1/0")  # never reached: refused first
    get_settings.cache_clear()
    return isolated_env


def revision(path: Path) -> str | None:
    engine = make_engine(f"sqlite:///{path / 'compliance.db'}")
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def test_an_api_host_over_an_object_store_needs_the_shared_session_secret(
    host_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for url in ("s3://photos/compliance", "S3://photos/compliance"):  # the scheme, however written
        monkeypatch.setenv("COMPLIANCE_BLOB_URL", url)
        get_settings.cache_clear()
        for command in (["api"], ["serve", "--no-mllm"]):
            code, _, stderr = run(*command)
            assert_one_line_error(code, stderr, "COMPLIANCE_SESSION_SECRET", "object store")
    assert revision(host_env) is None  # refused before anything was done


def test_no_host_starts_on_a_database_behind_its_code(host_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{host_env / 'compliance.db'}"
    upgrade(url, "0008_prechecks")  # an earlier revision, as before the migrations step ran
    monkeypatch.setenv("COMPLIANCE_MIGRATE_ON_START", "false")
    get_settings.cache_clear()
    # Hosts, and the admin commands an operator runs beside them (they never migrate behind the step).
    for command in (["api"], ["worker", "--queue", "multistage"], ["sweeper", "--once"], ["registry", "list"]):
        code, _, stderr = run(*command)
        assert_one_line_error(code, stderr, "0008_prechecks", head_revision(), "compliance db upgrade")
    # A worker started without the CLI (``python -m workers.main``, ``celery -A workers.main``) too.
    started = subprocess.run(
        [sys.executable, "-m", "workers.main", "--queue", "multistage"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode != 0 and "0008_prechecks" in started.stderr, started.stderr[-2000:]
    assert "compliance db upgrade" in started.stderr and "Traceback" not in started.stderr
    assert revision(host_env) == "0008_prechecks"  # nothing migrated it
    with pytest.raises(SchemaMismatch, match="compliance db upgrade"):
        create_app(Settings(database_url=url, blob_dir=host_env / "blobs", migrate_on_start=False))
    # Migrate-on-start (the embedded default) brings it to head, and the app then starts.
    create_app(
        Settings(database_url=url, blob_dir=host_env / "blobs", migrate_on_start=True)
    ).state.store.engine.dispose()
    assert revision(host_env) == head_revision()


def test_no_host_starts_on_a_database_a_newer_version_migrated(host_env: Path) -> None:
    url = f"sqlite:///{host_env / 'compliance.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as connection:  # as a newer version's migrations step leaves it
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    engine.dispose()
    for command in (["api"], ["worker", "--queue", "audit"]):  # migrate-on-start is on: it cannot migrate back
        code, _, stderr = run(*command)
        assert_one_line_error(code, stderr, "0099_from_the_future")


def test_serve_clears_its_metrics_folder_and_a_worker_keeps_its_siblings_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from compliance.cli import service

    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"an earlier run's counters")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    assert service._metrics_dir(clear=True) == str(folder)  # serve, which owns its process group
    assert not list(folder.glob("*.db"))  # an earlier run's counters are not added in
    (folder / "counter_7.db").write_bytes(b"a sibling worker's counters")
    service._metrics_dir()  # another worker starting on this host, sharing the folder on purpose
    assert (folder / "counter_7.db").exists()
