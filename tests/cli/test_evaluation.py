"""``compliance eval`` with --pipeline both|cascade and --mllm-model (the tiny random-weight checkpoint):
each pipeline's scores and their agreement, or the cascade's beside each pipeline alone with the share
that reached the MLLM, on photos and on whole submissions."""

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


def test_eval_with_a_cascade_reports_what_reached_the_mllm_beside_each_pipeline_alone(
    tiny_env: Path, tiny_model_dir: Path, dev_dir: Path, tmp_path: Path
) -> None:
    # A street scene the baseline is sure of (person, car, plate), a parked car with nobody by it (an
    # absence is never sure), and a portrait (no vehicle, no plate); one same-person face pair.
    wanted = {"scenes/we_cpt_re.jpg", "plates/ccpd_demo_1.jpg", "faces/fr_obama_1.jpg"}
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [r | {"file": str(dev_dir / r["file"])} for r in reader if r["file"] in wanted]
        fields = reader.fieldnames or []
    with (tmp_path / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "face_pairs.csv").write_text(
        f"file_a,file_b,same,id_a,id_b\n{dev_dir}/faces/fr_obama_1.jpg,{dev_dir}/faces/fr_obama_2.jpg,1,obama,obama\n"
    )
    args = ("eval", str(tmp_path / "manifest.csv"), "--pipeline", "cascade", "--mllm-model", str(tiny_model_dir))
    code, stdout, stderr = run(*args, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)
    assert list(report["pipelines"]) == ["multistage", "mllm", "cascade"]
    assert report["cascade"] == {
        "photos": 3,
        "photos_escalated": 2,
        "escalated": 2 / 3,
        "unsure": {"person": 1, "vehicle": 1, "plate": 1},
        "face_pairs": 1,
        "face_pairs_escalated": 0,
        "face_escalated": 0.0,
    }
    multistage, mllm, cascade = (report["pipelines"][n] for n in ("multistage", "mllm", "cascade"))
    # Two plates read surely by the baseline; the parked car's went to the MLLM, which reads nothing.
    assert (multistage["plate_exact"], mllm["plate_exact"], cascade["plate_exact"]) == (1.0, 0.0, 0.5)
    assert cascade["face_tar"] == multistage["face_tar"] == 1.0  # the face pair stayed with the baseline

    code, stdout, stderr = run(*args)
    assert code == 0, stderr
    assert "what reached the MLLM" in stdout and "66.7%" in stdout


def test_eval_of_whole_submissions_with_a_cascade_scores_it_beside_each_pipeline(
    tiny_env: Path, tiny_model_dir: Path, dev_dir: Path, tmp_path: Path
) -> None:
    from compliance.evaluation.compose import compose
    from compliance.evaluation.licence import LicenceLook
    from tests.evaluation.test_submissions import write_labelled

    made = compose(write_labelled(dev_dir, tmp_path), tmp_path / "composed", LicenceLook(), seed=0)
    args = ("eval", str(made.manifest), "--pipeline", "cascade", "--mllm-model", str(tiny_model_dir))
    code, stdout, stderr = run(*args, "--json")
    assert code == 0, stderr
    report = json.loads(stdout)["submissions"]
    assert list(report) == ["multistage", "mllm", "cascade"]
    for name, scores in report.items():
        assert scores["n"] == made.rows and scores["false_pass"] == 0.0
        assert {"automation", "false_fail", "fraud_caught", "false_pass"} <= scores.keys()
        assert (scores["escalated"] is None) == (name != "cascade")
    cascade = report["cascade"]
    # Nobody in the photo is never sure: at least the two no_person rows reached the MLLM; not all did.
    assert 2 <= cascade["n_escalated"] < made.rows
    assert cascade["escalated_because"]["person"] >= 2
    assert cascade["escalated"] == cascade["n_escalated"] / made.rows
    # What the baseline settled keeps its verdict; what reached the random MLLM ends in REVIEW, never PASS.
    assert cascade["by_case"]["genuine"]["PASS"] <= report["multistage"]["by_case"]["genuine"]["PASS"]
    assert cascade["by_case"]["no_person"]["REVIEW"] == 2

    code, stdout, stderr = run(*args)
    assert code == 0, stderr
    assert "reached the MLLM (escalated)" in " ".join(stdout.split())
