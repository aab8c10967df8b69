"""A tiny random-weight Qwen2-VL checkpoint built once per session, loaded by the production loader,
and the real dev photos the tests prompt it with."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from compliance.demo import samples_dir
from compliance.mllm.backends.transformers import TransformersBackend
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.tiny import build_tiny_checkpoint
from compliance.photos import Photo, read_photo_file
from compliance.pipeline import Pipeline
from compliance.pipelines import get_pipeline
from compliance.settings import Settings
from compliance.store import Store, registry


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


@pytest.fixture(scope="session")
def multistage() -> Pipeline:
    """The real baseline, to compare the MLLM with and fall back on."""
    return get_pipeline("multistage", Settings())


@pytest.fixture(scope="session")
def tiny_mllm(tiny_settings: Settings) -> MllmPipeline:
    """Constrained to the answer's schema, as in production: noise that parses, at low probability."""
    return MllmPipeline(TransformersBackend(tiny_settings), tiny_settings)


@pytest.fixture(scope="session")
def free_settings(tiny_settings: Settings) -> Settings:
    return tiny_settings.model_copy(update={"mllm_constrained": False})


@pytest.fixture(scope="session")
def free_mllm(free_settings: Settings) -> MllmPipeline:
    """Decoding freely: noise that is invalid output (no JSON, cut off at the token limit)."""
    return MllmPipeline(TransformersBackend(free_settings), free_settings)


def sample(name: str) -> Photo:
    return read_photo_file(samples_dir() / name, max_bytes=20 << 20, max_pixels=50_000_000)


@pytest.fixture()
def store_settings(database_url: str, tmp_path: Path, tiny_settings: Settings) -> Settings:
    return tiny_settings.model_copy(update={"database_url": database_url, "blob_dir": tmp_path / "blobs"})


@pytest.fixture()
def store(store_settings: Settings) -> Store:
    """Carrier ACME with the sample vehicle and a driver whose licence photo is on record; carrier
    OTHER with the same, for filters."""
    store = Store.open(store_settings)
    with store.sessions() as s, s.begin():
        for code in ("ACME", "OTHER"):
            carrier = registry.add_carrier(s, code=code, name=code)
            registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299")
            sha = store.blobs.put((samples_dir() / "licence_a.jpg").read_bytes())
            registry.add_driver(s, carrier_id=carrier.id, name="A", external_ref="A-1", licence_sha256=sha)
    return store
