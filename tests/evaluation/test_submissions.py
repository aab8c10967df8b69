"""Whole submissions: `compliance compose` builds them from real dev photos, `compliance eval` scores the verdicts."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from compliance.photos import read_photo_file
from tests.evaluation.test_eval_command import compliance

PORTRAITS = ("faces/fr_obama_1.jpg", "faces/fr_obama_2.jpg", "faces/fr_biden_1.jpg", "faces/fr_biden_2.jpg")
VEHICLES = ("plates/ccpd_demo_0.jpg", "plates/ccpd_demo_1.jpg", "plates/zhiju_ccpd_05.jpg")
CASES = {"genuine": "PASS", "wrong_person": "FAIL", "wrong_plate": "FAIL", "near_plate": "FAIL", "no_person": "FAIL"}


def write_labelled(dev_dir: Path, folder: Path) -> Path:
    """Two people with two portraits each, and three parked cars, from the dev set."""
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["file"] in PORTRAITS + VEHICLES]
        fields = reader.fieldnames or []
    for r in rows:
        r["file"] = str(dev_dir / r["file"])
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="module")
def labelled(dev_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_labelled(dev_dir, tmp_path_factory.mktemp("labelled"))


@pytest.fixture(scope="module")
def composed(labelled: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("composed")
    result = compliance("compose", str(labelled), str(out), "--licence-px", "120", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "10 submissions" in result.stdout
    return out / "submissions.csv"


def read_rows(manifest: Path) -> list[dict[str, str]]:
    with manifest.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_compose_writes_five_cases_per_two_portraits_of_one_person(composed: Path) -> None:
    rows = read_rows(composed)
    assert len(rows) == 2 * len(CASES)  # obama 1~2 and biden 1~2
    assert {r["case"]: r["expected"] for r in rows} == CASES
    by_case = {case: [r for r in rows if r["case"] == case] for case in CASES}
    for genuine, near, wrong in zip(by_case["genuine"], by_case["near_plate"], by_case["wrong_plate"], strict=True):
        true, changed = genuine["registered_plate"], near["registered_plate"]
        assert len(true) == len(changed) and sum(a != b for a, b in zip(true, changed, strict=True)) == 1
        assert wrong["registered_plate"] != true
    for wrong_person, genuine in zip(by_case["wrong_person"], by_case["genuine"], strict=True):
        assert wrong_person["photo"] == genuine["photo"] and wrong_person["licence"] != genuine["licence"]


def test_composed_photos_carry_a_capture_time_inside_the_window_and_licences_look_like_licences(
    composed: Path,
) -> None:
    for row in read_rows(composed):
        photo = read_photo_file(composed.parent / row["photo"], max_bytes=1 << 26, max_pixels=80_000_000)
        start, end = datetime.fromisoformat(row["job_start"]), datetime.fromisoformat(row["job_end"])
        assert photo.capture_time is not None and start <= photo.capture_time <= end
        with Image.open(composed.parent / row["licence"]) as licence:
            assert licence.height == 120 and licence.mode == "L" and licence.format == "JPEG"


def test_compose_is_the_same_for_the_same_seed(labelled: Path, composed: Path, tmp_path: Path) -> None:
    again = compliance("compose", str(labelled), str(tmp_path), "--licence-px", "120", "--seed", "7")
    assert again.returncode == 0, again.stderr
    assert read_rows(tmp_path / "submissions.csv") == read_rows(composed)


def test_eval_scores_whole_submissions_in_the_agreed_shape(composed: Path) -> None:
    result = compliance("eval", str(composed), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)["submissions"]["multistage"]
    assert {"automation", "false_fail", "fraud_caught", "false_pass", "n", "by_case", "blocking_reasons"} <= set(scores)
    assert scores["n"] == 10
    assert set(scores["by_case"]) == set(CASES)
    assert all(sum(cells.values()) == 2 for cells in scores["by_case"].values())
    # No fraud passes, and these clear portraits and parked cars are not failed as genuine.
    assert scores["false_pass"] == 0.0
    assert scores["false_fail"] == 0.0
    assert scores["by_case"]["wrong_person"]["FAIL"] == 2
    assert scores["by_case"]["no_person"]["PASS"] == 0
    assert scores["fraud_caught"] >= 0.75


def test_eval_table_names_the_whole_submission_figures(composed: Path) -> None:
    result = compliance("eval", str(composed))
    assert result.returncode == 0, result.stderr
    for label in ("automation", "false FAIL", "fraud caught", "false PASS", "case × outcome"):
        assert label in result.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r | {"photo": "scenes/missing.jpg"}, "no such file"),
        (lambda r: r | {"expected": "MAYBE"}, "not PASS or FAIL"),
        (lambda r: r | {"job_start": "yesterday"}, "not ISO times"),
        (lambda r: r | {"photo": "not_a_photo.jpg"}, "not_a_photo.jpg"),
    ],
)
def test_a_bad_row_stops_the_run_naming_it(composed: Path, tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    rows = read_rows(composed)
    rows[1] = change(rows[1])
    # Beside the composed photos, so that the rows' relative paths hold.
    (composed.parent / "not_a_photo.jpg").write_text("this is no JPEG", encoding="utf-8")
    bad = composed.parent / f"bad_{tmp_path.name}.csv"
    with bad.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = compliance("eval", str(bad))
    assert result.returncode == 2, result.stdout
    assert f"{bad}: row 3" in result.stderr.replace("\n", "") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_manifest_saved_by_excel_with_a_byte_order_mark_is_still_a_submissions_manifest(
    composed: Path, tmp_path: Path
) -> None:
    rows = read_rows(composed)[:2]
    for row in rows:
        for column in ("photo", "licence"):
            row[column] = str(composed.parent / row[column])
    bom = tmp_path / "submissions.csv"
    with bom.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = compliance("eval", str(bom), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["submissions"]["multistage"]["n"] == 2


def test_a_manifest_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "submissions.csv"
    bad.write_bytes("photo,licence,registered_plate,expected,case\n照片.jpg,,京A12345,PASS,x\n".encode("gbk"))
    result = compliance("eval", str(bad))
    assert result.returncode == 2 and "not UTF-8" in result.stderr and "Traceback" not in result.stderr


def test_compose_needs_two_identities(dev_dir: Path, tmp_path: Path) -> None:
    labelled = write_labelled(dev_dir, tmp_path)
    with labelled.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if "biden" not in r["file"]]
    with labelled.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = compliance("compose", str(labelled), str(tmp_path / "out"))
    assert result.returncode == 2 and "two identities" in result.stderr and "Traceback" not in result.stderr
