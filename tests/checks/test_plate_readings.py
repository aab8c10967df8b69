"""The plate check over every plate read: two vehicles in a frame, and one doubted character."""

from __future__ import annotations

from compliance.inspection import decide
from compliance.judgments import Answer, Box, PlateReading
from compliance.settings import Thresholds
from compliance.verdicts import Outcome, ReasonCode
from tests.checks.test_policy import good_judgments


def reading(text: str, chars: tuple[float, ...] | None = None, x: float = 0.0, width: float = 100.0) -> PlateReading:
    confidences = chars if chars is not None else (0.99,) * len(text)
    return PlateReading(
        text=text,
        confidence=min(confidences),
        char_confidences=confidences,
        known_format=Answer.YES,
        plate_type="standard",
        box=Box(x1=x, y1=0.0, x2=x + width, y2=width * 0.3),
    )


def verdict_for(readings: tuple[PlateReading, ...], registered: str = "皖A195K9"):  # type: ignore[no-untyped-def]
    judgments = good_judgments(plate=readings[0], plates=readings)
    return decide(judgments, thresholds=Thresholds(), registered_plates=[registered], licence_given=True)


def test_the_registered_plate_passes_when_another_vehicle_is_read_first() -> None:
    other, own = reading("苏E5YR23", x=0.0), reading("皖A195K9", x=500.0)
    verdict = verdict_for((other, own))
    assert verdict.outcome is Outcome.PASS
    # The verdict rests on the reading that matched; the other vehicle's is kept.
    assert verdict.judgments.plate == own
    assert verdict.judgments.plates == (other, own)
    plate = next(r for r in verdict.results if r.check == "plate")
    assert "also read 苏E5YR23" in plate.detail


def test_several_plates_none_registered_fail_saying_how_many() -> None:
    verdict = verdict_for((reading("苏E5YR23"), reading("浙A6MX97", x=500.0)))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reasons == (ReasonCode.PLATE_MISMATCH,)
    plate = next(r for r in verdict.results if r.check == "plate")
    assert plate.detail.startswith("read 2 plates (苏E5YR23, 浙A6MX97)")


def test_a_doubtful_reading_among_several_is_a_review_not_a_fail() -> None:
    doubtful = reading("皖A195K8", chars=(0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.85))
    verdict = verdict_for((reading("苏E5YR23"), doubtful))
    assert verdict.outcome is Outcome.REVIEW
    assert ReasonCode.PLATE_UNCERTAIN_CHARACTER in verdict.reasons


def test_one_doubted_character_is_a_review_even_when_the_whole_reading_scores_high() -> None:
    # Overall 0.87 >= plate_confidence_min 0.80: before the per-character rule this was a FAIL.
    misread = reading("皖A195K8", chars=(0.99, 0.99, 0.99, 0.98, 0.99, 0.99, 0.87))
    verdict = verdict_for((misread,))
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.reasons == (ReasonCode.PLATE_UNCERTAIN_CHARACTER,)


def test_a_doubted_province_character_is_a_review() -> None:
    misread = reading("豫A195K9", chars=(0.86, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99))
    assert verdict_for((misread,)).reasons == (ReasonCode.PLATE_UNCERTAIN_CHARACTER,)


def test_a_confident_one_character_difference_is_still_a_fail() -> None:
    # A near plate: one character changed to one that does not look like it, read surely.
    verdict = verdict_for((reading("皖A195K9"),), registered="皖A195K3")
    assert verdict.outcome is Outcome.FAIL
    assert verdict.reasons == (ReasonCode.PLATE_MISMATCH,)


def test_a_one_character_difference_without_per_character_confidence_is_a_review() -> None:
    unknown = reading("皖A195K8").model_copy(update={"char_confidences": None})
    assert verdict_for((unknown,)).reasons == (ReasonCode.PLATE_UNCERTAIN_CHARACTER,)


def test_judgments_from_before_the_plates_list_are_checked_on_their_plate() -> None:
    judgments = good_judgments()
    assert judgments.plates == ()
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["皖A195K9"], licence_given=True)
    assert verdict.outcome is Outcome.PASS


def test_a_registered_plate_far_behind_a_nearer_vehicle_surely_read_as_another_is_a_review() -> None:
    # The registered truck parked far behind the one the driver stands by: not a PASS.
    nearer, far = reading("苏E5YR23", width=200.0), reading("皖A195K9", x=600.0, width=40.0)
    verdict = verdict_for((nearer, far))
    assert verdict.outcome is Outcome.REVIEW
    assert verdict.reasons == (ReasonCode.PLATE_MATCH_NOT_NEAREST,)


def test_without_boxes_the_list_order_says_which_plate_is_nearer() -> None:
    # An MLLM lists plates nearest first and gives no boxes.
    nearer, far = (r.model_copy(update={"box": None}) for r in (reading("苏E5YR23"), reading("皖A195K9")))
    assert verdict_for((nearer, far)).reasons == (ReasonCode.PLATE_MATCH_NOT_NEAREST,)
    assert verdict_for((far, nearer)).outcome is Outcome.PASS


def test_a_match_only_in_the_plates_list_is_what_the_verdict_rests_on() -> None:
    # An answer whose main plate was unreadable, with the plate in its list of every plate seen.
    own = reading("皖A195K9")
    judgments = good_judgments(plate=PlateReading(), plates=(own,))
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["皖A195K9"], licence_given=True)
    assert verdict.outcome is Outcome.PASS
    assert verdict.judgments.plate == own
