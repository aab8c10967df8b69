"""The multistage baseline: detector, plate stage and face matcher composed into one Judgments."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from compliance.judgments import (
    Answer,
    FaceMatch,
    Judgments,
    PersonJudgment,
    PlateReading,
    Provenance,
    VehicleJudgment,
)
from compliance.lazy import load_models
from compliance.multistage.base import Detection, Detector, FaceMatcher, Image, LivenessChecker, PlateFindings
from compliance.multistage.detectors import PERSON_COCO_ID, VEHICLE_KINDS
from compliance.photos import measure_quality
from compliance.settings import Settings, Thresholds

# A plate filling more of the frame than this is a plate photo, not a vehicle photo.
MOUNTED_PLATE_MAX_SHARE = 0.25


class PlateReadingStage(Protocol):
    """Finds and reads every plate; composed of locators and a reader (see plate_stage.py)."""

    @property
    def models(self) -> dict[str, str]: ...

    def read_all(self, image: Image) -> PlateFindings: ...


class MultistagePipeline:
    name = "multistage"

    def __init__(
        self,
        detector: Detector,
        plates: PlateReadingStage,
        faces: FaceMatcher,
        score_min: float,
        liveness: LivenessChecker | None = None,
    ) -> None:
        self.detector = detector
        self.plates = plates
        self.faces = faces
        self.score_min = score_min
        # None: the scene's face is not judged for liveness (its live answer stays unknown).
        self.liveness = liveness

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        latency: dict[str, float] = {}
        with _timed(latency, "detect"):
            detections = [d for d in self.detector.detect(scene) if d.score >= self.score_min]
        with _timed(latency, "plate"):
            found = self.plates.read_all(scene)
        plate = found.plate
        with _timed(latency, "face"):
            face = self.faces.match(scene, licence, thresholds)
        if self.liveness is not None and face.scene_box is not None:
            with _timed(latency, "live"):
                live = self.liveness.check(scene, face.scene_box, thresholds)
            face = face.model_copy(
                update={"live": live.live, "live_score": live.score, "live_threshold": live.threshold}
            )
        with _timed(latency, "quality"):
            quality = measure_quality(scene)
        return Judgments(
            person=_people(detections),
            vehicle=_vehicles(detections, plate, scene.shape[0] * scene.shape[1]),
            plate=plate,
            plates=found.plates,
            face=face,
            quality=quality,
            provenance=Provenance(pipeline=self.name, models=self.models, latency_ms=latency),
        )

    def judge_batch(
        self, items: Sequence[tuple[Image, Image | None]], thresholds: Thresholds | None = None
    ) -> list[Judgments]:
        """One photo after another: the CPU models gain nothing from a batch."""
        return [self.judge(scene, licence, thresholds) for scene, licence in items]

    def load(self) -> None:
        load_models(self.detector, self.plates, self.faces, self.liveness)

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        return self.faces.match(a, b, thresholds)

    @property
    def models(self) -> dict[str, str]:
        found = {self.detector.name: self.detector.version, self.faces.name: self.faces.version, **self.plates.models}
        if self.liveness is not None:
            found[self.liveness.name] = self.liveness.version
        return found


def _people(detections: list[Detection]) -> PersonJudgment:
    boxes = tuple(d.box for d in detections if d.coco_id == PERSON_COCO_ID)
    return PersonJudgment(present=Answer.of(bool(boxes)), count=len(boxes), boxes=boxes)


def _vehicles(detections: list[Detection], plate: PlateReading, image_area: int) -> VehicleJudgment:
    found = [d for d in detections if d.coco_id in VEHICLE_KINDS]
    if found:
        # The nearest (largest) vehicle is the one the driver stands by.
        main = max(found, key=lambda d: d.box.area)
        return VehicleJudgment(present=Answer.YES, kind=VEHICLE_KINDS[main.coco_id], boxes=tuple(d.box for d in found))
    if _mounted_plate(plate, image_area):
        # Close-ups of a car's front defeat a small COCO detector, but a valid plate found inside the
        # scene is on a vehicle. Which kind of vehicle no model said, so the kind stays unknown.
        return VehicleJudgment(present=Answer.YES)
    return VehicleJudgment(present=Answer.NO)


def _mounted_plate(plate: PlateReading, image_area: int) -> bool:
    """A grammar-valid plate that is a small part of the photo, not a photo of a plate alone."""
    if plate.known_format is not Answer.YES or plate.box is None or image_area <= 0:
        return False
    return plate.box.area <= MOUNTED_PLATE_MAX_SHARE * image_area


@contextmanager
def _timed(latency: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    latency[stage] = round((time.perf_counter() - start) * 1000.0, 2)


def build_pipeline(settings: Settings) -> MultistagePipeline:
    """For the registry, ``compliance.pipelines``: the default stages, from settings."""
    from compliance.multistage.detectors import build_detector
    from compliance.multistage.faces import SFaceMatcher
    from compliance.multistage.liveness import MiniFASNetChecker
    from compliance.multistage.plate_stage import PlateStage

    return MultistagePipeline(
        detector=build_detector(settings),
        plates=PlateStage.default(),
        faces=SFaceMatcher(thresholds=settings.thresholds),
        score_min=settings.detector_score_min,
        liveness=MiniFASNetChecker(thresholds=settings.thresholds),
    )
