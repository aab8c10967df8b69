"""Person and vehicle detectors: YOLOX-Nano through onnxruntime (shipped), or any ultralytics YOLO.

Both label what they find by COCO class id; ``VEHICLE_KINDS`` says which ids are vehicles.
"""

from __future__ import annotations

import functools
import os
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import cv2
import numpy as np

from compliance.judgments import Box, VehicleKind
from compliance.lazy import LazyModel, ModelFileError, file_sha256, verified_model_file
from compliance.multistage.base import Detection, Detector, Image
from compliance.settings import Settings

if TYPE_CHECKING:
    import onnxruntime

PERSON_COCO_ID: Final = 0
VEHICLE_KINDS: Final[dict[int, VehicleKind]] = {
    2: VehicleKind.CAR,
    3: VehicleKind.MOTORCYCLE,
    5: VehicleKind.BUS,
    7: VehicleKind.TRUCK,
    # Small COCO detectors call close-up cars "train" (see the YOLOX README); by a roadside that
    # is a vehicle whose kind the detector could not tell.
    6: VehicleKind.UNKNOWN,
}
COCO_CLASS_COUNT: Final = 80

YOLOX_NANO_SHA256: Final = "c789161ed43c8269fcd4e67c67eeeb4e80c622da2eb296a20bc6007bd18a0b7d"
_YOLOX_INPUT: Final = 416
_YOLOX_STRIDES: Final = (8, 16, 32)
_LETTERBOX_FILL: Final = 114.0
_PULL_HINT: Final = "run `compliance models pull`, or set COMPLIANCE_YOLO_WEIGHTS to the weights file's path"


def coco_names(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _yolox_dir() -> Path:
    # Package data: a real folder for a normal or editable install, which onnxruntime needs.
    return Path(str(resources.files("compliance").joinpath("models", "yolox_nano")))


@functools.cache
def _coco_names() -> tuple[str, ...]:
    return coco_names(_yolox_dir() / "coco.names")


def _clipped_box(xyxy: np.ndarray, width: int, height: int, score: float, label: str) -> Box:
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    return Box(
        x1=min(max(x1, 0.0), float(width)),
        y1=min(max(y1, 0.0), float(height)),
        x2=min(max(x2, 0.0), float(width)),
        y2=min(max(y2, 0.0), float(height)),
        score=score,
        label=label,
    )


def _yolox_grid() -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (N, 2) and strides (N, 1) in the order of the model's 3549 output rows."""
    cells, strides = [], []
    for stride in _YOLOX_STRIDES:
        side = _YOLOX_INPUT // stride
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        strides.append(np.full((side * side, 1), stride))
    return np.concatenate(cells).astype(np.float32), np.concatenate(strides).astype(np.float32)


class YoloxDetector(LazyModel["onnxruntime.InferenceSession"]):
    """YOLOX-Nano on COCO, about 10 ms a photo on two CPU cores; ships with the package."""

    name = "yolox-nano"

    def __init__(
        self,
        score_min: float = 0.3,
        nms_iou: float = 0.45,
        model_path: Path | None = None,
        expected_sha256: str | None = YOLOX_NANO_SHA256,
    ) -> None:
        super().__init__()
        self.score_min = score_min
        self.nms_iou = nms_iou
        self.model_path = model_path or _yolox_dir() / "yolox_nano.onnx"
        self.expected_sha256 = expected_sha256
        self._cells, self._strides = _yolox_grid()

    def _load(self) -> onnxruntime.InferenceSession:
        import onnxruntime

        path = verified_model_file(self.model_path, self.expected_sha256)
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    @property
    def version(self) -> str:
        if self.expected_sha256 is not None:
            return self.expected_sha256[:12]
        return file_sha256(self.model_path)[:12] if self.model_path.is_file() else "unknown"

    def _letterbox(self, image: Image) -> tuple[np.ndarray, float]:
        height, width = image.shape[:2]
        ratio = min(_YOLOX_INPUT / height, _YOLOX_INPUT / width)
        resized = cv2.resize(
            image,
            (max(1, round(width * ratio)), max(1, round(height * ratio))),
            interpolation=cv2.INTER_LINEAR,
        )
        canvas = np.full((_YOLOX_INPUT, _YOLOX_INPUT, 3), _LETTERBOX_FILL, dtype=np.float32)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        return canvas.transpose(2, 0, 1)[np.newaxis], ratio

    def detect(self, image: Image) -> list[Detection]:
        session = self.load()
        blob, ratio = self._letterbox(image)
        rows = session.run(None, {session.get_inputs()[0].name: blob})[0][0]

        class_ids = rows[:, 5:].argmax(axis=1)
        scores = rows[:, 4] * rows[np.arange(len(rows)), 5 + class_ids]
        keep = scores >= self.score_min
        if not keep.any():
            return []
        rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        centres = (rows[:, :2] + self._cells[keep]) * self._strides[keep]
        sizes = np.exp(rows[:, 2:4]) * self._strides[keep]
        xyxy = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / ratio

        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        kept = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), self.score_min, self.nms_iou)
        height, width = image.shape[:2]
        detections = [
            Detection(
                coco_id=int(class_ids[i]),
                box=_clipped_box(xyxy[i], width, height, float(scores[i]), _coco_names()[int(class_ids[i])]),
            )
            for i in np.asarray(kept, dtype=int).ravel()
        ]
        return sorted(detections, key=lambda d: d.score, reverse=True)


