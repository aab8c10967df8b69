"""The plate stage on real dev photos with the real models: texts and colours against the labels."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from compliance import plates
from compliance.judgments import Answer, PlateColor, PlateReading
from compliance.multistage.base import PlateLocator
from compliance.multistage.plate_color import PlateColorClassifier
from compliance.multistage.plate_locators import ClpDetLocator, HaarLocator, TextDetLocator, WholeImageLocator, rectify
from compliance.multistage.plate_reader import OcrPlateReader
from compliance.multistage.plate_stage import PlateStage


@pytest.fixture(scope="module")
def stage() -> PlateStage:
    return PlateStage.default()


@pytest.fixture(scope="module")
def labels(dev_dir: Path) -> dict[str, dict[str, str]]:
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def load(dev_dir: Path, file: str) -> np.ndarray:
    image = cv2.imread(str(dev_dir / file))
    assert image is not None, file
    return image


def labelled_box(row: dict[str, str]) -> tuple[float, float, float, float]:
    """CCPD rows carry the plate's box in their notes: ``bbox_xyxy=x1_y1_x2_y2``."""
    for part in row["notes"].split(";"):
        key, _, value = part.strip().partition("=")
        if key == "bbox_xyxy":
            x1, y1, x2, y2 = (float(v) for v in value.split("_"))
            return x1, y1, x2, y2
    raise AssertionError(f"no bbox in {row['file']}")


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.mark.parametrize(
    "file",
    [
        "plates/ccpd_demo_0.jpg",
        "plates/zhiju_ccpd_05.jpg",  # 999: repeated characters must not collapse
        "plates/zhiju_ccpd_11.jpg",
        "plates/zhiju_ccpd_14.jpg",
    ],
)
def test_ccpd_photos_are_read_exactly(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], file: str
) -> None:
    reading = stage.read(load(dev_dir, file))
    assert reading.text == labels[file]["plate_text"]
    assert reading.known_format is Answer.YES
    assert reading.plate_type == plates.PlateType.STANDARD.value
    assert reading.color is PlateColor.BLUE
    assert reading.rows == 1


def test_plate_crop_is_read_as_a_whole(stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]]) -> None:
    file = "plates/sirius_crop_03.jpg"
    image = load(dev_dir, file)
    reading = stage.read(image)
    assert reading.text == labels[file]["plate_text"]
    assert reading.box is not None and reading.box.label == WholeImageLocator.name


def test_double_row_yellow_plate_is_read_row_by_row(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]]
) -> None:
    file = "plates/we_double_yellow.jpg"
    reading = stage.read(load(dev_dir, file))
    assert reading.text == labels[file]["plate_text"]
    assert reading.rows == 2
    assert reading.color is PlateColor.YELLOW


def test_green_new_energy_plate(stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]]) -> None:
    file = "plates/we_single_green.jpg"
    reading = stage.read(load(dev_dir, file))
    assert reading.color is PlateColor.GREEN
    assert reading.text is not None and len(reading.text) == 8
    assert reading.text == labels[file]["plate_text"]
    assert reading.plate_type == plates.PlateType.NEW_ENERGY_SMALL.value


@pytest.mark.parametrize(
    ("file", "color"),
    [("plates/we_police.jpg", PlateColor.WHITE), ("plates/we_shi_lin_guan.jpg", PlateColor.BLACK)],
)
def test_special_plates_keep_their_suffix_and_colour(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], file: str, color: PlateColor
) -> None:
    reading = stage.read(load(dev_dir, file))
    assert reading.text == labels[file]["plate_text"]
    assert reading.color is color


def test_photo_without_a_plate_reads_nothing(stage: PlateStage, dev_dir: Path) -> None:
    reading = stage.read(load(dev_dir, "scenes/yolov5_zidane.jpg"))
    assert reading == PlateReading()


def test_blank_image_reads_nothing(stage: PlateStage) -> None:
    assert stage.read(np.full((480, 640, 3), 127, dtype=np.uint8)).text is None


@pytest.mark.parametrize("file", ["plates/zhiju_ccpd_08.jpg", "plates/we_moto.png", "plates/we_hongkang1.jpg"])
def test_corners_lie_inside_the_image_and_on_the_plate(stage: PlateStage, dev_dir: Path, file: str) -> None:
    image = load(dev_dir, file)
    reading = stage.read(image)
    assert reading.corners is not None and reading.box is not None
    h, w = image.shape[:2]
    corners = np.array(reading.corners)
    assert (corners[:, 0] >= 0).all() and (corners[:, 0] <= w).all()
    assert (corners[:, 1] >= 0).all() and (corners[:, 1] <= h).all()
    tl, tr, br, bl = corners
    assert tl[0] < tr[0] and bl[0] < br[0] and tl[1] < bl[1] and tr[1] < br[1]
    assert reading.box.x1 == corners[:, 0].min() and reading.box.y2 == corners[:, 1].max()


