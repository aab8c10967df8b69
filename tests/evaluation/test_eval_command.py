"""`compliance eval` end to end, as a separate process, on a manifest of real dev photos."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEYS = {
    "plate_exact",
    "plate_exact_by_color",
    "plate_exact_by_province",
    "face_tar",
    "face_far",
    "face_tar_at_far_1pct",
    "face_tar_at_far_0.1pct",
    "person_presence_acc",
    "vehicle_presence_acc",
    "median_ms",
    "n",
    "plate_check_acc",
}


def compliance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("compliance")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "compliance.cli"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def small_manifest(dev_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few rows of every kind, pointing at the dev photos, in a folder of its own."""
    wanted = {
        "plates/ccpd_demo_1.jpg",
        "plates/sirius_crop_03.jpg",
        "plates/we_single_green.jpg",
        "scenes/yolov5_zidane.jpg",
        "scenes/sam_truck.jpg",
        "faces/fr_obama_1.jpg",
        "faces/fr_obama_2.jpg",
        "faces/fr_biden_1.jpg",
    }
    folder = tmp_path_factory.mktemp("manifest")
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["file"] in wanted]
        fields = reader.fieldnames or []
    for r in rows:
        r["file"] = str(dev_dir / r["file"])  # absolute: the manifest need not sit beside the photos
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with (folder / "face_pairs.csv").open("w", encoding="utf-8") as fh:
        fh.write("file_a,file_b,same,id_a,id_b\n")
        fh.write(f"{dev_dir}/faces/fr_obama_1.jpg,{dev_dir}/faces/fr_obama_2.jpg,1,obama,obama\n")
        fh.write(f"{dev_dir}/faces/fr_obama_1.jpg,{dev_dir}/faces/fr_biden_1.jpg,0,obama,biden\n")
    assert len(rows) == len(wanted)
    return manifest


def test_eval_json_is_one_object_with_the_agreed_keys(small_manifest: Path) -> None:
    result = compliance("eval", str(small_manifest), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but the one object on stdout
    scores = report["pipelines"]["multistage"]
    assert KEYS <= scores.keys()
    assert scores["n"]["plates"] == 3 and scores["n"]["face_pairs_same"] == 1 and scores["n"]["face_pairs_diff"] == 1
    assert set(scores["plate_exact_by_color"]) == {"blue", "green"}
    for key in (
        "plate_exact",
        "face_tar",
        "face_far",
        "person_presence_acc",
        "vehicle_presence_acc",
        "plate_check_acc",
    ):
        assert 0.0 <= scores[key] <= 1.0
    # These photos are easy: a baseline that misses them is broken.
    assert scores["plate_exact"] == 1.0
    assert scores["face_tar"] == 1.0 and scores["face_far"] == 0.0
    assert scores["median_ms"] > 0
    # Every face here is a live one: judged for liveness (all 121 px and up) and none flagged.
    assert scores["live_faces"]["face"] == {"faces": 3, "judged": 3, "flagged": 0}
    assert scores["live_faces"]["scene"] == {"faces": 1, "judged": 1, "flagged": 0}  # zidane, 172 px


def test_eval_table_names_what_it_measured(small_manifest: Path) -> None:
    result = compliance("eval", str(small_manifest))
    assert result.returncode == 0, result.stderr
    for label in ("plates read exactly", "face TAR at FAR 1%", "person presence", "latency median", "plate check"):
        assert label in result.stdout


def test_eval_on_a_bad_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text("file,kind\nx.jpg,plate\n", encoding="utf-8")
    result = compliance("eval", str(tmp_path / "manifest.csv"))
    assert result.returncode == 2
    assert "missing columns" in result.stderr and "Traceback" not in result.stderr
    result = compliance("eval", str(tmp_path / "nope.csv"))
    assert result.returncode == 2 and "no such manifest" in result.stderr
