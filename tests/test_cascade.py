"""The cascade's rule (``compliance.cascade.settle``) and decision (``inspection.decide_cascade``):
on judgments built to sit just either side of each threshold, and on real photos judged by the real
baseline (dev photos composed into a driver beside a car, and the bundled sample)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from compliance.cascade import settle
from compliance.checks import PriorPhoto
from compliance.demo import samples_dir
from compliance.inspection import decide, decide_cascade
from compliance.judgments import (
    Answer,
    Box,
    FaceMatch,
    Judgments,
    PersonJudgment,
    PlateReading,
    Provenance,
    Quality,
    VehicleJudgment,
    VehicleKind,
)
from compliance.photos import read_photo_file
from compliance.pipeline import Pipeline
from compliance.pipelines import get_pipeline
from compliance.settings import Settings
from compliance.verdicts import Outcome, ReasonCode, Verdict
from tests.composites import LICENCE, PLATE, VEHICLE, dev_image, driver_by_vehicle

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
SETTINGS = Settings()
THRESHOLDS = SETTINGS.thresholds
REGISTERED = "皖A195K9"


def box(score: float, height: float = 80.0) -> Box:
    return Box(x1=0, y1=0, x2=height, y2=height, score=score)


def reading(
    text: str = REGISTERED, chars: tuple[float, ...] | None = (0.99,) * 7, confidence: float = 0.99
) -> PlateReading:
    return PlateReading(
        text=text,
        confidence=confidence,
        char_confidences=chars,
        known_format=Answer.YES,
        plate_type="standard",
    )


def face(similarity: float, same: Answer, px: float = 80.0) -> FaceMatch:
    return FaceMatch(
        scene_face=Answer.YES,
        licence_face=Answer.YES,
        similarity=similarity,
        same_person=same,
        scene_box=box(0.95, px),
        licence_box=box(0.95, px),
    )


def sure(**changes: object) -> Judgments:
    """What the baseline says of a clear, compliant photo of driver 7 by 皖A195K9, every judgment sure."""
    base = Judgments(
        person=PersonJudgment(present=Answer.YES, count=1, boxes=(box(0.90),)),
        vehicle=VehicleJudgment(present=Answer.YES, kind=VehicleKind.TRUCK, boxes=(box(0.80), box(0.35))),
        plate=reading(),
        face=face(0.60, Answer.YES),
        quality=Quality(blur=250.0, brightness=120.0, width=1280, height=960),
        provenance=Provenance(pipeline="multistage", models={"yolox": "1"}),
    )
    return base.model_copy(update=changes)


def decided(judgments: Judgments, **context: object) -> Verdict:
    return decide(
        judgments,
        thresholds=THRESHOLDS,
        registered_plates=context.pop("registered", [REGISTERED]),  # type: ignore[arg-type]
        licence_given=True,
        driver_id=7,
        submitted_at=NOW,
        **context,  # type: ignore[arg-type]
    )


def test_a_pass_resting_on_sure_judgments_is_settled_and_says_why() -> None:
    verdict = decided(sure())
    assert verdict.outcome is Outcome.PASS
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert settlement.settled and settlement.unsure == ()
    # The best box counts (0.80), not a weak second vehicle (0.35).
    for said in ("person score 0.90 ≥ 0.50", "vehicle score 0.80 ≥ 0.50", f"plate {REGISTERED} read at 0.99"):
        assert said in settlement.reason
    assert "face similarity 0.600 ≥ 0.393" in settlement.reason
    assert settlement.step.path == "settled_by_baseline" and settlement.step.reason == settlement.reason


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"person": PersonJudgment(present=Answer.YES, count=1, boxes=(box(0.49),))}, "person", "0.49 < 0.50"),
        ({"vehicle": VehicleJudgment(present=Answer.YES, boxes=(box(0.499),))}, "vehicle", "0.50 < 0.50"),
        # A vehicle inferred from a plate mounted in the scene has no detector score.
        ({"vehicle": VehicleJudgment(present=Answer.YES)}, "vehicle", "without a detector box"),
        (
            {"plate": reading(chars=(0.99, 0.99, 0.94, 0.99, 0.99, 0.99, 0.99))},
            "plate",
            "character 3 (1) read with confidence 0.94 < 0.95",
        ),
        ({"plate": reading(chars=None)}, "plate", "no confidence for each character"),
        ({"face": face(0.39, Answer.YES)}, "face", "0.390 < 0.393"),  # same person from 0.363
        # The smaller face under 56 px: the band is the small faces' (0.24, 0.38), so 0.40 is in the margin.
        ({"face": face(0.40, Answer.YES, px=50.0)}, "face", "0.400 < 0.410"),
    ],
)
def test_a_pass_with_one_unsure_judgment_is_escalated_naming_it(
    changes: dict[str, object], field: str, words: str
) -> None:
    verdict = decided(sure(**changes))
    assert verdict.outcome is Outcome.PASS  # the baseline alone would have passed it
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert not settlement.settled
    assert settlement.unsure == (field,)
    assert settlement.reason.startswith(f"PASS, but not sure of the {field}: ") and words in settlement.reason
    assert settlement.step.path == "escalated" and settlement.step.unsure == (field,)


def test_a_small_face_clear_of_its_own_band_is_settled() -> None:
    assert settle(decided(sure(face=face(0.42, Answer.YES, px=50.0))), THRESHOLDS, SETTINGS).settled


def test_a_fail_rests_on_its_failing_judgments_only() -> None:
    # Read surely as another plate: a FAIL, whatever the face (here too close to call: a REVIEW check).
    verdict = decided(sure(face=face(0.33, Answer.UNKNOWN)), registered=["京A12345"])
    assert verdict.outcome is Outcome.FAIL
    assert set(verdict.reasons) == {ReasonCode.PLATE_MISMATCH, ReasonCode.FACE_UNCERTAIN}
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert settlement.settled and settlement.reason.startswith("FAIL: plate 皖A195K9")

    # Another man, far below the band: settled. Just below it (within the margin): escalated.
    assert settle(decided(sure(face=face(0.10, Answer.NO))), THRESHOLDS, SETTINGS).settled
    near = settle(decided(sure(face=face(0.28, Answer.NO))), THRESHOLDS, SETTINGS)
    assert not near.settled and near.unsure == ("face",) and "0.280 ≥ 0.270 (another person)" in near.reason


def test_an_absence_is_never_sure() -> None:
    verdict = decided(sure(person=PersonJudgment(present=Answer.NO, count=0)))
    assert verdict.outcome is Outcome.FAIL and ReasonCode.PERSON_MISSING in verdict.reasons
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert not settlement.settled and settlement.unsure == ("person",)
    assert "an absence has no detector score" in settlement.reason


def test_a_fail_no_model_could_overturn_is_settled() -> None:
    # The same photo sent before for another driver: no model judgment behind the FAIL.
    prior = PriorPhoto("earlier", driver_id=8, submitted_at=NOW - timedelta(days=1), distance=0)
    verdict = decided(sure(vehicle=VehicleJudgment(present=Answer.YES)), similar_photos=[prior])
    assert verdict.outcome is Outcome.FAIL and verdict.reasons == (ReasonCode.DUPLICATE_PHOTO,)
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert settlement.settled and "resting on no model judgment" in settlement.reason


def test_a_review_resting_on_a_model_judgment_is_never_settled() -> None:
    settlement = settle(decided(sure(face=face(0.33, Answer.UNKNOWN))), THRESHOLDS, SETTINGS)
    assert not settlement.settled and settlement.reason == "the baseline's verdict is REVIEW (FACE_UNCERTAIN)"


def test_a_review_no_model_could_lift_is_settled_where_every_judgment_is_sure() -> None:
    """A blurred photo of a clear case: a REVIEW the MLLM could not make a PASS, so no GPU is spent;
    with an unsure judgment beside it, the MLLM still looks."""
    blurred = Quality(blur=5.0, brightness=120.0, width=1280, height=960)
    verdict = decided(sure(quality=blurred))
    assert verdict.outcome is Outcome.REVIEW and verdict.reasons == (ReasonCode.LOW_QUALITY_BLUR,)
    settlement = settle(verdict, THRESHOLDS, SETTINGS)
    assert settlement.settled and settlement.reason.startswith("REVIEW: person score 0.90")
    unsure = decided(sure(quality=blurred, person=PersonJudgment(present=Answer.YES, count=1, boxes=(box(0.4),))))
    assert not settle(unsure, THRESHOLDS, SETTINGS).settled


def test_the_margins_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    weak_car = decided(sure(vehicle=VehicleJudgment(present=Answer.YES, boxes=(box(0.37),))))
    assert settle(weak_car, THRESHOLDS, SETTINGS).unsure == ("vehicle",)
    monkeypatch.setenv("COMPLIANCE_CASCADE_DETECTOR_MARGIN", "0.05")
    assert settle(weak_car, THRESHOLDS, Settings()).settled  # 0.37 >= 0.30 + 0.05
    monkeypatch.setenv("COMPLIANCE_CASCADE_FACE_MARGIN", "0.3")
    monkeypatch.setenv("COMPLIANCE_CASCADE_PLATE_MARGIN", "0.05")
    # The face's 0.600 < 0.363 + 0.3; the characters' 0.99 < 0.95 + 0.05.
    assert settle(decided(sure()), THRESHOLDS, Settings()).unsure == ("plate", "face")
    # The reading's own confidence takes the plate margin too: 0.82 passes (>= 0.80), not surely.
    unsure_reading = settle(decided(sure(plate=reading(confidence=0.82))), THRESHOLDS, Settings())
    assert "read with confidence 0.82 < 0.85" in unsure_reading.reason


def cascade_of(baseline: Judgments, mllm: Judgments | None, **context: object) -> Verdict | None:
    return decide_cascade(
        baseline,
        mllm,
        thresholds=THRESHOLDS,
        settings=SETTINGS,
        registered_plates=[REGISTERED],
        licence_given=True,
        driver_id=7,
        submitted_at=NOW,
        **context,  # type: ignore[arg-type]
    )


def test_a_settled_cascade_is_the_baselines_verdict_and_says_so() -> None:
    verdict = cascade_of(sure(), None)  # the MLLM is never asked
    alone = decided(sure())
    assert verdict is not None and (verdict.outcome, verdict.results) == (alone.outcome, alone.results)
    provenance = verdict.judgments.provenance
    assert provenance.pipeline == "cascade" and provenance.pipelines == ("multistage",)
    assert provenance.cascade is not None and provenance.cascade.path == "settled_by_baseline"


def test_an_escalated_cascade_waits_for_the_mllm_then_decides_as_both() -> None:
    baseline = sure(vehicle=VehicleJudgment(present=Answer.YES, boxes=(box(0.37),)))
    assert cascade_of(baseline, None) is None
    mllm = sure(
        plate=reading(text="皖A195K8"),
        face=FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, same_person=Answer.YES),
        provenance=Provenance(pipeline="mllm", models={"qwen": "tiny"}),
    )
    verdict = cascade_of(baseline, mllm)
    both = decided(mllm, second_opinion=baseline)
    assert verdict is not None
    assert (verdict.outcome, verdict.reasons, verdict.results) == (both.outcome, both.reasons, both.results)
    assert ReasonCode.PIPELINES_DISAGREE_PLATE in verdict.reasons  # a disagreement is a REVIEW naming the field
    provenance = verdict.judgments.provenance
    assert provenance.pipeline == "cascade" and provenance.pipelines == ("mllm", "multistage")
    assert provenance.cascade is not None and provenance.cascade.path == "escalated"
    assert provenance.cascade.reason == "PASS, but not sure of the vehicle: vehicle score 0.37 < 0.50"


def test_judgments_stored_before_cascades_still_parse() -> None:
    stored = sure().model_dump(mode="json")
    del stored["provenance"]["cascade"]
    assert Judgments.model_validate(stored).provenance.cascade is None


# Real photos, the real baseline.


@pytest.fixture(scope="module")
def baseline() -> Pipeline:
    return get_pipeline("multistage", Settings())


def real(pipeline: Pipeline, scene: np.ndarray, licence: np.ndarray | None, registered: str) -> Verdict:
    judgments = pipeline.judge(scene, licence, THRESHOLDS)
    return decide(judgments, thresholds=THRESHOLDS, registered_plates=[registered], licence_given=licence is not None)


def test_real_photos_of_a_driver_by_his_car_are_settled_either_way(baseline: Pipeline, dev_dir: Path) -> None:
    scene, licence = driver_by_vehicle(dev_dir), dev_image(dev_dir, LICENCE)
    genuine = real(baseline, scene, licence, PLATE)
    settled = settle(genuine, THRESHOLDS, SETTINGS)
    assert genuine.outcome is Outcome.PASS and settled.settled, settled.reason
    wrong_plate = real(baseline, scene, licence, "皖AUJ299")
    settled = settle(wrong_plate, THRESHOLDS, SETTINGS)
    assert wrong_plate.reasons == (ReasonCode.PLATE_MISMATCH,) and settled.settled, settled.reason
    assert settled.reason.startswith(f"FAIL: plate {PLATE} read at")


def test_real_photos_the_baseline_is_unsure_of_are_escalated(baseline: Pipeline, dev_dir: Path) -> None:
    # The parked car alone: nobody is there, and an absence has no score to be sure of.
    empty = real(baseline, dev_image(dev_dir, VEHICLE), dev_image(dev_dir, LICENCE), PLATE)
    settlement = settle(empty, THRESHOLDS, SETTINGS)
    assert empty.outcome is Outcome.FAIL and not settlement.settled and settlement.unsure == ("person",)
    # The bundled compliant sample passes, but the small detector sees its car weakly (0.37).
    photo = read_photo_file(samples_dir() / "a_by_car_wanAUJ299.jpg", max_bytes=1 << 26, max_pixels=80_000_000)
    licence = read_photo_file(samples_dir() / "licence_a.jpg", max_bytes=1 << 26, max_pixels=80_000_000)
    sample = real(baseline, photo.image, licence.image, "皖AUJ299")
    settlement = settle(sample, THRESHOLDS, SETTINGS)
    assert sample.outcome is Outcome.PASS and settlement.unsure == ("vehicle",), settlement.reason
