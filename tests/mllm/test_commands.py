"""The MLLM from the command line: check, submit and eval with --pipeline mllm|both and --mllm-model
(the tiny random-weight checkpoint), the fallback setting, and `models pull` failing clearly offline."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compliance.cli import app
from compliance.demo import samples_dir
from compliance.settings import Settings, get_settings
from tests.evaluation.test_eval_command import KEYS
from tests.test_cli import assert_one_line_error

SAMPLES = samples_dir()
runner = CliRunner()


@pytest.fixture()
def tiny_env(isolated_env: Path, tiny_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI's settings from the environment, with the tiny model's small pixel and token budget."""
    for name in ("mllm_device", "mllm_min_pixels", "mllm_max_pixels", "mllm_max_new_tokens"):
        monkeypatch.setenv(f"COMPLIANCE_{name.upper()}", str(getattr(tiny_settings, name)))
    get_settings.cache_clear()
    yield isolated_env
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def check(*args: str) -> tuple[int, str, str]:
    return run(
        "check",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--licence",
        str(SAMPLES / "licence_a.jpg"),
        "--plate",
        "皖AUJ299",
        "--json",
        *args,
    )


def test_check_with_both_gives_each_verdict_and_the_combined_one(tiny_env: Path, tiny_model_dir: Path) -> None:
    code, stdout, stderr = check("--pipeline", "both", "--mllm-model", str(tiny_model_dir))
    assert code == 0, stderr
    verdicts = json.loads(stdout)
    assert list(verdicts) == ["mllm", "multistage", "both"]
    assert verdicts["multistage"]["outcome"] == "PASS"
    assert verdicts["mllm"]["outcome"] == "REVIEW"  # noise from random weights never passes
    both = verdicts["both"]
    assert both["outcome"] == "REVIEW"
    assert {"PIPELINES_DISAGREE_PLATE", "PIPELINES_DISAGREE_FACE"} <= set(both["reasons"])
    assert both["judgments"]["provenance"]["pipelines"] == ["mllm", "multistage"]
    assert any(k.startswith("mllm:transformers:") for k in both["judgments"]["provenance"]["models"])


def test_check_with_the_fallback_setting_says_it_fell_back(
    tiny_env: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLIANCE_MLLM_FALLBACK", "true")
    monkeypatch.setenv("COMPLIANCE_MLLM_MODEL", str(tiny_model_dir))
    get_settings.cache_clear()
    code, stdout, stderr = check("--pipeline", "mllm")
    assert code == 0, stderr
    verdict = json.loads(stdout)["mllm"]
    assert verdict["outcome"] == "PASS"
    assert verdict["reasons"] == ["MLLM_FALLBACK"]
    fallback = verdict["judgments"]["provenance"]["fallback"]
    assert fallback["pipeline"] == "mllm" and fallback["reason"].startswith("invalid answer")


def test_a_missing_mllm_is_a_one_line_error(tiny_env: Path, tmp_path: Path) -> None:
    code, _, stderr = check("--pipeline", "mllm", "--mllm-model", str(tmp_path / "nowhere"))
    assert_one_line_error(code, stderr, "not on this machine", "compliance models pull")


def test_submit_with_both_keeps_one_combined_verdict(tiny_env: Path, tiny_model_dir: Path) -> None:
    assert run("registry", "add-carrier", "ACME")[0] == 0
    assert run("registry", "add-vehicle", "ACME", "皖AUJ299")[0] == 0
    code, _, stderr = run("registry", "add-driver", "ACME", "A", "--licence", str(SAMPLES / "licence_a.jpg"))
    assert code == 0, stderr
    code, stdout, stderr = run(
        "submit",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--carrier",
        "ACME",
        "--driver",
        "1",
        "--plate",
        "皖AUJ299",
        "--pipeline",
        "both",
        "--mllm-model",
        str(tiny_model_dir),
        "--json",
    )
    assert code == 0, stderr
    verdict = json.loads(stdout)
    assert verdict["outcome"] == "REVIEW" and "PIPELINES_DISAGREE_PLATE" in verdict["reasons"]
    assert verdict["judgments"]["provenance"]["pipeline"] == "both"


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


def test_models_pull_offline_fails_with_one_line(isolated_env: Path) -> None:
    # A repository that does not exist: offline it cannot connect, online it is not found; no
    # test ever downloads gigabytes.
    code, _, stderr = run("models", "pull", "--mllm-model", "compliance-tests/no-such-model")
    assert_one_line_error(code, stderr, "could not download compliance-tests/no-such-model")


def test_models_pull_of_a_local_folder_needs_nothing(isolated_env: Path, tiny_model_dir: Path) -> None:
    code, stdout, stderr = run("models", "pull", "--mllm-model", str(tiny_model_dir))
    assert code == 0, stderr
    assert str(tiny_model_dir) in stdout.replace("\n", "")
