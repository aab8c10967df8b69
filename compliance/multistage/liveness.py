"""Is the scene's face live, or a face shown on a screen or on paper? Two MiniFASNet models decide.

The models (minivision-ai/Silent-Face-Anti-Spoofing, Apache-2.0) ship as package data in ONNX form
and run through onnxruntime, as YOLOX-Nano does. Each sees an 80x80 patch of the photo around the
face box, grown about its centre by its own scale (2.7 and 4.0: the face and what surrounds it, a
phone's bezel or a print's edge); the live score is the mean of the two models' probability of a
live face (class 1 of 3, after a softmax).

They were trained on phone selfies, where the face is large. A face shorter than ``MIN_FACE_PX``
in the photo is not judged: its live answer is ``unknown``, with no score, never a guess (README,
"Liveness", says how that size was measured).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

import cv2
import numpy as np

from compliance.judgments import Answer, Box
from compliance.lazy import LazyModel, verified_model_file
from compliance.multistage.base import Image, LiveScore
from compliance.settings import Thresholds

if TYPE_CHECKING:
    import onnxruntime


@dataclass(frozen=True, slots=True)
class _Model:
    file: str
    sha256: str
    scale: float


MODELS: Final = (
    _Model("2.7_80x80_MiniFASNetV2.onnx", "44e7dcfe2c57d941acea7c4787df94d0f4dae45a812bc0deaa0a1663e751ecd9", 2.7),
    _Model("4_0_0_80x80_MiniFASNetV1SE.onnx", "efc8735418d796145e4a6358aeda18d69ab8de4acd768238fd3b302e144e97af", 4.0),
)
_PATCH: Final = 80
_LIVE_CLASS: Final = 1
# Faces shorter than this (YuNet's box, in the photo's pixels) are not judged. Measured by shrinking
# the dev spoof set's photos (bench/liveness.py): the weakest live face scored 0.45 at its own 508 px,
# 0.32-0.36 at 64-128 px, 0.28 at 56 and 0.20 at 40-48, under live_min; spoofs stayed under 0.21.
MIN_FACE_PX: Final = 64


def _model_dir() -> Path:
    # Package data: a real folder for a normal or editable install, which onnxruntime needs.
    return Path(str(resources.files("compliance").joinpath("models", "minifasnet")))


def patch_box(width: int, height: int, face: Box, scale: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), inclusive: the face box grown by ``scale`` about its centre (less
    where it would not fit), shifted back inside the photo. The authors' own arithmetic."""
    box_w, box_h = max(face.width, 1.0), max(face.height, 1.0)
    scale = min((height - 1) / box_h, (width - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = face.x1 + box_w / 2, face.y1 + box_h / 2
    left, top, right, bottom = cx - new_w / 2, cy - new_h / 2, cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > width - 1:
        left -= right - width + 1
        right = width - 1
    if bottom > height - 1:
        top -= bottom - height + 1
        bottom = height - 1
    return int(left), int(top), int(right), int(bottom)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class MiniFASNetChecker(LazyModel["tuple[onnxruntime.InferenceSession, ...]"]):
    """The live score of one face: the two models take 4 and 7 ms on one CPU thread; ships with the package."""

    name = "minifasnet"

    def __init__(
        self, thresholds: Thresholds | None = None, model_dir: Path | None = None, min_face_px: float = MIN_FACE_PX
    ) -> None:
        super().__init__()
        self.thresholds = thresholds or Thresholds()
        self.model_dir = model_dir
        self.min_face_px = min_face_px

    def _load(self) -> tuple[onnxruntime.InferenceSession, ...]:
        import onnxruntime

        folder = self.model_dir or _model_dir()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        return tuple(
            onnxruntime.InferenceSession(
                str(verified_model_file(folder / m.file, m.sha256)), options, providers=["CPUExecutionProvider"]
            )
            for m in MODELS
        )

    @property
    def version(self) -> str:
        return "+".join(f"{m.file.split('_')[-1].removesuffix('.onnx')}-{m.sha256[:8]}" for m in MODELS)

    def score(self, image: Image, face: Box) -> float:
        """The live score of the face, whatever its size (``check`` refuses small faces)."""
        height, width = image.shape[:2]
        sessions = self.load()
        live = []
        for model, session in zip(MODELS, sessions, strict=True):
            left, top, right, bottom = patch_box(width, height, face, model.scale)
            crop = image[top : bottom + 1, left : right + 1]
            if crop.ndim == 2:
                crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
            # Area averaging, not the authors' bilinear resize: a phone photo's face crop is 300-3000 px,
            # and sampling every tenth pixel of it aliases. On the dev spoof set bilinear scored a print
            # 0.53 (above a live face in a dev scene, 0.51); averaged, 0.20 (README, "Liveness").
            patch = cv2.resize(crop, (_PATCH, _PATCH), interpolation=cv2.INTER_AREA)
            patch = patch.astype(np.float32).transpose(2, 0, 1)[np.newaxis]
            logits = session.run(None, {"input": np.ascontiguousarray(patch)})[0]
            live.append(float(_softmax(logits)[0, _LIVE_CLASS]))
        return float(np.mean(live))

    def check(self, image: Image, face: Box, thresholds: Thresholds | None = None) -> LiveScore:
        limits = thresholds or self.thresholds
        if face.height < self.min_face_px or image.size == 0:
            return LiveScore(live=Answer.UNKNOWN)
        score = round(self.score(image, face), 4)
        return LiveScore(live=Answer.of(score >= limits.live_min), score=score, threshold=limits.live_min)
