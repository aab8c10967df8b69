"""Fixtures every test room shares: the labelled dev photos and isolated settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ultralytics must neither use the network nor write to the home folder.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(REPO / ".yolo"))


def eval_dir() -> Path:
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", REPO.parent / "shared" / "eval" / "dev"))


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    path = eval_dir()
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"labelled dev photos not found at {path} (set COMPLIANCE_EVAL_DIR to the shared/eval/dev folder)")
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
