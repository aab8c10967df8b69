"""The precheck on real photos with the real models: a good driver-by-vehicle photo has no problem;
the same photo dark or blurred has that problem; a plate photo has no person; a portrait has no
vehicle and no plate; and its findings are the full pipeline's on the same photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from compliance.judgments import Answer
from compliance.multistage.precheck import Prechecker
from compliance.pipelines import get_pipeline, get_prechecker
from compliance.prechecks import (
    PrecheckCode,
    PrecheckFindings,
    SitePosition,
    findings_of,
    position_problem,
    problems,
)
from compliance.settings import Settings, Thresholds
from tests.composites import PORTRAIT, VEHICLE, dev_image, driver_by_vehicle

T = Thresholds()


@pytest.fixture(scope="module")
def prechecker() -> Prechecker:
    return get_prechecker(Settings())


def _problems(prechecker: Prechecker, image: np.ndarray) -> tuple[PrecheckCode, ...]:
    return problems(prechecker.check(image), T)


def test_a_good_driver_by_vehicle_photo_has_no_problem(prechecker: Prechecker, dev_dir: Path) -> None:
    found = prechecker.check(driver_by_vehicle(dev_dir))
    assert (found.person, found.face, found.vehicle, found.plate_readable) == (Answer.YES,) * 4
    assert problems(found, T) == ()
    # What a retake cannot fix is not looked at: no face matching, no full plate search.
    assert set(found.latency_ms) == {"quality", "detect", "face", "plate"}


def test_the_same_photo_dark_is_too_dark(prechecker: Prechecker, dev_dir: Path) -> None:
    dark = (driver_by_vehicle(dev_dir).astype(np.float32) * 0.12).astype(np.uint8)
    assert PrecheckCode.PHOTO_TOO_DARK in _problems(prechecker, dark)


def test_the_same_photo_blurred_is_blurred(prechecker: Prechecker, dev_dir: Path) -> None:
    blurred = cv2.GaussianBlur(driver_by_vehicle(dev_dir), (0, 0), 6)
    found = _problems(prechecker, blurred)
    assert PrecheckCode.PHOTO_BLURRED in found and PrecheckCode.PHOTO_TOO_DARK not in found


def test_a_plate_photo_without_a_person_has_no_person(prechecker: Prechecker, dev_dir: Path) -> None:
    found = _problems(prechecker, dev_image(dev_dir, VEHICLE))
    assert found == (PrecheckCode.NO_PERSON,)  # the vehicle and its plate are there


def test_a_portrait_has_no_vehicle_and_no_plate(prechecker: Prechecker, dev_dir: Path) -> None:
    found = _problems(prechecker, dev_image(dev_dir, PORTRAIT))
    assert found == (PrecheckCode.NO_VEHICLE, PrecheckCode.NO_READABLE_PLATE)


def test_a_person_with_the_face_hidden_has_no_face(prechecker: Prechecker, dev_dir: Path) -> None:
    image = driver_by_vehicle(dev_dir)
    portrait = dev_image(dev_dir, PORTRAIT)
    width = round(portrait.shape[1] * image.shape[0] / portrait.shape[0])
    hidden = image.copy()
    hidden[: image.shape[0] // 2, :width] = 0  # the head and shoulders blacked out, the body still there
    found = prechecker.check(hidden)
    assert found.person is Answer.YES and found.face is Answer.NO
    assert PrecheckCode.NO_FACE in problems(found, T) and PrecheckCode.NO_PERSON not in problems(found, T)


@pytest.mark.parametrize(
    "name", ["scenes/yolov5_bus.jpg", "scenes/sam_truck.jpg", "scenes/we_cpt_re.jpg", "plates/ccpd_demo_0.jpg"]
)
def test_its_findings_are_the_full_pipelines(prechecker: Prechecker, dev_dir: Path, name: str) -> None:
    image = dev_image(dev_dir, name)
    judged = get_pipeline("multistage", Settings()).judge(image, None, T)
    assert problems(prechecker.check(image), T) == problems(findings_of(judged), T)


def test_no_position_is_asked_for_only_where_the_site_has_one() -> None:
    site = SitePosition(lat=31.3838, lon=121.2505, radius_m=500)  # a constructed site with a position
    assert position_problem(site, photo_has_position=False) is PrecheckCode.NO_POSITION
    assert position_problem(site, photo_has_position=None) is PrecheckCode.NO_POSITION  # unreadable EXIF
    assert position_problem(site, photo_has_position=True) is None
    assert position_problem(None, photo_has_position=False) is None  # no site, or one without a position
    fine = PrecheckFindings(
        blur=100.0, brightness=120.0, person=Answer.YES, face=Answer.YES, vehicle=Answer.YES, plate_readable=Answer.YES
    )
    found = problems(fine, T, position=PrecheckCode.NO_POSITION)
    assert found == (PrecheckCode.NO_POSITION,)


def test_the_api_threads_share_one_prechecker_safely(prechecker: Prechecker, dev_dir: Path) -> None:
    """The API runs prechecks in its threads on one set of models: concurrent ones find what each
    finds alone (photos that reach the slow locators, the Haar cascade's included)."""
    from concurrent.futures import ThreadPoolExecutor

    images = [dev_image(dev_dir, n) for n in ("scenes/sam_truck.jpg", "scenes/yolov5_bus.jpg", PORTRAIT, VEHICLE)]
    alone = [prechecker.check(image).model_dump(exclude={"latency_ms"}) for image in images]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(2):
            together = list(pool.map(lambda image: prechecker.check(image).model_dump(exclude={"latency_ms"}), images))
            assert together == alone
