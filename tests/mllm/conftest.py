"""A tiny random-weight Qwen2-VL checkpoint built once per session, loaded by the production loader,
and the real dev photos the tests prompt it with."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from compliance.mllm.tiny import build_tiny_checkpoint
from compliance.photos import read_photo_file
from compliance.settings import Settings


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_qwen2_vl"))


@pytest.fixture(scope="session")
def tiny_settings(tiny_model_dir: Path) -> Settings:
    # Small images and few new tokens keep the CPU run short; the code path is the production one.
    return Settings(
        mllm_backend="transformers",
        mllm_model=str(tiny_model_dir),
        mllm_adapter=None,
        mllm_device="cpu",
        mllm_min_pixels=16 * 28 * 28,
        mllm_max_pixels=64 * 28 * 28,
        mllm_max_new_tokens=24,
        mllm_batch_size=4,
    )


def _photos(dev_dir: Path, kind: str, count: int) -> list[np.ndarray]:
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as handle:
        files = [row["file"] for row in csv.DictReader(handle) if row["kind"] == kind][:count]
    return [read_photo_file(dev_dir / f, max_bytes=20 << 20, max_pixels=50_000_000).image for f in files]


@pytest.fixture(scope="session")
def scenes(dev_dir: Path) -> list[np.ndarray]:
    return _photos(dev_dir, "scene", 3)


@pytest.fixture(scope="session")
def faces(dev_dir: Path) -> list[np.ndarray]:
    return _photos(dev_dir, "face", 2)
