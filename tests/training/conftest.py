"""The training room's tests share the MLLM tests' tiny model and stored fixtures."""

from tests.mllm.conftest import (  # noqa: F401
    multistage,
    store,
    store_settings,
    tiny_mllm,
    tiny_model_dir,
    tiny_settings,
)
