"""The small Protocols that each stage of the multistage pipeline implements.

Arrays in (BGR ``uint8`` images, as OpenCV reads them), typed objects out. Adding a model is
adding one class that satisfies one of these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from compliance.judgments import Answer, Box, FaceMatch, PlateReading
from compliance.pipeline import Image
from compliance.settings import Thresholds


@dataclass(frozen=True, slots=True)
class Detection:
    """An object found by a detector, labelled by its COCO class id."""

    coco_id: int
    box: Box

    @property
    def score(self) -> float:
        return self.box.score or 0.0


@runtime_checkable
class Detector(Protocol):
    name: str

    @property
    def version(self) -> str: ...

    def detect(self, image: Image) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class PlateCandidate:
    """Where a plate may be: four corners (tl, tr, br, bl) in image pixels."""

    corners: np.ndarray  # shape (4, 2) float32
    score: float
    source: str


@runtime_checkable
class PlateLocator(Protocol):
    name: str

    def locate(self, image: Image) -> list[PlateCandidate]: ...


@dataclass(frozen=True, slots=True)
class PlateFindings:
    """Every plate read in a photo, and the one the verdict rests on (in ``plates`` when it has text)."""

    plate: PlateReading
    plates: tuple[PlateReading, ...]


@runtime_checkable
class PlateReader(Protocol):
    name: str

    def read(self, image: Image, candidates: list[PlateCandidate]) -> PlateReading: ...

    def read_each(self, image: Image, candidates: list[PlateCandidate]) -> list[PlateReading]: ...


@runtime_checkable
class FaceMatcher(Protocol):
    name: str

    @property
    def version(self) -> str: ...

    def match(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> FaceMatch: ...


@dataclass(frozen=True, slots=True)
class LiveScore:
    """Whether a face is live: ``live`` unknown (and no score) where the face is too small to judge."""

    live: Answer
    score: float | None = None
    threshold: float | None = None


@runtime_checkable
class LivenessChecker(Protocol):
    """Tells a live face from one shown on a screen or on paper, given where the face is."""

    name: str

    @property
    def version(self) -> str: ...

    def check(self, image: Image, face: Box, thresholds: Thresholds | None = None) -> LiveScore: ...
