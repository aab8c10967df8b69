"""The plate's background colour, from the pixels of its rectified crop.

A plate is characters on a background, and the background covers most of it: split the crop
into a bright and a dark class by luminance (Otsu), take the larger class as the background,
then name its colour by hue when it is saturated, or white/black by whether it is the bright or
the dark class when it is not. New-energy plates fade from green to white, so their background is
partly unsaturated: that case is a tie between green and white, which the grammar may break.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2

from compliance.judgments import PlateColor
from compliance.multistage.base import Image

# OpenCV hue runs 0..179. Plate blues drift towards purple under sodium and LED light.
_HUES: tuple[tuple[PlateColor, int, int], ...] = (
    (PlateColor.YELLOW, 10, 34),
    (PlateColor.GREEN, 35, 89),
    (PlateColor.BLUE, 90, 150),
)


@dataclass(frozen=True, slots=True)
class ColorEvidence:
    """What the pixels say: a share for each colour (they sum to at most 1)."""

    shares: dict[PlateColor, float]
    contrast: float  # mean luma difference between background and characters, 0..255

    def ranked(self) -> list[tuple[PlateColor, float]]:
        return sorted(self.shares.items(), key=lambda kv: -kv[1])


class PlateColorClassifier:
    """Background colour of a tight, rectified plate crop; UNKNOWN when the pixels are unclear."""

    def __init__(
        self,
        saturation_min: int = 70,
        gray_saturation_max: int = 40,
        value_min: int = 40,
        contrast_min: float = 25.0,
        share_min: float = 0.55,
        margin_min: float = 0.2,
    ) -> None:
        self.saturation_min = saturation_min
        self.gray_saturation_max = gray_saturation_max
        self.value_min = value_min
        self.contrast_min = contrast_min
        self.share_min = share_min
        self.margin_min = margin_min

    def evidence(self, crop: Image) -> ColorEvidence | None:
        h, w = crop.shape[:2]
        # The plate's frame, rivets and a sliver of bumper live at the border.
        inner = crop[round(h * 0.12) : h - round(h * 0.12), round(w * 0.04) : w - round(w * 0.04)]
        if inner.size == 0 or min(inner.shape[:2]) < 4:
            return None
        luma = cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY)
        _, bright = cv2.threshold(luma, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        bright_mask = bright > 0
        bright_share = float(bright_mask.mean())
        if bright_share in (0.0, 1.0):
            return None
        background_is_bright = bright_share >= 0.5
        background = bright_mask if background_is_bright else ~bright_mask
        contrast = float(abs(luma[bright_mask].mean() - luma[~bright_mask].mean()))

        hsv = cv2.cvtColor(inner, cv2.COLOR_BGR2HSV)[background]
        hue, sat, val = hsv[:, 0].astype(int), hsv[:, 1].astype(int), hsv[:, 2].astype(int)
        chromatic = (sat >= self.saturation_min) & (val >= self.value_min)
        shares: dict[PlateColor, float] = {
            color: float((chromatic & (hue >= lo) & (hue <= hi)).mean()) for color, lo, hi in _HUES
        }
        # Pixels between the two saturation bands (washed-out or tinted) count for no colour.
        achromatic = float(((sat <= self.gray_saturation_max) | (val < self.value_min)).mean())
        # An unsaturated background is white when the characters are darker, black when lighter.
        shares[PlateColor.WHITE if background_is_bright else PlateColor.BLACK] = achromatic
        return ColorEvidence(shares=shares, contrast=contrast)

    def classify(self, crop: Image, expected: frozenset[PlateColor] = frozenset()) -> PlateColor:
        """``expected``: the colours the plate's grammar allows; used only to break a tie."""
        found = self.evidence(crop)
        if found is None or found.contrast < self.contrast_min:
            return PlateColor.UNKNOWN
        (first, first_share), (_, second_share) = found.ranked()[:2]
        if first_share >= self.share_min and first_share - second_share >= self.margin_min:
            return first
        tied = {c for c, s in found.ranked()[:2] if s >= self.share_min / 2}
        allowed = tied & expected
        if len(allowed) == 1:
            return next(iter(allowed))
        return PlateColor.UNKNOWN
