"""Whole submissions composed from a labelled manifest, to measure verdicts rather than parts.

There are no public driver-by-his-truck photos, so a submission is built from real photos of the
two things it shows: a portrait set beside a vehicle photo in one image, and the driver's licence
photo made from another portrait of the same person, degraded as a licence photo is
(``compliance.evaluation.licence``). For every two portraits of one identity it writes five cases:

- ``genuine``: that scene, the other portrait as licence, the true plate registered (PASS);
- ``wrong_person``: the same scene with another identity's licence (FAIL);
- ``wrong_plate``: another vehicle's plate registered (FAIL);
- ``near_plate``: the true plate with one character changed to one that does not look like it (FAIL);
- ``no_person``: the vehicle photo alone (FAIL).

Every composed photo carries an EXIF capture time inside its row's job window. The draws (which
vehicle, which other identity, which plate, which character) come from one seeded generator, so a
seed gives the same set on any machine.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from compliance import plates
from compliance.evaluation.licence import LicenceLook, licence_jpeg
from compliance.evaluation.manifest import ManifestError, read_manifest
from compliance.evaluation.submissions import SUBMISSION_COLUMNS
from compliance.photos import read_photo_file

CASES = ("genuine", "wrong_person", "wrong_plate", "near_plate", "no_person")
# Cameras write local time; the window is given with its offset, as carriers' systems send it.
_CHINA = timezone(timedelta(hours=8))
_FIRST_JOB = datetime(2026, 11, 2, 8, 0, tzinfo=_CHINA)
_JOB_LENGTH = timedelta(hours=2)
_TAKEN_AFTER_START = timedelta(minutes=40)
# Composed scenes are capped in size like a phone photo sent through a messaging app.
_MAX_SCENE_SIDE = 2048
_SCENE_QUALITY = 90
_PHOTO_LIMITS = {"max_bytes": 64 * 1024 * 1024, "max_pixels": 80_000_000}
# EXIF tags: DateTime (IFD0), and in the Exif IFD DateTimeOriginal and OffsetTimeOriginal.
_EXIF_IFD, _DATETIME, _DATETIME_ORIGINAL, _OFFSET_TIME_ORIGINAL = 0x8769, 0x0132, 0x9003, 0x9011


@dataclass(frozen=True, slots=True)
class ComposedSet:
    manifest: Path
    rows: int
    pairs: int


@dataclass(frozen=True, slots=True)
class _Vehicle:
    path: Path
    plate: str


def compose(labelled: Path, out_dir: Path, look: LicenceLook, seed: int = 0) -> ComposedSet:
    """Write the composed photos and ``submissions.csv`` into ``out_dir``; returns what was written."""
    rows = read_manifest(labelled)
    portraits: dict[str, list[Path]] = defaultdict(list)
    for row in rows:
        if row.kind == "face" and row.identity and ";" not in row.identity:
            portraits[row.identity].append(row.path)
    # Only vehicle photos with nobody in them: the ``no_person`` case shows one alone.
    vehicles = [
        _Vehicle(row.path, plates.normalise(row.plate_text))
        for row in rows
        if row.kind in ("plate", "scene")
        and row.plate_text
        and plates.parse(row.plate_text).valid
        and row.person_present is False
    ]
    pairs = [(identity, a, b) for identity, paths in portraits.items() for a, b in combinations(paths, 2)]
    if not pairs:
        raise ManifestError(f"{labelled}: no identity has two portraits (kind 'face', column 'identity')")
    if len(portraits) < 2:
        raise ManifestError(f"{labelled}: portraits of at least two identities are needed (the wrong_person case)")
    if len({v.plate for v in vehicles}) < 2:
        raise ManifestError(f"{labelled}: fewer than two vehicle photos with a readable plate")
    named = [*(v.path for v in vehicles), *(p for ps in portraits.values() for p in ps)]
    missing = [p for p in named if not p.is_file()]
    if missing:
        raise ManifestError(f"{labelled}: {len(missing)} photo(s) missing, e.g. {missing[0]}")

    rng = random.Random(seed)
    for folder in ("scenes", "licences"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    licences: dict[Path, str] = {}

    def licence_of(portrait: Path) -> str:
        if portrait not in licences:
            # Numbered: two portraits may share a file name in different folders.
            name = f"licences/{len(licences):03d}_{portrait.stem}_{look.px}px.jpg"
            (out_dir / name).write_bytes(licence_jpeg(_bgr(portrait), look))
            licences[portrait] = name
        return licences[portrait]

    written: list[dict[str, str]] = []
    for n, (identity, scene_portrait, licence_portrait) in enumerate(pairs):
        vehicle = rng.choice(vehicles)
        impostor = rng.choice([p for other, ps in portraits.items() if other != identity for p in ps])
        others = sorted({v.plate for v in vehicles if _unrelated(v.plate, vehicle.plate)})
        if not others:
            raise ManifestError(f"{labelled}: no other vehicle's plate differs clearly from {vehicle.plate}")
        other_plate = rng.choice(others)
        near = _near_plate(vehicle.plate, rng)
        start = _FIRST_JOB + n * timedelta(hours=3)
        window = {"job_start": start.isoformat(), "job_end": (start + _JOB_LENGTH).isoformat()}
        taken = start + _TAKEN_AFTER_START
        scene = f"scenes/{n:03d}_{identity}_{vehicle.path.stem}.jpg"
        vehicle_photo = _bgr(vehicle.path)
        _write_photo(out_dir / scene, _side_by_side(_bgr(scene_portrait), vehicle_photo), taken)
        alone = f"scenes/{n:03d}_no_person_{vehicle.path.stem}.jpg"
        _write_photo(out_dir / alone, vehicle_photo, taken)
        own, theirs = licence_of(licence_portrait), licence_of(impostor)
        for case, photo, licence, registered, expected in (
            ("genuine", scene, own, vehicle.plate, "PASS"),
            ("wrong_person", scene, theirs, vehicle.plate, "FAIL"),
            ("wrong_plate", scene, own, other_plate, "FAIL"),
            ("near_plate", scene, own, near, "FAIL"),
            ("no_person", alone, own, vehicle.plate, "FAIL"),
        ):
            written.append(
                {
                    "photo": photo,
                    "licence": licence,
                    "registered_plate": registered,
                    "expected": expected,
                    "case": case,
                    **window,
                }
            )
    manifest = out_dir / "submissions.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*SUBMISSION_COLUMNS, "job_start", "job_end"])
        writer.writeheader()
        writer.writerows(written)
    return ComposedSet(manifest=manifest, rows=len(written), pairs=len(pairs))


def _bgr(path: Path) -> np.ndarray:
    return read_photo_file(path, **_PHOTO_LIMITS).image


def _unrelated(a: str, b: str) -> bool:
    return plates.compare(a, b).match is plates.PlateMatch.MISMATCH


def _near_plate(plate: str, rng: random.Random) -> str:
    """One character changed, at a position drawn first (so the province is not favoured)."""
    by_position: dict[int, list[str]] = defaultdict(list)
    for variant in plates.distinct_variants(plate):
        position = next(i for i, (x, y) in enumerate(zip(variant, plate, strict=True)) if x != y)
        by_position[position].append(variant)
    return rng.choice(by_position[rng.choice(sorted(by_position))])


def _side_by_side(person: np.ndarray, vehicle: np.ndarray) -> np.ndarray:
    """The portrait scaled to the vehicle photo's height, on its left."""
    height = vehicle.shape[0]
    width = max(1, round(person.shape[1] * height / person.shape[0]))
    shrink = cv2.INTER_AREA if height < person.shape[0] else cv2.INTER_CUBIC
    scene = np.hstack([cv2.resize(person, (width, height), interpolation=shrink), vehicle])
    longest = max(scene.shape[:2])
    if longest > _MAX_SCENE_SIDE:
        scale = _MAX_SCENE_SIDE / longest
        size = (round(scene.shape[1] * scale), round(scene.shape[0] * scale))
        scene = cv2.resize(scene, size, interpolation=cv2.INTER_AREA)
    return scene


def _write_photo(path: Path, image: np.ndarray, taken: datetime) -> None:
    exif = Image.Exif()
    stamp = taken.strftime("%Y:%m:%d %H:%M:%S")
    exif[_DATETIME] = stamp
    ifd = exif.get_ifd(_EXIF_IFD)
    ifd[_DATETIME_ORIGINAL] = stamp
    ifd[_OFFSET_TIME_ORIGINAL] = taken.strftime("%z")[:3] + ":" + taken.strftime("%z")[3:]
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(path, "JPEG", quality=_SCENE_QUALITY, exif=exif)
