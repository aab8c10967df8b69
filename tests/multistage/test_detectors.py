"""Person and vehicle detectors on the real dev scenes, and their failures when files are wrong."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from compliance.judgments import VehicleKind
from compliance.multistage.base import Detection, Detector
from compliance.multistage.detectors import (
    PERSON_COCO_ID,
    VEHICLE_KINDS,
    ModelFileError,
    UltralyticsDetector,
    YoloxDetector,
    build_detector,
    coco_names,
)
from compliance.settings import Settings

YOLOX_DIR = Path(__file__).resolve().parents[2] / "compliance" / "models" / "yolox_nano"


@pytest.fixture(scope="module")
def yolox() -> YoloxDetector:
    return YoloxDetector()


def read(dev_dir: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(dev_dir / name))
    assert image is not None, name
    return image


def assert_inside(detections: list[Detection], image: np.ndarray) -> None:
    height, width = image.shape[:2]
    for detection in detections:
        box = detection.box
        assert 0 <= box.x1 < box.x2 <= width and 0 <= box.y1 < box.y2 <= height, box
        assert detection.score is not None and 0.0 < detection.score <= 1.0


def kinds(detections: list[Detection]) -> set[VehicleKind]:
    return {VEHICLE_KINDS[d.coco_id] for d in detections if d.coco_id in VEHICLE_KINDS}


def test_yolox_finds_the_people_in_zidane(yolox: YoloxDetector, dev_dir: Path) -> None:
    image = read(dev_dir, "scenes/yolov5_zidane.jpg")
    detections = yolox.detect(image)
    people = [d for d in detections if d.coco_id == PERSON_COCO_ID]
    assert people and all(d.box.label == "person" for d in people)
    assert all(d.score >= yolox.score_min for d in detections)
    assert_inside(detections, image)


def test_yolox_finds_the_bus(yolox: YoloxDetector, dev_dir: Path) -> None:
    image = read(dev_dir, "scenes/yolov5_bus.jpg")
    detections = yolox.detect(image)
    assert VehicleKind.BUS in kinds(detections)
    assert_inside(detections, image)


def test_yolox_sees_a_truck_and_no_person_in_the_truck_photo(yolox: YoloxDetector, dev_dir: Path) -> None:
    image = read(dev_dir, "scenes/sam_truck.jpg")
    detections = yolox.detect(image)
    assert not [d for d in detections if d.coco_id == PERSON_COCO_ID]
    assert kinds(detections)
    assert_inside(detections, image)


def test_yolox_agrees_with_every_scene_label(yolox: YoloxDetector, dev_dir: Path) -> None:
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as handle:
        scenes = [row for row in csv.DictReader(handle) if row["kind"] == "scene"]
    assert scenes
    for row in scenes:
        image = read(dev_dir, row["file"])
        detections = yolox.detect(image)
        has_person = any(d.coco_id == PERSON_COCO_ID for d in detections)
        assert has_person == (not row["person_count"].startswith("0")), row["file"]
        assert bool(kinds(detections)) == (not row["vehicle_class"].startswith("none")), row["file"]
        assert_inside(detections, image)


def test_yolox_refuses_a_file_with_the_wrong_digest(tmp_path: Path, dev_dir: Path) -> None:
    tampered = tmp_path / "yolox_nano.onnx"
    shutil.copy(YOLOX_DIR / "yolox_nano.onnx", tampered)
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    detector = YoloxDetector(model_path=tampered)
    with pytest.raises(ModelFileError, match="sha256"):
        detector.detect(read(dev_dir, "scenes/yolov5_bus.jpg"))
    assert not detector.loaded


def test_yolox_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        YoloxDetector(model_path=tmp_path / "absent.onnx").load()


def test_ultralytics_from_a_yaml_runs_offline_and_labels_by_coco_id(dev_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    # Random weights: content is meaningless, so a near-zero floor keeps some boxes to check.
    detector = UltralyticsDetector("yolo11n.yaml", score_min=1e-6)
    image = read(dev_dir, "scenes/yolov5_bus.jpg")
    detections = detector.detect(image)
    assert isinstance(detector, Detector)
    assert detections
    names = coco_names(YOLOX_DIR / "coco.names")
    for detection in detections:
        assert isinstance(detection, Detection)
        assert isinstance(detection.coco_id, int) and 0 <= detection.coco_id < 80
        assert detection.box.label == names[detection.coco_id]
    assert [d.score for d in detections] == sorted((d.score for d in detections), reverse=True)
    assert_inside(detections, image)
    assert detector.version == "yolo11n-untrained"


def test_ultralytics_missing_weights_say_to_pull(tmp_path: Path) -> None:
    detector = UltralyticsDetector(tmp_path / "yolo11n.pt")
    with pytest.raises(ModelFileError, match="compliance models pull"):
        detector.load()
    assert not (tmp_path / "yolo11n.pt").exists()


def test_build_detector_follows_settings(tmp_path: Path) -> None:
    default = build_detector(Settings(detector_score_min=0.4))
    assert isinstance(default, YoloxDetector) and default.score_min == 0.4
    chosen = build_detector(Settings(detector="ultralytics", yolo_weights=str(tmp_path / "w.pt")))
    assert isinstance(chosen, UltralyticsDetector) and chosen.weights == str(tmp_path / "w.pt")
    assert not chosen.loaded
