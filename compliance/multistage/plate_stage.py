"""The plate stage: locators tried in turn, fastest first, each one's candidates read by one reader.

It stops at the first locator whose best reading fits the plate grammar with enough confidence,
so a clear plate costs one detector pass and one recogniser pass; harder photos fall through to
slower or cruder locators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from compliance import plates
from compliance.judgments import Answer, PlateColor, PlateReading
from compliance.multistage.base import Image, PlateLocator, PlateReader
from compliance.multistage.plate_locators import (
    DEFAULT_THREADS,
    ClpDetLocator,
    HaarLocator,
    TextDetLocator,
    WholeImageLocator,
    quad_size,
)
from compliance.multistage.plate_reader import OcrPlateReader, clp_recogniser, ppocr_recogniser


@dataclass(frozen=True, slots=True)
class StepTrace:
    locator: str
    candidates: int
    text: str | None
    confidence: float | None
    ms: float


@dataclass(frozen=True, slots=True)
class StageTrace:
    reading: PlateReading
    steps: tuple[StepTrace, ...]


@dataclass(frozen=True, slots=True)
class Step:
    """One locator in the cascade. ``plate_specific``: it looks for plates, not any text, so a
    reading from it that fits no known format is still a plate read (and worth reporting)."""

    locator: PlateLocator
    plate_specific: bool
    max_candidates: int = 3


@dataclass(slots=True)
class PlateStage:
    steps: list[Step]
    reader: PlateReader
    # A valid reading at least this sure ends the cascade. The lowest per-character probability
    # of a clean plate read by PP-OCRv4 is typically above 0.9; below 0.8 a second look pays.
    stop_confidence: float = 0.8
    # An off-grammar reading is reported only when it is as long as a plate and read with care.
    invalid_min_length: int = 6
    invalid_min_confidence: float = 0.5

    @classmethod
    def default(cls, threads: int = DEFAULT_THREADS) -> PlateStage:
        # One text detector serves twice: locating plates in the photo and rows inside a plate.
        text_detector = TextDetLocator(max_side=640, threads=threads)
        reader = OcrPlateReader(
            recogniser=ppocr_recogniser(threads),
            second_opinion=clp_recogniser(threads),
            row_finder=text_detector,
        )
        return cls(
            steps=[
                Step(WholeImageLocator(), plate_specific=True, max_candidates=1),
                Step(ClpDetLocator(max_side=640, threads=threads), plate_specific=True),
                # Phone photos are 3000-4000 px wide; a plate beside a standing driver can shrink to
                # a few pixels at 640, so a second pass looks at more detail when the first is unsure.
                Step(
                    ClpDetLocator(max_side=1280, skip_up_to=800, threads=threads, name="clp_det_1280"),
                    plate_specific=True,
                ),
                Step(text_detector, plate_specific=False, max_candidates=6),
                Step(HaarLocator(), plate_specific=True),
            ],
            reader=reader,
        )

    @property
    def models(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for step in self.steps:
            version = getattr(step.locator, "version", None)
            if version is not None and version not in found.values():
                found[step.locator.name] = version
        found.update(getattr(self.reader, "models", {}))
        return found

    def read(self, image: Image) -> PlateReading:
        return self.trace(image).reading

    def trace(self, image: Image) -> StageTrace:
        """The reading, with what each locator tried on the way (for benches and debugging)."""
        best: PlateReading | None = None
        tried: list[StepTrace] = []
        for step in self.steps:
            start = time.perf_counter()
            # The locator's best few, read largest first: when several plates are in view, the
            # nearest vehicle's (the subject's) is the largest, and a sure reading of it ends the search.
            candidates = sorted(
                step.locator.locate(image)[: step.max_candidates], key=lambda c: -quad_size(c.corners)[1]
            )
            reading = self.reader.read(image, candidates) if candidates else PlateReading()
            ms = (time.perf_counter() - start) * 1000
            tried.append(StepTrace(step.locator.name, len(candidates), reading.text, reading.confidence, ms))
            if not self._acceptable(reading, step):
                continue
            if best is None or _rank(reading) > _rank(best):
                best = reading
            if _valid(best) and _color_consistent(best) and (best.confidence or 0.0) >= self.stop_confidence:
                break
        return StageTrace(best if best is not None else PlateReading(), tuple(tried))

    def _acceptable(self, reading: PlateReading, step: Step) -> bool:
        if not reading.text:
            return False
        if _valid(reading):
            return True
        return (
            step.plate_specific
            and len(reading.text) >= self.invalid_min_length
            and (reading.confidence or 0.0) >= self.invalid_min_confidence
        )


def _valid(reading: PlateReading) -> bool:
    return reading.known_format is Answer.YES


def _color_consistent(reading: PlateReading) -> bool:
    """False when the plate's colour is known and its type is never issued in that colour."""
    if not _valid(reading) or reading.color is PlateColor.UNKNOWN or reading.text is None:
        return True
    return reading.color.value in plates.parse(reading.text).expected_colors


def _rank(reading: PlateReading) -> tuple[bool, bool, float]:
    return (_valid(reading), _color_consistent(reading), reading.confidence or 0.0)
