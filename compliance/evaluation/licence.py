"""A portrait made to look like the photo on a driver's licence, as it reaches the checker in practice.

A licence (驾驶证) carries a small head-and-shoulders ID photo; what a carrier has on record is a
scan or phone photo of it: a picture ``px`` pixels tall, often grey, heavily JPEG-compressed. The
face then is about half the picture's height (60 px at 120 px).

The framing is found with OpenCV's Haar frontal-face cascade, which ships with OpenCV and is not a
model the checker uses, so the evaluation data does not lean on the matcher it measures. A portrait
in which the cascade finds no face is shrunk whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

# ID-photo framing: the crop is this many face heights tall, 3:4 (width:height), the face's centre
# this far down from its top.
_CROP_FACE_HEIGHTS = 2.0
_CROP_ASPECT = 0.75
_FACE_CENTRE_FROM_TOP = 0.45
_DETECT_SIDE = 800


@dataclass(frozen=True, slots=True)
class LicenceLook:
    """How a licence photo is degraded: its height in pixels, grey or colour, JPEG quality."""

    px: int = 120
    grey: bool = True
    jpeg_quality: int = 35

    def __post_init__(self) -> None:
        if not 16 <= self.px <= 2000:
            raise ValueError(f"licence size {self.px} px is outside 16..2000")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality {self.jpeg_quality} is outside 1..100")

    @property
    def label(self) -> str:
        return f"{self.px} px, {'grey' if self.grey else 'colour'}, JPEG q{self.jpeg_quality}"


@lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FileNotFoundError(f"OpenCV's face cascade is missing: {path}")
    return cascade


def _largest_face(image: np.ndarray) -> tuple[float, float, float, float] | None:
    h, w = image.shape[:2]
    scale = min(1.0, _DETECT_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    found = _cascade().detectMultiScale(grey, scaleFactor=1.1, minNeighbors=6, minSize=(24, 24))
    if len(found) == 0:
        return None
    x, y, fw, fh = max(found, key=lambda f: f[2] * f[3])
    return x / scale, y / scale, fw / scale, fh / scale


def id_framing(image: np.ndarray) -> np.ndarray:
    """The head-and-shoulders crop an ID photo would show (the whole image if no face is found)."""
    face = _largest_face(image)
    if face is None:
        return image
    x, y, fw, fh = face
    h, w = image.shape[:2]
    crop_h = min(float(h), _CROP_FACE_HEIGHTS * fh)
    crop_w = min(float(w), crop_h * _CROP_ASPECT)
    left = min(max(0.0, x + fw / 2 - crop_w / 2), w - crop_w)
    top = min(max(0.0, y + fh / 2 - crop_h * _FACE_CENTRE_FROM_TOP), h - crop_h)
    return image[round(top) : round(top + crop_h), round(left) : round(left + crop_w)]


def licence_jpeg(image: np.ndarray, look: LicenceLook) -> bytes:
    """The portrait (BGR) as a licence photo's JPEG bytes."""
    framed = id_framing(image)
    h, w = framed.shape[:2]
    scale = look.px / h
    small = cv2.resize(framed, (max(1, round(w * scale)), look.px), interpolation=cv2.INTER_AREA)
    if look.grey:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg_quality])
    if not ok:
        raise ValueError("could not encode the licence photo")
    return encoded.tobytes()


def licence_image(image: np.ndarray, look: LicenceLook) -> np.ndarray:
    """The licence photo decoded again (BGR), as a reader of its JPEG bytes sees it."""
    return cv2.imdecode(np.frombuffer(licence_jpeg(image, look), np.uint8), cv2.IMREAD_COLOR)