class UltralyticsDetector(LazyModel[Any]):
    """Any ultralytics YOLO trained on COCO (``yolo11n.pt`` by default), or a model yaml.

    The class index is taken as the COCO id. Weights must already be on disk: this never downloads.
    """

    name = "ultralytics"

    def __init__(
        self,
        weights: str | Path = "yolo11n.pt",
        score_min: float = 0.3,
        nms_iou: float = 0.45,
        image_size: int = 640,
    ) -> None:
        super().__init__()
        self.weights = str(weights)
        self.score_min = score_min
        self.nms_iou = nms_iou
        self.image_size = image_size
        self._predict_lock = threading.Lock()  # an ultralytics model is not safe to share across threads
        self._version: str | None = None

    @property
    def _from_yaml(self) -> bool:
        return Path(self.weights).suffix in {".yaml", ".yml"}

    def _load(self) -> Any:
        path = Path(self.weights)
        if not self._from_yaml and not path.is_file():
            raise ModelFileError(f"YOLO weights {path.resolve()} not found: {_PULL_HINT}")
        # Set before ultralytics is first imported: it checks connectivity on import.
        os.environ.setdefault("YOLO_OFFLINE", "1")
        from ultralytics import YOLO

        model = YOLO(self.weights)
        if len(model.names) != COCO_CLASS_COUNT:
            raise ModelFileError(
                f"{self.weights} has {len(model.names)} classes; class ids are read as COCO ids, "
                f"so it must be a {COCO_CLASS_COUNT}-class COCO model"
            )
        return model

    @property
    def version(self) -> str:
        if self._version is None:
            path = Path(self.weights)
            if path.is_file():
                self._version = file_sha256(path)[:12]
            elif self._from_yaml:
                self._version = f"{path.stem}-untrained"
            else:
                return "unknown"
        return self._version

    @staticmethod
    def _label(model: Any, class_id: int) -> str:
        name = str(model.names[class_id])
        # A model built from a yaml names its classes by number only.
        return _coco_names()[class_id] if name.isdigit() else name

    def detect(self, image: Image) -> list[Detection]:
        model = self.load()
        with self._predict_lock:
            result = model.predict(
                image,
                conf=self.score_min,
                iou=self.nms_iou,
                imgsz=self.image_size,
                device="cpu",
                verbose=False,
            )[0]
        boxes = result.boxes
        xyxy = boxes.xyxy.cpu().numpy()
        scores = boxes.conf.cpu().numpy()
        class_ids = boxes.cls.cpu().numpy().astype(int)
        height, width = image.shape[:2]
        detections = [
            Detection(
                coco_id=int(class_id),
                box=_clipped_box(xyxy[i], width, height, float(scores[i]), self._label(model, class_id)),
            )
            for i, class_id in enumerate(class_ids)
        ]
        return sorted(detections, key=lambda d: d.score, reverse=True)


def build_detector(settings: Settings) -> Detector:
    if settings.detector == "ultralytics":
        return UltralyticsDetector(settings.yolo_weights, score_min=settings.detector_score_min)
    return YoloxDetector(score_min=settings.detector_score_min)
