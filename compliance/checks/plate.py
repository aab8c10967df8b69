"""Does the plate in the photo match the registered plate?"""

from __future__ import annotations

from compliance import plates
from compliance.checks.base import CheckContext, failed, passed, review
from compliance.judgments import Answer
from compliance.verdicts import CheckResult, ReasonCode


class PlateMatchesRegistered:
    name = "plate"

    def run(self, ctx: CheckContext) -> CheckResult:
        reading = ctx.judgments.plate
        if not ctx.registered_plates:
            return review(self.name, ReasonCode.PLATE_NOT_REGISTERED, "no registered plate to compare with")
        if not reading.text:
            return review(self.name, ReasonCode.PLATE_UNREADABLE, "no plate could be read")
        comparisons = {p: plates.compare(reading.text, p) for p in ctx.registered_plates}
        exact = [p for p, c in comparisons.items() if c.match is plates.PlateMatch.EXACT]
        if exact:
            confidence = reading.confidence
            if confidence is None:
                return review(self.name, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {reading.text}, confidence unknown")
            if confidence < ctx.thresholds.plate_confidence_min:
                return review(
                    self.name, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {reading.text} with confidence {confidence:.2f}"
                )
            return passed(self.name, f"read {reading.text}, registered {exact[0]}")
        close = [p for p, c in comparisons.items() if c.match is plates.PlateMatch.CONFUSABLE]
        if close:
            return review(
                self.name,
                ReasonCode.PLATE_CONFUSABLE,
                f"read {reading.text}, registered {close[0]}: differs only by look-alike characters",
            )
        registered = ", ".join(ctx.registered_plates)
        if reading.known_format is not Answer.YES:
            return review(
                self.name,
                ReasonCode.PLATE_UNKNOWN_FORMAT,
                f"read {reading.text} (not a known plate format); registered {registered}",
            )
        if reading.confidence is None or reading.confidence < ctx.thresholds.plate_confidence_min:
            # An unsure reading that disagrees is as likely a misread as a wrong vehicle.
            return review(
                self.name, ReasonCode.PLATE_LOW_CONFIDENCE, f"read {reading.text} unsurely; registered {registered}"
            )
        return failed(self.name, ReasonCode.PLATE_MISMATCH, f"read {reading.text}, registered {registered}")
