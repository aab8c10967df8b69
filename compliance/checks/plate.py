"""Does a plate in the photo match a registered plate?

Every plate read in the photo is compared (a driver's photo often shows a second vehicle); the
check passes when one of them is a registered plate, read surely, unless a markedly nearer vehicle's
plate is surely another (the registered truck parked behind the one the driver stands by: REVIEW).
A reading that differs is a FAIL only when the reader was sure of it: a doubtful reading, or one
character off that the reader doubted, is a REVIEW.
"""

from __future__ import annotations

from collections.abc import Sequence

from compliance import plates
from compliance.checks.base import CheckContext, failed, passed, review
from compliance.judgments import Answer, Judgments, PlateReading
from compliance.settings import Thresholds
from compliance.verdicts import CheckResult, Outcome, ReasonCode

NAME = "plate"
# The most favourable first: a reading that passes beats one that needs a look, which beats a FAIL.
_FAVOUR = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def readings_of(judgments: Judgments) -> tuple[PlateReading, ...]:
    """Every plate read, in the order the pipeline listed them (an MLLM: nearest first); judgments
    from before ``plates`` hold only ``plate``."""
    listed = [r for r in judgments.plates if r.text]
    if judgments.plate.text and judgments.plate not in listed:
        listed.insert(0, judgments.plate)
    return tuple(dict.fromkeys(listed))


def assess(reading: PlateReading, registered: Sequence[str], thresholds: Thresholds) -> CheckResult:
    """One reading against the registered plates."""
    text = reading.text or ""
    comparisons = {p: plates.compare(text, p) for p in registered}
    exact = [p for p, c in comparisons.items() if c.match is plates.PlateMatch.EXACT]
    if exact:
        confidence = reading.confidence
        if confidence is None:
            return review(NAME, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {text}, confidence unknown")
        if confidence < thresholds.plate_confidence_min:
            return review(NAME, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {text} with confidence {confidence:.2f}")
        return passed(NAME, f"read {text}, registered {exact[0]}")
    close = [p for p, c in comparisons.items() if c.match is plates.PlateMatch.CONFUSABLE]
    if close:
        return review(
            NAME,
            ReasonCode.PLATE_CONFUSABLE,
            f"read {text}, registered {close[0]}: differs only by look-alike characters",
        )
    listed = ", ".join(registered)
    if reading.known_format is not Answer.YES:
        return review(
            NAME, ReasonCode.PLATE_UNKNOWN_FORMAT, f"read {text} (not a known plate format); registered {listed}"
        )
    for plate, comparison in comparisons.items():
        if len(comparison.positions) == 1 and len(plate) == len(text):
            position = comparison.positions[0]
            sure = _char_confidence(reading, position)
            if sure is None or sure < thresholds.plate_char_confidence_min:
                how = "unknown" if sure is None else f"{sure:.2f}"
                return review(
                    NAME,
                    ReasonCode.PLATE_UNCERTAIN_CHARACTER,
                    f"read {text}, registered {plate}: character {position + 1} "
                    f"({text[position]} vs {plate[position]}) read with confidence {how}",
                )
    if reading.confidence is None or reading.confidence < thresholds.plate_confidence_min:
        # An unsure reading that disagrees is as likely a misread as a wrong vehicle.
        return review(NAME, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {text} unsurely; registered {listed}")
    return failed(NAME, ReasonCode.PLATE_MISMATCH, f"read {text}, registered {listed}")


def _char_confidence(reading: PlateReading, position: int) -> float | None:
    """The reader's own confidence in one character; unknown where it gave none for each character."""
    confidences = reading.char_confidences
    if confidences is None or reading.text is None or len(confidences) != len(reading.text):
        return None
    return confidences[position]


def best_reading(
    readings: Sequence[PlateReading], registered: Sequence[str], thresholds: Thresholds
) -> tuple[PlateReading, CheckResult]:
    """The reading the verdict rests on, with its result: the one that matches, else the most
    favourable, the most confident among equals."""
    judged = [(r, assess(r, registered, thresholds)) for r in readings]
    reading, result = min(judged, key=lambda rc: (_FAVOUR[rc[1].outcome], -(rc[0].confidence or 0.0)))
    if result.outcome is Outcome.PASS:
        nearer = [
            r for r, other in judged if other.outcome is Outcome.FAIL and _nearer(r, reading, readings, thresholds)
        ]
        if nearer:
            result = review(
                NAME,
                ReasonCode.PLATE_MATCH_NOT_NEAREST,
                f"read {reading.text} (registered), but the nearer vehicle's plate reads {nearer[0].text}",
            )
    return reading, result


def _nearer(a: PlateReading, b: PlateReading, readings: Sequence[PlateReading], thresholds: Thresholds) -> bool:
    """Whether ``a`` is markedly nearer the camera than ``b``: a larger plate by area, or, without
    boxes (an MLLM lists plates nearest first), earlier in the list."""
    if a.box is not None and b.box is not None:
        return a.box.area >= thresholds.plate_nearer_area_ratio * b.box.area
    return readings.index(a) < readings.index(b)


def resting_on_registered(judgments: Judgments, registered: Sequence[str], thresholds: Thresholds) -> Judgments:
    """The judgments with ``plate`` set to the reading a verdict against ``registered`` rests on."""
    readings = readings_of(judgments)
    if not registered or not readings:
        return judgments
    reading, _ = best_reading(readings, registered, thresholds)
    return judgments if reading == judgments.plate else judgments.model_copy(update={"plate": reading})


class PlateMatchesRegistered:
    name = NAME

    def run(self, ctx: CheckContext) -> CheckResult:
        if not ctx.registered_plates:
            return review(self.name, ReasonCode.PLATE_NOT_REGISTERED, "no registered plate to compare with")
        readings = readings_of(ctx.judgments)
        if not readings:
            return review(self.name, ReasonCode.PLATE_UNREADABLE, "no plate could be read")
        reading, result = best_reading(readings, ctx.registered_plates, ctx.thresholds)
        if result.outcome is Outcome.FAIL and len(readings) > 1:
            texts = ", ".join(r.text or "" for r in readings)
            return failed(
                self.name,
                ReasonCode.PLATE_MISMATCH,
                f"read {len(readings)} plates ({texts}), none registered: {', '.join(ctx.registered_plates)}",
            )
        if len(readings) > 1:
            others = ", ".join(r.text or "" for r in readings if r is not reading)
            return result.model_copy(update={"detail": f"{result.detail} (also read {others})"})
        return result
