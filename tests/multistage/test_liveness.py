"""MiniFASNet on the dev spoof set's real photos: live faces score live, faces on a screen or on paper
do not, and a face too small to judge is unknown, never a guess."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from compliance.judgments import Answer, Box
from compliance.multistage.base import LivenessChecker
from compliance.multistage.faces import SFaceMatcher
from compliance.multistage.liveness import MIN_FACE_PX, MiniFASNetChecker, patch_box
from compliance.multistage.pipeline import build_pipeline
from compliance.photos import read_photo_file
from compliance.settings import Settings, Thresholds

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}


@pytest.fixture(scope="module")
def spoof_rows(dev_dir: Path) -> list[dict[str, str]]:
    path = dev_dir / "spoof" / "manifest.csv"
    if not path.is_file():
        pytest.skip(f"the dev spoof set is missing at {path}")
    with path.open(encoding="utf-8") as fh:
        return [{**r, "path": str(path.parent / r["file"])} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def checker() -> MiniFASNetChecker:
    return MiniFASNetChecker()


@pytest.fixture(scope="module")
def faces() -> SFaceMatcher:
    return SFaceMatcher()


def _face(faces: SFaceMatcher, path: str) -> tuple[np.ndarray, Box]:
    image = read_photo_file(Path(path), **LIMITS).image
    found = faces.embed(image)
    assert found is not None, path
    return image, found.box


def test_the_checker_satisfies_its_protocol(checker: MiniFASNetChecker) -> None:
    assert isinstance(checker, LivenessChecker)
    assert "MiniFASNetV2" in checker.version and "MiniFASNetV1SE" in checker.version


def test_live_faces_score_live_and_print_and_screen_spoofs_do_not(
    spoof_rows: list[dict[str, str]], checker: MiniFASNetChecker, faces: SFaceMatcher
) -> None:
    thresholds = Thresholds()
    judged = {}
    for row in spoof_rows:
        image, box = _face(faces, row["path"])
        result = checker.check(image, box, thresholds)
        judged[row["file"]] = (row["label"], result)
        if result.live is not Answer.UNKNOWN:
            assert result.score is not None and result.threshold == thresholds.live_min
    for file, (label, result) in judged.items():
        if label in ("print", "screen"):
            assert result.live is Answer.NO, (file, result)
        if label == "live":
            assert result.live is not Answer.NO, (file, result)  # never flagged; unknown if too small
    assert sum(r.live is Answer.YES for label, r in judged.values() if label == "live") >= 3


def test_a_face_too_small_is_unknown_never_a_guess(
    spoof_rows: list[dict[str, str]], checker: MiniFASNetChecker, faces: SFaceMatcher
) -> None:
    screen = next(r for r in spoof_rows if r["label"] == "screen")
    image, box = _face(faces, screen["path"])
    assert checker.check(image, box).live is Answer.NO
    scale = (MIN_FACE_PX - 8) / box.height
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    shrunk = Box(x1=box.x1 * scale, y1=box.y1 * scale, x2=box.x2 * scale, y2=box.y2 * scale)
    result = checker.check(small, shrunk)
    assert result.live is Answer.UNKNOWN and result.score is None


def test_the_patch_is_grown_about_the_face_and_kept_inside_the_photo() -> None:
    # A 100 px face in the middle of a 1000 px photo, grown 2.7 times about its centre.
    assert patch_box(1000, 1000, Box(x1=450, y1=450, x2=550, y2=550), 2.7) == (365, 365, 635, 635)
    # In a corner: shifted back inside, not cut.
    left, top, right, bottom = patch_box(1000, 800, Box(x1=0, y1=0, x2=100, y2=100), 4.0)
    assert (left, top) == (0, 0) and right - left == bottom - top == 400
    # Larger than the photo allows: the scale shrinks to fit.
    left, top, right, bottom = patch_box(300, 300, Box(x1=100, y1=100, x2=200, y2=200), 4.0)
    assert (left, top, right, bottom) == (0, 0, 299, 299)


def test_the_pipeline_scores_the_scenes_face_and_names_the_model(
    spoof_rows: list[dict[str, str]],
) -> None:
    pipeline = build_pipeline(Settings())
    screen = next(r for r in spoof_rows if r["label"] == "screen")
    image = read_photo_file(Path(screen["path"]), **LIMITS).image
    judged = pipeline.judge(image, None)
    assert judged.face.scene_face is Answer.YES
    assert judged.face.live is Answer.NO and judged.face.live_score is not None
    assert judged.provenance.models["minifasnet"] == pipeline.liveness.version  # type: ignore[union-attr]
    assert "live" in judged.provenance.latency_ms
