"""The plate stage: locators tried in turn, fastest first, each one's candidates read by one reader.

Every candidate a locator offers is read (two vehicles in a frame: two plates), and the cascade stops
after the first locator that gave a reading fitting the plate grammar with enough confidence, so a
clear plate costs one detector pass and one recogniser pass per plate in view; harder photos fall
through to slower or cruder locators. Readings of one plate found twice are kept once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compliance import plates
from compliance.judgments import Answer, PlateColor, PlateReading
from compliance.multistage.base import Image, PlateFindings, PlateLocator, PlateReader
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
    # Every distinct plate read, ``reading`` first when it has text.
    readings: tuple[PlateReading, ...] = ()

    @property
    def findings(self) -> PlateFindings:
        return PlateFindings(plate=self.reading, plates=self.readings)


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
    # Width/height of a located quad worth reading: single-row plates rectify to about 3:1-5:1,
    # double-row and motorcycle ones to 1.5:1-2.6:1; a camera's date-and-time line is 8:1 or wider.
    aspect_range: tuple[float, float] = (1.3, 6.5)

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

    def read_all(self, image: Image) -> PlateFindings:
        return self.trace(image).findings

    def trace(self, image: Image) -> StageTrace:
        """The readings, with what each locator tried on the way (for benches and debugging)."""
        found: list[PlateReading] = []
        tried: list[StepTrace] = []
        for step in self.steps:
            start = time.perf_counter()
            # The locator's best few, largest first: when several plates are in view, the nearest
            # vehicle's (the subject's) is the largest, and its sure reading is the one the verdict rests on.
            located = step.locator.locate(image)[: step.max_candidates]
            candidates = sorted(
                (c for c in located if self._plate_shaped(c.corners)), key=lambda c: -quad_size(c.corners)[1]
            )
            readings = self.reader.read_each(image, candidates) if candidates else []
            kept = [r for r in readings if self._acceptable(r, step)]
            ms = (time.perf_counter() - start) * 1000
            top = max(kept, key=_rank, default=PlateReading())
            tried.append(StepTrace(step.locator.name, len(candidates), top.text, top.confidence, ms))
            for reading in kept:
                found = _merged(found, reading, self._sure)
            if any(self._sure(r) for r in found):
                break
        # The first sure reading (locator order, then size), else the most likely one: as before
        # every plate was read, so that readers of ``plate`` see the same reading.
        best = next((r for r in found if self._sure(r)), None) or max(found, key=_rank, default=PlateReading())
        others = sorted((r for r in found if r is not best), key=_rank, reverse=True)
        return StageTrace(best, tuple(tried), tuple([best, *others] if found else others))

    def first_reading(self, image: Image) -> PlateReading:
        """The first reading ``trace`` would keep, candidate by candidate in the same locator order,
        without looking further: whether a plate is readable at all (a precheck), not which plate is
        the one the verdict rests on. An empty reading when none is kept."""
        for step in self.steps:
            located = step.locator.locate(image)[: step.max_candidates]
            candidates = sorted(
                (c for c in located if self._plate_shaped(c.corners)), key=lambda c: -quad_size(c.corners)[1]
            )
            for candidate in candidates:
                kept = [r for r in self.reader.read_each(image, [candidate]) if self._acceptable(r, step)]
                if kept:
                    return max(kept, key=_rank)
        return PlateReading()

    def _sure(self, reading: PlateReading) -> bool:
        return _valid(reading) and _color_consistent(reading) and (reading.confidence or 0.0) >= self.stop_confidence

    def _plate_shaped(self, corners: np.ndarray) -> bool:
        width, height = quad_size(corners)
        return height > 0 and self.aspect_range[0] <= width / height <= self.aspect_range[1]

    def _acceptable(self, reading: PlateReading, step: Step) -> bool:
        if not reading.text:
            return False
        if _valid(reading):
            return True
        # Off-grammar text is worth reporting only from a locator that looks for plates, as long as
        # a plate, and shaped like one: never a date stamp or a phone number read as digits.
        return (
            step.plate_specific
            and len(reading.text) >= self.invalid_min_length
            and (reading.confidence or 0.0) >= self.invalid_min_confidence
            and plates.plate_like(reading.text)
        )


def _merged(
    found: list[PlateReading], reading: PlateReading, sure: Callable[[PlateReading], bool]
) -> list[PlateReading]:
    """``found`` with ``reading`` added, or put in place of an earlier reading of the same plate
    (same text, or boxes that mostly overlap) when it is the better one."""
    for i, seen in enumerate(found):
        if seen.text == reading.text or _same_place(seen, reading):
            if (sure(reading), *_rank(reading)) > (sure(seen), *_rank(seen)):
                return [*found[:i], reading, *found[i + 1 :]]
            return found
    return [*found, reading]


def _same_place(a: PlateReading, b: PlateReading, overlap_min: float = 0.5) -> bool:
    """Boxes that share at least ``overlap_min`` of the smaller one: a plate and its text line, or
    one plate found by two locators."""
    if a.box is None or b.box is None:
        return False
    ix = max(0.0, min(a.box.x2, b.box.x2) - max(a.box.x1, b.box.x1))
    iy = max(0.0, min(a.box.y2, b.box.y2) - max(a.box.y1, b.box.y1))
    smaller = min(a.box.area, b.box.area)
    return smaller > 0 and ix * iy >= overlap_min * smaller


def _valid(reading: PlateReading) -> bool:
    return reading.known_format is Answer.YES


def _color_consistent(reading: PlateReading) -> bool:
    """False when the plate's colour is known and its type is never issued in that colour."""
    if not _valid(reading) or reading.color is PlateColor.UNKNOWN or reading.text is None:
        return True
    return reading.color.value in plates.parse(reading.text).expected_colors


def _rank(reading: PlateReading) -> tuple[bool, bool, float]:
    return (_valid(reading), _color_consistent(reading), reading.confidence or 0.0)