def test_confidence_is_the_weakest_character(stage: PlateStage, dev_dir: Path) -> None:
    reading = stage.read(load(dev_dir, "plates/zhiju_ccpd_02.jpg"))
    assert reading.text is not None and reading.char_confidences is not None
    assert len(reading.char_confidences) == len(reading.text)
    assert reading.confidence == min(reading.char_confidences)
    assert reading.raw_text is not None


@pytest.mark.parametrize("locator", [ClpDetLocator(), TextDetLocator(), HaarLocator()], ids=lambda loc: loc.name)
def test_each_locator_finds_a_clear_plate(
    locator: PlateLocator, dev_dir: Path, labels: dict[str, dict[str, str]]
) -> None:
    file = "plates/zhiju_ccpd_06.jpg"
    truth = labelled_box(labels[file])
    candidates = locator.locate(load(dev_dir, file))
    assert candidates, f"{locator.name} found nothing"
    boxes = [
        (c.corners[:, 0].min(), c.corners[:, 1].min(), c.corners[:, 0].max(), c.corners[:, 1].max()) for c in candidates
    ]
    assert max(iou(b, truth) for b in boxes) >= 0.3
    assert all(c.source == locator.name and c.corners.shape == (4, 2) for c in candidates)


def test_whole_image_locator_only_offers_plate_shaped_images() -> None:
    locator = WholeImageLocator()
    assert locator.locate(np.zeros((24, 94, 3), np.uint8))  # a single-row crop
    assert locator.locate(np.zeros((56, 90, 3), np.uint8))  # a small motorcycle-plate crop
    assert not locator.locate(np.zeros((480, 640, 3), np.uint8))  # a 4:3 photo
    assert not locator.locate(np.zeros((1080, 1920, 3), np.uint8))  # a 16:9 photo


def test_colour_is_unknown_for_a_flat_grey_crop() -> None:
    assert PlateColorClassifier().classify(np.full((48, 150, 3), 120, np.uint8)) is PlateColor.UNKNOWN


def test_colour_tie_is_broken_by_the_grammar_only_among_tied_colours(dev_dir: Path) -> None:
    image = load(dev_dir, "plates/we_single_green.jpg")
    corners = ClpDetLocator().locate(image)[0].corners
    crop = rectify(image, corners, 48)
    classifier = PlateColorClassifier()
    # New-energy plates fade from green to white, so the pixels alone tie green and white ...
    assert classifier.classify(crop) is PlateColor.UNKNOWN
    assert classifier.classify(crop, frozenset({PlateColor.GREEN})) is PlateColor.GREEN
    # ... and a grammar colour that the pixels do not support cannot win.
    assert classifier.classify(crop, frozenset({PlateColor.BLUE})) is PlateColor.UNKNOWN


def test_models_are_named_with_file_digests(stage: PlateStage) -> None:
    models = stage.models
    assert {"clp_det", "ppocr_det", "ppocr_v4_rec"} <= set(models)
    assert all("sha256:" in version for version in models.values())


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two photos in one frame, the right one scaled to the left one's height."""
    h = left.shape[0]
    right = cv2.resize(right, (round(right.shape[1] * h / right.shape[0]), h), interpolation=cv2.INTER_AREA)
    return np.hstack([left, right])


def date_stamp(image: np.ndarray, text: str = "2026-11-05 08:23:17", height_share: float = 0.03) -> np.ndarray:
    """A camera's date-and-time stamp: orange digits in the bottom-right corner, ``height_share`` of the
    image's height tall."""
    stamped = image.copy()
    h, w = image.shape[:2]
    scale = height_share * h / 22  # FONT_HERSHEY_SIMPLEX is about 22 px tall at scale 1
    thickness = max(1, round(scale * 2))
    (text_w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    origin = (w - text_w - round(0.02 * w), h - round(0.03 * h))
    cv2.putText(stamped, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 165, 255), thickness, cv2.LINE_AA)
    return stamped


def assert_no_digit_text(readings: tuple[PlateReading, ...]) -> None:
    for reading in readings:
        assert reading.text is not None and not reading.text.isdigit(), reading.text
        assert "20261105" not in reading.text and "082317" not in reading.text


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("plates/zhiju_ccpd_06.jpg", "plates/we_single_yellow.jpg"),
        ("plates/we_single_green.jpg", "plates/ccpd_demo_3.jpg"),
    ],
)
def test_two_vehicles_in_one_frame_give_both_plates(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], left: str, right: str
) -> None:
    trace = stage.trace(side_by_side(load(dev_dir, left), load(dev_dir, right)))
    texts = [r.text for r in trace.readings]
    assert labels[left]["plate_text"] in texts and labels[right]["plate_text"] in texts
    assert len(texts) == len(set(texts))  # each plate once
    assert trace.reading == trace.readings[0] and trace.reading.known_format is Answer.YES
    for reading in trace.readings:
        assert reading.box is not None and reading.char_confidences is not None
        assert len(reading.char_confidences) == len(reading.text or "")


