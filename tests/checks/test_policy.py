"""The checks and the policy: unknown never passes; each failure names its reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from compliance.checks import CheckContext, Policy, PriorPhoto
from compliance.checks.face import FaceMatchesLicence
from compliance.checks.provenance import NotReused, TakenDuringJob
from compliance.judgments import (
    Answer,
    FaceMatch,
    Judgments,
    PersonJudgment,
    PlateReading,
    Provenance,
    Quality,
    VehicleJudgment,
    VehicleKind,
)
from compliance.settings import Thresholds
from compliance.verdicts import Outcome, ReasonCode

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


def good_judgments(**changes: object) -> Judgments:
    """What a clear, compliant photo of driver 7 by 皖A195K9 is judged to show."""
    base = Judgments(
        person=PersonJudgment(present=Answer.YES, count=1),
        vehicle=VehicleJudgment(present=Answer.YES, kind=VehicleKind.TRUCK),
        plate=PlateReading(text="皖A195K9", confidence=0.97, known_format=Answer.YES, plate_type="standard"),
        face=FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, similarity=0.61, same_person=Answer.YES),
        quality=Quality(blur=250.0, brightness=120.0, width=1280, height=960),
        provenance=Provenance(pipeline="test"),
    )
    return base.model_copy(update=changes)


def decide(j: Judgments, **ctx: object) -> tuple[Outcome, tuple[ReasonCode, ...]]:
    context = dict(
        judgments=j,
        thresholds=Thresholds(),
        registered_plates=("皖A195K9",),
        driver_id=7,
        submitted_at=NOW,
    )
    context.update(ctx)
    verdict = Policy().decide(CheckContext(**context))  # type: ignore[arg-type]
    return verdict.outcome, verdict.reasons


def test_compliant_photo_passes() -> None:
    assert decide(good_judgments()) == (Outcome.PASS, ())


@pytest.mark.parametrize(
    ("changes", "outcome", "reason"),
    [
        ({"person": PersonJudgment(present=Answer.NO, count=0)}, Outcome.FAIL, ReasonCode.PERSON_MISSING),
        ({"person": PersonJudgment()}, Outcome.REVIEW, ReasonCode.PERSON_UNCERTAIN),
        ({"vehicle": VehicleJudgment(present=Answer.NO)}, Outcome.FAIL, ReasonCode.VEHICLE_MISSING),
        ({"vehicle": VehicleJudgment()}, Outcome.REVIEW, ReasonCode.VEHICLE_UNCERTAIN),
        ({"plate": PlateReading()}, Outcome.REVIEW, ReasonCode.PLATE_UNREADABLE),
        (
            {"plate": PlateReading(text="皖A195K9", confidence=None, known_format=Answer.YES)},
            Outcome.REVIEW,
            ReasonCode.PLATE_LOW_CONFIDENCE,
        ),
        (
            {"plate": PlateReading(text="皖A195K9", confidence=0.4, known_format=Answer.YES)},
            Outcome.REVIEW,
            ReasonCode.PLATE_LOW_CONFIDENCE,
        ),
        (
            {"plate": PlateReading(text="皖A19SK9", confidence=0.97, known_format=Answer.YES)},
            Outcome.REVIEW,
            ReasonCode.PLATE_CONFUSABLE,
        ),
        (
            {"plate": PlateReading(text="粤B12345", confidence=0.97, known_format=Answer.YES)},
            Outcome.FAIL,
            ReasonCode.PLATE_MISMATCH,
        ),
        (
            {"plate": PlateReading(text="粤B12345", confidence=0.5, known_format=Answer.YES)},
            Outcome.REVIEW,
            ReasonCode.PLATE_LOW_CONFIDENCE,
        ),
        (
            {"plate": PlateReading(text="XYZ", confidence=0.99, known_format=Answer.NO)},
            Outcome.REVIEW,
            ReasonCode.PLATE_UNKNOWN_FORMAT,
        ),
        (
            {"face": FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, similarity=0.1, same_person=Answer.NO)},
            Outcome.FAIL,
            ReasonCode.FACE_MISMATCH,
        ),
        (
            {"face": FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, similarity=0.33)},
            Outcome.REVIEW,
            ReasonCode.FACE_UNCERTAIN,
        ),
        (
            {"face": FaceMatch(scene_face=Answer.NO, licence_face=Answer.YES)},
            Outcome.REVIEW,
            ReasonCode.FACE_NOT_IN_SCENE,
        ),
        (
            {"face": FaceMatch(scene_face=Answer.YES, licence_face=Answer.NO)},
            Outcome.REVIEW,
            ReasonCode.FACE_NOT_ON_LICENCE,
        ),
        (
            {"quality": Quality(blur=3.0, brightness=120.0, width=1280, height=960)},
            Outcome.REVIEW,
            ReasonCode.LOW_QUALITY_BLUR,
        ),
        (
            {"quality": Quality(blur=250.0, brightness=12.0, width=1280, height=960)},
            Outcome.REVIEW,
            ReasonCode.LOW_QUALITY_DARK,
        ),
        (
            {"quality": Quality(blur=250.0, brightness=120.0, width=200, height=150)},
            Outcome.REVIEW,
            ReasonCode.LOW_RESOLUTION,
        ),
        ({"quality": Quality()}, Outcome.REVIEW, ReasonCode.QUALITY_UNKNOWN),
        (
            {"provenance": Provenance(pipeline="mllm", output_errors=("plate.text: not a plate",))},
            Outcome.REVIEW,
            ReasonCode.INVALID_MODEL_OUTPUT,
        ),
    ],
)
def test_each_problem_gives_its_reason(changes: dict[str, object], outcome: Outcome, reason: ReasonCode) -> None:
    got_outcome, reasons = decide(good_judgments(**changes))
    assert got_outcome == outcome
    assert reason in reasons


def test_every_unknown_leads_to_review_never_pass() -> None:
    """A judgments object a model filled with nothing at all."""
    outcome, reasons = decide(Judgments(provenance=Provenance(pipeline="empty")))
    assert outcome == Outcome.REVIEW
    assert {ReasonCode.PERSON_UNCERTAIN, ReasonCode.VEHICLE_UNCERTAIN, ReasonCode.PLATE_UNREADABLE} <= set(reasons)


def test_fail_outweighs_review() -> None:
    j = good_judgments(person=PersonJudgment(present=Answer.NO), plate=PlateReading())
    outcome, reasons = decide(j)
    assert outcome == Outcome.FAIL
    assert ReasonCode.PLATE_UNREADABLE in reasons and ReasonCode.PERSON_MISSING in reasons


def test_no_registered_plate_is_review() -> None:
    outcome, reasons = decide(good_judgments(), registered_plates=())
    assert outcome == Outcome.REVIEW and ReasonCode.PLATE_NOT_REGISTERED in reasons


def test_missing_licence_photo_is_review() -> None:
    result = FaceMatchesLicence().run(
        CheckContext(judgments=good_judgments(), thresholds=Thresholds(), licence_given=False)
    )
    assert result.outcome == Outcome.REVIEW and result.reason == ReasonCode.LICENCE_PHOTO_MISSING


def test_photo_reused_by_another_driver_or_day_fails_but_same_day_resend_passes() -> None:
    check = NotReused()
    base = dict(judgments=good_judgments(), thresholds=Thresholds(), driver_id=7, submitted_at=NOW)
    other_driver = PriorPhoto("s1", driver_id=8, submitted_at=NOW - timedelta(hours=1), distance=2)
    other_day = PriorPhoto("s2", driver_id=7, submitted_at=NOW - timedelta(days=3), distance=0)
    same_day = PriorPhoto("s3", driver_id=7, submitted_at=NOW - timedelta(minutes=5), distance=0)
    for prior, expected in [(other_driver, Outcome.FAIL), (other_day, Outcome.FAIL), (same_day, Outcome.PASS)]:
        result = check.run(CheckContext(similar_photos=(prior,), **base))  # type: ignore[arg-type]
        assert result.outcome == expected, prior
    assert check.run(CheckContext(**base)).outcome == Outcome.PASS  # type: ignore[arg-type]


def test_capture_time_window() -> None:
    check = TakenDuringJob()
    window = (NOW, NOW + timedelta(hours=4))
    base = dict(judgments=good_judgments(), thresholds=Thresholds(), job_window=window)
    inside = check.run(CheckContext(capture_time=NOW + timedelta(hours=1), **base))  # type: ignore[arg-type]
    outside = check.run(CheckContext(capture_time=NOW - timedelta(days=2), **base))  # type: ignore[arg-type]
    missing = check.run(CheckContext(capture_time=None, **base))  # type: ignore[arg-type]
    # A camera's offset-less local time (Asia/Shanghai, UTC+8) inside the UTC window.
    local = check.run(CheckContext(capture_time=datetime(2026, 11, 20, 18, 0), **base))  # type: ignore[arg-type]
    assert inside and inside.outcome == Outcome.PASS
    assert outside and outside.outcome == Outcome.FAIL and outside.reason == ReasonCode.CAPTURE_TIME_OUTSIDE_WINDOW
    assert missing and missing.outcome == Outcome.REVIEW and missing.reason == ReasonCode.CAPTURE_TIME_MISSING
    assert local and local.outcome == Outcome.PASS
    assert check.run(CheckContext(judgments=good_judgments(), thresholds=Thresholds())) is None


def test_carrier_thresholds_change_the_decision() -> None:
    j = good_judgments(quality=Quality(blur=50.0, brightness=120.0, width=1280, height=960))
    assert decide(j)[0] == Outcome.PASS
    strict = Thresholds(blur_min=80.0)
    outcome, reasons = decide(j, thresholds=strict)
    assert outcome == Outcome.REVIEW and ReasonCode.LOW_QUALITY_BLUR in reasons
