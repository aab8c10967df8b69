"""`compliance eval` on a spoof manifest (faces on a screen or on paper), as a separate process, on the
dev spoof set judged by the real multistage pipeline."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from compliance.evaluation.spoof import LABELS, SPOOF_LABELS, is_spoof_manifest
from compliance.evaluation.submissions import is_submissions_manifest
from tests.evaluation.test_eval_command import compliance


@pytest.fixture(scope="module")
def spoof_manifest(dev_dir: Path) -> Path:
    path = dev_dir / "spoof" / "manifest.csv"
    if not path.is_file():
        pytest.skip(f"the dev spoof set is missing at {path}")
    return path


@pytest.fixture(scope="module")
def report(spoof_manifest: Path) -> dict[str, object]:
    result = compliance("eval", str(spoof_manifest), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # nothing but the one object on stdout


def test_a_spoof_manifest_is_told_apart_by_its_header(spoof_manifest: Path, dev_dir: Path) -> None:
    assert is_spoof_manifest(spoof_manifest) and not is_submissions_manifest(spoof_manifest)
    assert not is_spoof_manifest(dev_dir / "manifest.csv")


def test_eval_json_has_the_agreed_spoof_shape(report: dict[str, object], spoof_manifest: Path) -> None:
    assert set(report) == {"spoof"}
    spoof = report["spoof"]["multistage"]  # type: ignore[index]
    assert {"flagged_by_label", "live_flagged", "no_face", "n", "roc"} <= spoof.keys()
    assert set(spoof["flagged_by_label"]) == set(SPOOF_LABELS)
    with spoof_manifest.open(encoding="utf-8") as fh:
        labels = [r["label"] for r in csv.DictReader(fh)]
    assert spoof["n"] == {label: labels.count(label) for label in LABELS}
    assert spoof["no_face"] == 0  # every photo of the dev spoof set shows a face
    # The ROC sweeps live_min: a higher threshold never flags fewer.
    points = spoof["roc"]
    assert [p["live_min"] for p in points] == sorted(p["live_min"] for p in points)
    for a, b in itertools.pairwise(points):
        assert a["spoofs_flagged"] <= b["spoofs_flagged"] and a["live_flagged"] <= b["live_flagged"]
    # The targets on the dev set: at least 80% of print and screen spoofs flagged, at most 5%
    # of live faces.
    assert spoof["flagged_by_label"]["print"] >= 0.8 and spoof["flagged_by_label"]["screen"] >= 0.8
    assert spoof["live_flagged"] <= 0.05
    # "flagged" is the verdict's FACE_NOT_LIVE: each photo flagged scored under live_min.
    for photo in spoof["photos"]:
        assert photo["flagged"] == (photo["live_score"] is not None and photo["live_score"] < spoof["live_min"])


def test_eval_table_names_the_spoof_figures(spoof_manifest: Path) -> None:
    result = compliance("eval", str(spoof_manifest), env={"COMPLIANCE_THRESHOLDS__LIVE_MIN": "0"})
    assert result.returncode == 0, result.stderr
    for label in ("print flagged", "screen flagged", "live faces flagged", "live_min swept", "0.00"):
        assert label in result.stdout
    # At live_min 0 nothing is flagged: the threshold comes from the settings.
    assert "0.0% of 2" in result.stdout


def test_a_bad_label_is_a_one_line_error(tmp_path: Path, spoof_manifest: Path) -> None:
    (tmp_path / "manifest.csv").write_text(
        f"file,label,has_face\n{spoof_manifest.parent / 'sf_image_F1.jpg'},mask,yes\n", encoding="utf-8"
    )
    result = compliance("eval", str(tmp_path / "manifest.csv"))
    assert result.returncode == 2
    assert "label 'mask'" in result.stderr and "Traceback" not in result.stderr
