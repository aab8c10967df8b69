"""A model pulled from ModelScope is judged with by its model id, as one pulled from the Hugging Face
Hub is: the tiny checkpoint laid out in ModelScope's cache (MODELSCOPE_CACHE, as modelscope reads
it), loaded by the production loader, judging a real photo. No modelscope package is needed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compliance.inspection import decide
from compliance.judgments import Answer
from compliance.mllm.backends.base import MllmError
from compliance.mllm.backends.transformers import TransformersBackend
from compliance.mllm.pipeline import MllmPipeline
from compliance.settings import Settings
from compliance.verdicts import Outcome, ReasonCode
from tests.mllm.conftest import sample

MODEL_ID = "compliance-tests/Tiny-Qwen2-VL"


@pytest.fixture()
def modelscope_cache(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny checkpoint where modelscope (1.38 and later) downloads MODEL_ID at its default revision."""
    root = tmp_path / "modelscope"
    shutil.copytree(tiny_model_dir, root / "models" / "compliance-tests--Tiny-Qwen2-VL" / "snapshots" / "master")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(root))
    return root


def test_a_modelscope_download_is_loaded_by_model_id_and_judges(
    modelscope_cache: Path, tiny_settings: Settings
) -> None:
    settings = tiny_settings.model_copy(update={"mllm_model": MODEL_ID, "model_source": "modelscope"})
    pipeline = MllmPipeline(TransformersBackend(settings), settings)

    judgments = pipeline.judge(sample("a_by_car_wanAUJ299.jpg").image, sample("licence_a.jpg").image)

    assert pipeline.backend.version.startswith("master+sha256:")
    assert list(judgments.provenance.models.values()) == [pipeline.backend.version]
    assert MODEL_ID in next(iter(judgments.provenance.models))
    # Random weights: the answer is noise, which never passes.
    assert judgments.provenance.raw_output
    assert judgments.face.same_person is Answer.UNKNOWN
    verdict = decide(judgments, thresholds=settings.thresholds, registered_plates=["皖AUJ299"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons


def test_the_same_model_id_is_not_looked_for_in_the_other_source(
    modelscope_cache: Path, tiny_settings: Settings
) -> None:
    settings = tiny_settings.model_copy(update={"mllm_model": MODEL_ID, "model_source": "huggingface"})
    with pytest.raises(MllmError, match=r"not on this machine \(in the Hugging Face cache\)"):
        TransformersBackend(settings).load()