def test_one_plate_is_reported_once(stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]]) -> None:
    file = "plates/zhiju_ccpd_06.jpg"
    trace = stage.trace(load(dev_dir, file))
    assert [r.text for r in trace.readings] == [labels[file]["plate_text"]]


@pytest.mark.parametrize(
    "file",
    [
        "plates/ccpd_demo_0.jpg",
        "plates/zhiju_ccpd_09.jpg",
        "plates/we_single_yellow.jpg",
        "plates/we_single_green.jpg",
        "plates/we_q180919.png",
        "plates/we_police.jpg",
    ],
)
def test_date_stamp_is_never_a_plate(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], file: str
) -> None:
    trace = stage.trace(date_stamp(load(dev_dir, file)))
    assert trace.reading.text == labels[file]["plate_text"]
    assert_no_digit_text(trace.readings)


@pytest.mark.parametrize("text", ["2026-11-05 08:23:17", "2026/11/05", "08:23:17", "13812345678"])
@pytest.mark.parametrize("height_share", [0.03, 0.05])
@pytest.mark.parametrize("file", ["scenes/sam_truck.jpg", "scenes/yolov5_bus.jpg"])
def test_stamp_beside_a_vehicle_without_a_visible_plate_reads_nothing(
    stage: PlateStage, dev_dir: Path, file: str, text: str, height_share: float
) -> None:
    # The bus's 5 % "08:23:17" was reported as an off-grammar plate reading before readings
    # with digits where a plate has its province or letters were refused.
    trace = stage.trace(date_stamp(load(dev_dir, file), text, height_share))
    assert trace.reading.text is None
    assert trace.readings == ()


def degraded(image: np.ndarray, how: str) -> np.ndarray:
    if how == "jpeg40":
        return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR)
    scale = float(how.removeprefix("scale"))
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("how", ["scale0.5", "scale0.35", "jpeg40"])
@pytest.mark.parametrize("file", ["plates/we_single_green.jpg", "scenes/we_cpt_re.jpg"])
def test_green_plates_keep_eight_characters_and_their_colour_when_degraded(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], file: str, how: str
) -> None:
    reading = stage.read(degraded(load(dev_dir, file), how))
    assert reading.text == labels[file]["plate_text"] and len(reading.text) == 8
    assert reading.color is PlateColor.GREEN


@pytest.mark.parametrize("file", ["plates/we_double_yellow.jpg", "plates/we_moto.png"])
def test_a_second_recogniser_that_reads_the_same_double_row_plate_confirms_it(
    stage: PlateStage, dev_dir: Path, labels: dict[str, dict[str, str]], file: str
) -> None:
    """PP-OCR reads a double-row plate's small top row unsurely (京E at 0.72/0.44); the plate
    recogniser reads the same characters surely. Agreement lifts the reading over
    plate_confidence_min; the text is the same as without it."""
    image = load(dev_dir, file)
    alone = PlateStage(steps=stage.steps, reader=_without_second_opinion(stage)).read(image)
    confirmed = stage.read(image)
    truth = plates.normalise(labels[file]["plate_text"])
    assert alone.text == confirmed.text == truth
    assert (confirmed.confidence or 0.0) >= max(0.8, alone.confidence or 0.0)


def test_a_second_recogniser_never_changes_what_was_read(stage: PlateStage, dev_dir: Path) -> None:
    # The consulate plate's 领 is doubted by both recognisers (the plate recogniser reads 4): it stays unsure.
    reading = stage.read(load(dev_dir, "plates/we_shi_lin_guan.jpg"))
    assert reading.text == "沪A1707领"
    assert (reading.confidence or 0.0) < 0.8


def _without_second_opinion(stage: PlateStage) -> OcrPlateReader:
    reader = stage.reader
    assert isinstance(reader, OcrPlateReader)
    return OcrPlateReader(
        recogniser=reader.recogniser,
        second_opinion=None,
        row_finder=reader.row_finder,
        colors=reader.colors,
        geometries=reader.geometries,
    )


def test_a_character_is_read_against_a_plates_alphabet_not_the_whole_dictionary() -> None:
    """One frame of a red 领 as PP-OCR sees it: most belief on look-alikes no plate carries."""
    from compliance.multistage.plate_reader import CtcRecogniser, _CtcModel

    alphabet = ("", "领", "要", "额", "7")
    keep = np.array([True, True, False, False, True])
    model = _CtcModel(session=None, input_name="x", alphabet=alphabet, keep=keep)  # type: ignore[arg-type]
    probs = np.array([[0.05, 0.10, 0.55, 0.28, 0.02], [0.9, 0.03, 0.03, 0.02, 0.02]], dtype=np.float32)
    read = CtcRecogniser._decode(probs, model)
    assert read.text == "领"
    # 0.10 among 领, 7 and the blank (0.17): the blank and 7 still count against it.
    assert read.char_confidences[0] == pytest.approx(0.10 / 0.17, abs=1e-3)
