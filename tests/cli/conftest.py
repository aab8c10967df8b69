"""The command line's tests share the MLLM tests' tiny random-weight checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.settings import Settings, get_settings
from tests.mllm.conftest import tiny_model_dir, tiny_settings  # noqa: F401 - fixtures for this room


@pytest.fixture()
def tiny_env(isolated_env: Path, tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """The CLI's settings from the environment, with the tiny model's small pixel and token budget."""
    for name in ("mllm_device", "mllm_min_pixels", "mllm_max_pixels", "mllm_max_new_tokens"):
        monkeypatch.setenv(f"COMPLIANCE_{name.upper()}", str(getattr(tiny_settings, name)))
    get_settings.cache_clear()
    yield isolated_env
    get_settings.cache_clear()
