"""Is the photo good enough to judge at all?"""

from __future__ import annotations

from compliance.checks.base import CheckContext, passed, review
from compliance.verdicts import CheckResult, ReasonCode


class SharpEnough:
    name = "blur"

    def run(self, ctx: CheckContext) -> CheckResult:
        blur = ctx.judgments.quality.blur
        if blur is None:
            return review(self.name, ReasonCode.QUALITY_UNKNOWN, "sharpness not measured")
        if blur < ctx.thresholds.blur_min:
            return review(self.name, ReasonCode.LOW_QUALITY_BLUR, f"blurred (Laplacian variance {blur:.1f})")
        return passed(self.name, f"Laplacian variance {blur:.1f}")


class WellExposed:
    name = "exposure"

    def run(self, ctx: CheckContext) -> CheckResult:
        brightness = ctx.judgments.quality.brightness
        t = ctx.thresholds
        if brightness is None:
            return review(self.name, ReasonCode.QUALITY_UNKNOWN, "brightness not measured")
        if brightness < t.brightness_min:
            return review(self.name, ReasonCode.LOW_QUALITY_DARK, f"too dark (mean luma {brightness:.0f})")
        if brightness > t.brightness_max:
            return review(self.name, ReasonCode.LOW_QUALITY_OVEREXPOSED, f"overexposed (mean luma {brightness:.0f})")
        return passed(self.name, f"mean luma {brightness:.0f}")


class LargeEnough:
    name = "resolution"

    def run(self, ctx: CheckContext) -> CheckResult:
        q = ctx.judgments.quality
        if q.width is None or q.height is None:
            return review(self.name, ReasonCode.QUALITY_UNKNOWN, "resolution not measured")
        if min(q.width, q.height) < ctx.thresholds.min_short_side:
            return review(self.name, ReasonCode.LOW_RESOLUTION, f"{q.width}x{q.height} is too small")
        return passed(self.name, f"{q.width}x{q.height}")
