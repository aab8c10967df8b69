"""The composed multistage pipeline on real photos: one Judgments, every field from a model."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from compliance.demo import samples_dir
from compliance.judgments import Answer, VehicleKind
from compliance.pipeline import Pipeline
from compliance.pipelines import get_pipeline
from compliance.settings import Settings

SAMPLES = samples_dir()


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return get_pipeline("multistage", Settings())


def test_the_compliant_sample_is_judged_fully(pipeline: Pipeline) -> None:
    scene = cv2.imread(str(SAMPLES / "a_by_car_wanAUJ299.jpg"))
    licence = cv2.imread(str(SAMPLES / "licence_a.jpg"))
    j = pipeline.judge(scene, licence)
    assert j.person.present is Answer.YES and j.person.count and j.person.count >= 1
    assert j.vehicle.present is Answer.YES
    assert j.plate.text == "皖AUJ299" and j.plate.known_format is Answer.YES
    assert j.plates == (j.plate,)  # every plate read, the verdict's one among them
    assert j.face.same_person is Answer.YES
    assert j.provenance.pipeline == "multistage"
    assert {"detect", "plate", "face", "quality"} <= j.provenance.latency_ms.keys()
    assert all(v != "unknown" for v in j.provenance.models.values())


def test_nobody_and_no_plate(pipeline: Pipeline, dev_dir: Path) -> None:
    j = pipeline.judge(cv2.imread(str(dev_dir / "scenes" / "sam_truck.jpg")), None)
    assert j.person.present is Answer.NO
    assert j.vehicle.present is Answer.YES and j.vehicle.kind is VehicleKind.TRUCK
    assert j.face.licence_face is Answer.UNKNOWN and j.face.same_person is Answer.UNKNOWN


def test_people_without_a_vehicle(pipeline: Pipeline, dev_dir: Path) -> None:
    j = pipeline.judge(cv2.imread(str(dev_dir / "scenes" / "yolov5_zidane.jpg")), None)
    assert j.person.present is Answer.YES and (j.person.count or 0) >= 2
    assert j.vehicle.present is Answer.NO
    assert j.plate.text is None
    assert j.plates == ()


def test_a_close_up_plate_counts_as_a_vehicle_but_a_plate_crop_does_not(pipeline: Pipeline, dev_dir: Path) -> None:
    close_up = pipeline.judge(cv2.imread(str(dev_dir / "plates" / "zhiju_ccpd_10.jpg")), None)
    assert close_up.plate.known_format is Answer.YES
    assert close_up.vehicle.present is Answer.YES
    crop = pipeline.judge(cv2.imread(str(dev_dir / "plates" / "sirius_crop_03.jpg")), None)
    assert crop.plate.text == "沪AMS087"
    assert crop.vehicle.present is Answer.NO  # a plate alone is not a vehicle


def test_models_load_once_per_process() -> None:
    settings = Settings()
    assert get_pipeline("multistage", settings) is get_pipeline("multistage", Settings())
