"""Two pipelines' judgments compared field by field ("both"), and the MLLM fallback declared.

The judgments here are constructed: the point is the check logic. Real judgments from the two
pipelines go through the same checks in tests/mllm/test_both_and_fallback.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from compliance.inspection import decide
from compliance.judgments import Answer, FaceMatch, Fallback, Judgments, PlateReading, Provenance
from compliance.settings import Thresholds
from compliance.verdicts import Outcome, ReasonCode, Verdict
from tests.checks.test_policy import good_judgments

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def judged(pipeline: str, models: dict[str, str], **changes: object) -> Judgments:
    j = good_judgments(**changes)
    return j.model_copy(
        update={
            "provenance": Provenance(
                pipeline=pipeline, models=models, latency_ms={"total": 10.0}, raw_output=None, output_errors=()
            )
        }
    )


def mllm(**changes: object) -> Judgments:
    j = judged("mllm", {"mllm:transformers:qwen": "abc"}, **changes)
    # A yes/no model gives no similarity.
    return j.model_copy(update={"face": j.face.model_copy(update={"similarity": None})})


def multistage(**changes: object) -> Judgments:
    return judged("multistage", {"yolox": "nano", "sface": "int8"}, **changes)


def both(first: Judgments, second: Judgments | None) -> Verdict:
    return decide(
        first,
        thresholds=Thresholds(),
        registered_plates=["皖A195K9"],
        licence_given=True,
        driver_id=7,
        submitted_at=NOW,
        second_opinion=second,
    )


def test_agreeing_pipelines_pass_and_the_verdict_names_both() -> None:
    verdict = both(mllm(), multistage())
    assert verdict.outcome is Outcome.PASS, verdict.reasons
    provenance = verdict.judgments.provenance
    assert provenance.pipeline == "both" and provenance.pipelines == ("mllm", "multistage")
    assert provenance.models == {"mllm:transformers:qwen": "abc", "yolox": "nano", "sface": "int8"}
    assert provenance.latency_ms == {"mllm.total": 10.0, "multistage.total": 10.0}
    agreement = {r.check: r for r in verdict.results if r.check.startswith("agreement_")}
    assert set(agreement) == {"agreement_person", "agreement_vehicle", "agreement_plate", "agreement_face"}
    assert all(r.outcome is Outcome.PASS for r in agreement.values())
    assert "multistage similarity 0.610" in agreement["agreement_face"].detail


def test_one_pipeline_alone_gets_no_agreement_checks() -> None:
    verdict = both(multistage(), None)
    assert verdict.outcome is Outcome.PASS
    assert not [r for r in verdict.results if r.check.startswith("agreement_")]
    assert verdict.judgments.provenance.pipeline == "multistage"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"plate": PlateReading(text="皖A195K8", confidence=0.97, known_format=Answer.YES)}, "PLATE"),
        # Unread on one side is not agreement: the second pipeline did not confirm the plate.
        ({"plate": PlateReading()}, "PLATE"),
        ({"person": good_judgments().person.model_copy(update={"present": Answer.UNKNOWN})}, "PERSON"),
        ({"vehicle": good_judgments().vehicle.model_copy(update={"present": Answer.NO})}, "VEHICLE"),
        (
            {"face": FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, similarity=0.2, same_person=Answer.NO)},
            "FACE",
        ),
    ],
)
def test_each_disagreement_is_a_review_naming_its_field(changes: dict[str, object], reason: str) -> None:
    # The MLLM's own values would pass; only the second opinion differs.
    verdict = both(mllm(), multistage(**changes))
    code = ReasonCode(f"PIPELINES_DISAGREE_{reason}")
    assert code in verdict.reasons
    assert verdict.outcome is Outcome.REVIEW
    disagreeing = [r for r in verdict.results if r.check.startswith("agreement_") and r.outcome is Outcome.REVIEW]
    assert [r.reason for r in disagreeing] == [code]
    assert disagreeing[0].detail.startswith("mllm: ") and "; multistage: " in disagreeing[0].detail


def test_several_disagreements_each_get_their_reason() -> None:
    other = multistage(plate=PlateReading(text="京B00001", confidence=0.9, known_format=Answer.YES))
    other = other.model_copy(update={"face": other.face.model_copy(update={"same_person": Answer.NO})})
    verdict = both(mllm(), other)
    assert {ReasonCode.PIPELINES_DISAGREE_PLATE, ReasonCode.PIPELINES_DISAGREE_FACE} <= set(verdict.reasons)


def test_the_second_opinions_invalid_output_is_reported_too() -> None:
    broken = multistage()
    broken = broken.model_copy(
        update={"provenance": broken.provenance.model_copy(update={"output_errors": ("kind: invalid value 'boat'",)})}
    )
    verdict = both(mllm(), broken)
    assert verdict.outcome is Outcome.REVIEW
    result = next(r for r in verdict.results if r.check == "model_output")
    assert result.reason is ReasonCode.INVALID_MODEL_OUTPUT
    assert result.detail == "multistage: kind: invalid value 'boat'"


def test_a_fallback_is_declared_in_the_verdict_not_hidden() -> None:
    fell_back = multistage()
    fell_back = fell_back.model_copy(
        update={
            "provenance": fell_back.provenance.model_copy(
                update={"fallback": Fallback(pipeline="mllm", reason="MllmError: server down", raw_output=None)}
            )
        }
    )
    verdict = both(fell_back, None)
    # The baseline's judgments decide (that is what the setting asks for), and the verdict says why.
    assert verdict.outcome is Outcome.PASS
    assert ReasonCode.MLLM_FALLBACK in verdict.reasons
    result = next(r for r in verdict.results if r.check == "fallback")
    assert "multistage" in result.detail and "mllm failed: MllmError: server down" in result.detail
    assert not [r for r in both(multistage(), None).results if r.check == "fallback"]
