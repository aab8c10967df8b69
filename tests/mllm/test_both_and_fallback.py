"""The MLLM beside the baseline, with real judgments from both: the tiny random-weight MLLM against
the real multistage pipeline on the compliant sample photo (which the baseline alone passes).

"both" must turn every field the two disagree on into a REVIEW naming the field; the fallback must
hand an invalid or failed MLLM answer to the baseline and say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compliance.inspection import decide
from compliance.judgments import Judgments
from compliance.mllm.pipeline import MllmPipeline
from compliance.pipeline import Pipeline
from compliance.pipelines import FallbackPipeline, get_pipeline, get_pipelines
from compliance.settings import Settings
from compliance.verdicts import Outcome, ReasonCode, Verdict
from tests.mllm.conftest import sample

PLATE = "皖AUJ299"
Photos = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def photos() -> Photos:
    return sample("a_by_car_wanAUJ299.jpg").image, sample("licence_a.jpg").image


def verdict_of(judgments: Judgments, second: Judgments | None = None) -> Verdict:
    return decide(
        judgments,
        thresholds=Settings().thresholds,
        registered_plates=[PLATE],
        licence_given=True,
        second_opinion=second,
    )


def test_both_reviews_every_field_the_real_pipelines_disagree_on(
    tiny_mllm: MllmPipeline, multistage: Pipeline, photos: Photos
) -> None:
    scene, licence = photos
    theirs = multistage.judge(scene, licence)
    mine = tiny_mllm.judge(scene, licence)
    assert verdict_of(theirs).outcome is Outcome.PASS  # the baseline alone passes this photo

    verdict = verdict_of(mine, theirs)

    assert verdict.outcome is Outcome.REVIEW
    # Random weights give no usable answer: every compared field is unknown on the MLLM's side and
    # known on the baseline's, so each is a disagreement with its own reason.
    assert {
        ReasonCode.PIPELINES_DISAGREE_PERSON,
        ReasonCode.PIPELINES_DISAGREE_VEHICLE,
        ReasonCode.PIPELINES_DISAGREE_PLATE,
        ReasonCode.PIPELINES_DISAGREE_FACE,
    } <= set(verdict.reasons)
    # The MLLM's answer is well formed (constrained) and unsure: a REVIEW of its own.
    assert ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons
    assert ReasonCode.INVALID_MODEL_OUTPUT not in verdict.reasons
    plate = next(r for r in verdict.results if r.check == "agreement_plate")
    assert plate.detail == f"mllm: plate unread; multistage: plate {PLATE}"
    provenance = verdict.judgments.provenance
    assert provenance.pipeline == "both" and provenance.pipelines == ("mllm", "multistage")
    assert set(provenance.models) == set(mine.provenance.models) | set(theirs.provenance.models)
    assert provenance.raw_output == mine.provenance.raw_output


def test_fallback_on_an_invalid_answer_judges_with_the_baseline_and_says_so(
    free_mllm: MllmPipeline, multistage: Pipeline, photos: Photos
) -> None:
    scene, licence = photos
    tiny_mllm = free_mllm  # decoding freely, the noise is invalid output
    judgments = FallbackPipeline(tiny_mllm, multistage).judge(scene, licence)

    provenance = judgments.provenance
    assert provenance.pipeline == "multistage"
    assert provenance.fallback is not None and provenance.fallback.pipeline == "mllm"
    assert provenance.fallback.reason.startswith("invalid answer: ")
    # The MLLM's own answer is kept (the rejected side of a DPO pair), and its model version.
    said = tiny_mllm.judge(scene, licence).provenance.raw_output
    assert said and provenance.fallback.raw_output == said
    assert set(tiny_mllm.models) <= set(provenance.models)
    assert judgments.plate.text == PLATE

    verdict = verdict_of(judgments)
    assert verdict.outcome is Outcome.PASS
    assert verdict.reasons == (ReasonCode.MLLM_FALLBACK,)
    declared = next(r for r in verdict.results if r.check == "fallback")
    assert "because mllm failed: invalid answer" in declared.detail


def test_fallback_on_an_unsure_answer_judges_with_the_baseline_and_says_so(
    tiny_mllm: MllmPipeline, multistage: Pipeline, photos: Photos
) -> None:
    judgments = FallbackPipeline(tiny_mllm, multistage).judge(*photos)
    fallback = judgments.provenance.fallback
    assert fallback is not None and fallback.reason.startswith("unsure answer: ")
    assert "at probability" in fallback.reason
    assert verdict_of(judgments).reasons == (ReasonCode.MLLM_FALLBACK,)


def test_fallback_on_a_failed_backend(tmp_path: Path, photos: Photos) -> None:
    settings = Settings(mllm_model=str(tmp_path / "not-downloaded"), mllm_device="cpu", mllm_fallback=True)
    pipeline = get_pipeline("mllm", settings)
    assert isinstance(pipeline, FallbackPipeline)
    assert pipeline.fallback is get_pipeline("multistage", settings)  # the process's one baseline

    judgments = pipeline.judge(*photos)

    assert judgments.provenance.fallback is not None
    assert judgments.provenance.fallback.reason.startswith("MllmError: ")
    assert "not on this machine" in judgments.provenance.fallback.reason
    assert judgments.provenance.fallback.raw_output is None
    assert ReasonCode.MLLM_FALLBACK in verdict_of(judgments).reasons


def test_without_the_setting_there_is_no_fallback(tiny_settings: Settings, photos: Photos) -> None:
    pipeline = get_pipeline("mllm", tiny_settings)
    assert isinstance(pipeline, MllmPipeline)
    verdict = verdict_of(pipeline.judge(*photos))
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons


def test_both_never_falls_back(tiny_settings: Settings) -> None:
    engines = get_pipelines("both", tiny_settings.model_copy(update={"mllm_fallback": True}))
    assert list(engines) == ["mllm", "multistage"]
    assert isinstance(engines["mllm"], MllmPipeline)
    with pytest.raises(ValueError, match="unknown pipeline 'magic'"):
        get_pipelines("magic", tiny_settings)
