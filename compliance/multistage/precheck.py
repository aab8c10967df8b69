"""The precheck: what a driver can fix by taking the photo again, found with the multistage
pipeline's own models and settings, skipping what a retake cannot fix.

Against ``MultistagePipeline.judge`` it leaves out:

- the face's embedding and its match with the licence (the face is only looked for, by the same
  detector and search: whether the photo shows a face, not whose);
- the face search altogether where the detector found no person ("no person" is then the problem);
- reading the plate beyond the first plate-shaped text read (no search for the surest reading, no
  second recogniser to confirm it): whether a plate is readable, not which plate it is.

The photo is not made smaller: every stage looks at it as the pipeline does, so that its findings
agree with the pipeline's judgments of the same things (``bench/precheck.py`` measures both).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from compliance.judgments import Answer, PlateReading
from compliance.multistage.base import Detector, Image
from compliance.multistage.detectors import PERSON_COCO_ID
from compliance.multistage.faces import SFaceMatcher
from compliance.multistage.pipeline import MultistagePipeline, _vehicles
from compliance.multistage.plate_stage import PlateStage
from compliance.photos import measure_quality
from compliance.prechecks import PrecheckFindings


class Prechecker:
    def __init__(self, detector: Detector, plates: PlateStage, faces: SFaceMatcher, score_min: float) -> None:
        self.detector = detector
        self.plates = plates
        self.faces = faces
        self.score_min = score_min

    @classmethod
    def sharing(cls, pipeline: MultistagePipeline) -> Prechecker:
        """A precheck on the very models (loaded once) and settings of ``pipeline``."""
        if not isinstance(pipeline.plates, PlateStage) or not isinstance(pipeline.faces, SFaceMatcher):
            raise TypeError("a precheck needs the default plate stage and face matcher")
        return cls(pipeline.detector, pipeline.plates, pipeline.faces, pipeline.score_min)

    def check(self, scene: Image) -> PrecheckFindings:
        latency: dict[str, float] = {}
        with _timed(latency, "quality"):
            quality = measure_quality(scene)
        with _timed(latency, "detect"):
            detections = [d for d in self.detector.detect(scene) if d.score >= self.score_min]
        person = any(d.coco_id == PERSON_COCO_ID for d in detections)
        face = Answer.UNKNOWN
        if person:
            with _timed(latency, "face"):
                face = Answer.of(self.faces.find_face(scene) is not None)
        with _timed(latency, "plate"):
            plate: PlateReading = self.plates.first_reading(scene)
        vehicle = _vehicles(detections, plate, scene.shape[0] * scene.shape[1]).present
        return PrecheckFindings(
            blur=quality.blur,
            brightness=quality.brightness,
            person=Answer.of(person),
            face=face,
            vehicle=vehicle,
            plate_readable=Answer.of(plate.readable),
            latency_ms=latency,
        )


@contextmanager
def _timed(latency: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    latency[stage] = round((time.perf_counter() - start) * 1000.0, 2)
