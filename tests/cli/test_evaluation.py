"""``compliance eval`` with --pipeline both and --mllm-model (the tiny random-weight checkpoint):
each pipeline's scores and their agreement, on photos and on whole submissions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.cli.helpers import run
from tests.evaluation.test_eval_command import KEYS


@pytest.fixture(scope="module")
def small_manifest(dev_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = {"plates/ccpd_demo_1.jpg", "plates/we_single_green.jpg", "scenes/sam_truck.jpg", "faces/fr_obama_1.jpg"}
    folder = tmp_path_factory.mktemp("manifest")
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r for r in reader if r["file"] in wanted]
        fields = reader.fieldnames or []
    for r in rows:
        r["file"] = str(dev_dir / r["file"])
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    with (folder / "face_pairs.csv").open("w", encoding="utf-8") as fh:
        fh.write("file_a,file_b,same,id_a,id_b\n")
        fh.write(f"{dev_dir}/faces/fr_obama_1.jpg,{dev_dir}/faces/fr_obama_2.jpg,1,obama,obama\n")
    assert len(rows) == len(wanted)
    return folder / "manifest.csv"


def test_eval_with_both_reports_each_pipeline_and_their_agreement(
    tiny_env: Path, tiny_model_dir: Path, small_manifest: Path
) -> None:
    code, stdout, stderr = run(
        "eval", str(small_manifest), "--pipeline", "both", "--mllm-model", str(tiny_model_dir), "--json"
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert set(report["pipelines"]) == {"mllm", "multistage"}
    assert KEYS <= report["pipelines"]["mllm"].keys()
    assert report["pipelines"]["mllm"].keys() == report["pipelines"]["multistage"].keys()
    mllm = report["pipelines"]["mllm"]
    assert mllm["plate_exact"] == 0.0 and mllm["n"]["plates"] == 2  # random weights read nothing
    assert mllm["face_tar_at_far_1pct"] is None  # a yes/no model gives no similarity curve
    agreement = report["agreement"]
    assert agreement["pipelines"] == ["mllm", "multistage"]
    assert set(agreement["fields"]) == {"person", "vehicle", "plate", "face"}
    assert agreement["fields"]["person"]["compared"] == 4 and agreement["fields"]["face"]["compared"] == 1
    # The baseline reads both plates; the tiny model none: no plate agreement on those rows.
    assert agreement["fields"]["plate"]["agree"] <= 2

    code, stdout, stderr = run("eval", str(small_manifest), "--pipeline", "both", "--mllm-model", str(tiny_model_dir))
    assert code == 0, stderr
    assert "agreement: mllm vs multistage" in stdout


def test_eval_of_whole_submissions_with_both_scores_each_and_noise_never_passes(
    tiny_env: Path, tiny_model_dir: Path, dev_dir: Path, tmp_path: Path
) -> None:
    from compliance.evaluation.compose import compose
    from compliance.evaluation.licence import LicenceLook
    from tests.evaluation.test_submissions import write_labelled

    made = compose(write_labelled(dev_dir, tmp_path), tmp_path / "composed", LicenceLook(), seed=0)
    code, stdout, stderr = run(
        "eval", str(made.manifest), "--pipeline", "both", "--mllm-model", str(tiny_model_dir), "--json"
    )
    assert code == 0, stderr
    report = json.loads(stdout)["submissions"]
    assert set(report) == {"mllm", "multistage", "both"}
    for scores in report.values():
        assert scores["n"] == made.rows and scores["false_pass"] == 0.0
    # Random weights answer noise: it is never confident enough to pass anyone.
    assert report["mllm"]["automation"] == 0.0 and report["both"]["automation"] == 0.0
