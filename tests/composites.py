"""A driver beside a vehicle, composed from two real dev photos (a portrait and a parked car), as
``compliance compose`` composes its scenes: there are no public photos of drivers by their trucks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from compliance.photos import read_photo_file

# Clear enough for the baseline to settle: a portrait beside a parked car whose plate reads surely.
PORTRAIT = "faces/fr_obama_1.jpg"
LICENCE = "faces/fr_obama_2.jpg"  # another photo of the same man
VEHICLE = "plates/ccpd_demo_3.jpg"
PLATE = "皖AMK620"


def dev_image(dev_dir: Path, name: str) -> np.ndarray:
    return read_photo_file(dev_dir / name, max_bytes=1 << 26, max_pixels=80_000_000).image


def beside(portrait: np.ndarray, vehicle: np.ndarray) -> np.ndarray:
    """The portrait scaled to the vehicle photo's height, on its left."""
    height = vehicle.shape[0]
    width = round(portrait.shape[1] * height / portrait.shape[0])
    return np.hstack([cv2.resize(portrait, (width, height), interpolation=cv2.INTER_AREA), vehicle])


def driver_by_vehicle(dev_dir: Path) -> np.ndarray:
    return beside(dev_image(dev_dir, PORTRAIT), dev_image(dev_dir, VEHICLE))


def jpeg(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()
