"""``compliance check``, ``submit`` and ``demo`` as a user meets them: verdicts, JSON, and one-line
errors with exit code 2; with --pipeline mllm|both|cascade and --mllm-model (the tiny random-weight
checkpoint) and the fallback setting."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from compliance.demo import samples_dir
from compliance.settings import get_settings
from tests.cli.helpers import assert_one_line_error, run

SAMPLES = samples_dir()


def test_check_passes_the_compliant_sample_and_prints_json() -> None:
    code, stdout, stderr = run(
        "check",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--licence",
        str(SAMPLES / "licence_a.jpg"),
        "--plate",
        "皖AUJ299",
        "--json",
    )
    assert code == 0, stderr
    verdict = json.loads(stdout)["multistage"]  # stdout holds only the JSON
    assert verdict["outcome"] == "PASS"
    assert verdict["judgments"]["plate"]["text"] == "皖AUJ299"
    assert verdict["judgments"]["face"]["same_person"] == "yes"


def test_check_fails_a_wrong_plate_and_a_wrong_face() -> None:
    code, stdout, _ = run(
        "check",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--licence",
        str(SAMPLES / "licence_b.jpg"),
        "--plate",
        "粤B12345",
        "--json",
    )
    assert code == 0
    verdict = json.loads(stdout)["multistage"]
    assert verdict["outcome"] == "FAIL"
    assert "PLATE_MISMATCH" in verdict["reasons"]
    assert verdict["judgments"]["face"]["same_person"] != "yes"


def _bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.jpg", None, "no such file"),
        ("notes.jpg", b"these are not pixels\n" * 40, "not an image"),
        ("truncated.jpg", "truncate", "truncated or corrupt"),
        ("bomb.png", _bomb(), "decompression bomb"),
        ("empty.jpg", b"", "empty"),
    ],
)
def test_bad_photos_get_one_line_errors(tmp_path: Path, name: str, content: object, fragment: str) -> None:
    path = tmp_path / name
    if content == "truncate":
        data = (SAMPLES / "parked_car_wanA195K9.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    code, _, stderr = run("check", str(path), "--plate", "皖A195K9")
    assert_one_line_error(code, stderr, fragment, name)


def test_cmyk_and_16_bit_photos_are_judged(tmp_path: Path) -> None:
    rgb = Image.open(SAMPLES / "parked_car_wanA195K9.jpg").convert("RGB")
    cmyk = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(cmyk, "JPEG", quality=95)
    deep = tmp_path / "deep.png"
    grey16 = Image.fromarray(__import__("numpy").asarray(rgb.convert("L"), dtype="uint16") * 257)
    buf = io.BytesIO()
    grey16.save(buf, "PNG")
    deep.write_bytes(buf.getvalue())
    for path in (cmyk, deep):
        code, stdout, stderr = run("check", str(path), "--plate", "皖A195K9", "--json")
        assert code == 0, stderr
        verdict = json.loads(stdout)["multistage"]
        assert verdict["judgments"]["quality"]["width"] == rgb.width
    # Colour survives CMYK: the blue plate is still read as blue.
    code, stdout, _ = run("check", str(cmyk), "--plate", "皖A195K9", "--json")
    assert json.loads(stdout)["multistage"]["judgments"]["plate"]["color"] == "blue"


def test_unknown_pipeline_is_a_clear_error() -> None:
    code, _, stderr = run("check", str(SAMPLES / "street_taxi.jpg"), "--pipeline", "magic")
    assert_one_line_error(code, stderr, "unknown pipeline", "cascade")


def test_submit_checks_the_job_window(isolated_env: Path) -> None:
    run("registry", "add-carrier", "ACME")
    run("registry", "add-vehicle", "ACME", "皖AUJ299")
    run("registry", "add-driver", "ACME", "Driver A", "--licence", str(SAMPLES / "licence_a.jpg"), "--ref", "A-1")
    args = [
        "submit",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--carrier",
        "ACME",
        "--driver",
        "A-1",
        "--plate",
        "皖AUJ299",
    ]
    code, _, stderr = run(*args, "--job-start", "2026-11-25T10:00")
    assert_one_line_error(code, stderr, "job_end")
    code, _, stderr = run(*args, "--job-start", "tomorrow", "--job-end", "2026-11-25T10:00")
    assert_one_line_error(code, stderr, "ISO 8601")
    code, stdout, stderr = run(*args, "--job-start", "2026-11-25T08:00", "--job-end", "2026-11-25T18:00", "--json")
    assert code == 0, stderr
    verdict = json.loads(stdout)
    # The sample carries no EXIF capture time, so the window cannot be confirmed.
    assert verdict["outcome"] == "REVIEW" and "CAPTURE_TIME_MISSING" in verdict["reasons"]


def test_demo_judges_the_samples(tmp_path: Path) -> None:
    code, stdout, stderr = run("demo", "--folder", str(tmp_path / "demo"))
    assert code == 0, stderr
    assert (tmp_path / "demo" / "compliance.db").is_file()
    assert "PASS" in stdout and "DUPLICATE_PHOTO" in stdout and "PERSON_MISSING" in stdout


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
    assert fallback["pipeline"] == "mllm" and fallback["reason"].startswith(
        "unsure answer"
    )  # constrained: well formed, unsure


def test_a_missing_mllm_is_a_one_line_error(tiny_env: Path, tmp_path: Path) -> None:
    code, _, stderr = check("--pipeline", "mllm", "--mllm-model", str(tmp_path / "nowhere"))
    assert_one_line_error(code, stderr, "not on this machine", "compliance models pull")


def _submit_sample(tiny_model_dir: Path, pipeline: str) -> dict:
    """The bundled sample submitted for driver A of carrier ACME, judged with ``pipeline``: the verdict."""
    assert run("registry", "add-carrier", "ACME")[0] == 0
    assert run("registry", "add-vehicle", "ACME", "皖AUJ299")[0] == 0
    code, _, stderr = run("registry", "add-driver", "ACME", "A", "--licence", str(SAMPLES / "licence_a.jpg"))
    assert code == 0, stderr
    sample = str(SAMPLES / "a_by_car_wanAUJ299.jpg")
    code, stdout, stderr = run(
        "submit", sample, "--carrier", "ACME", "--driver", "1", "--plate", "皖AUJ299",
        "--pipeline", pipeline, "--mllm-model", str(tiny_model_dir), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    return json.loads(stdout)


def test_submit_with_both_keeps_one_combined_verdict(tiny_env: Path, tiny_model_dir: Path) -> None:
    verdict = _submit_sample(tiny_model_dir, "both")
    assert verdict["outcome"] == "REVIEW" and "PIPELINES_DISAGREE_PLATE" in verdict["reasons"]
    assert verdict["judgments"]["provenance"]["pipeline"] == "both"


def test_check_with_a_cascade_the_baseline_settles_never_loads_the_mllm(
    tiny_env: Path, tmp_path: Path, dev_dir: Path
) -> None:
    from tests.composites import LICENCE, PLATE, driver_by_vehicle, jpeg

    photo = tmp_path / "driver_by_car.jpg"
    photo.write_bytes(jpeg(driver_by_vehicle(dev_dir)))
    # No MLLM on this machine: a settled photo does not need one.
    code, stdout, stderr = run(
        "check",
        str(photo),
        "--licence",
        str(dev_dir / LICENCE),
        "--plate",
        PLATE,
        "--pipeline",
        "cascade",
        "--mllm-model",
        str(tmp_path / "nowhere"),
        "--json",
    )
    assert code == 0, stderr
    verdicts = json.loads(stdout)
    assert list(verdicts) == ["multistage", "cascade"]
    cascade = verdicts["cascade"]
    assert cascade["outcome"] == "PASS"
    assert cascade["judgments"]["provenance"]["pipelines"] == ["multistage"]
    assert cascade["judgments"]["provenance"]["cascade"]["path"] == "settled_by_baseline"


def test_check_with_a_cascade_escalates_what_the_baseline_is_unsure_of(tiny_env: Path, tiny_model_dir: Path) -> None:
    code, stdout, stderr = check("--pipeline", "cascade", "--mllm-model", str(tiny_model_dir))
    assert code == 0, stderr
    verdicts = json.loads(stdout)
    assert list(verdicts) == ["multistage", "mllm", "cascade"]
    assert verdicts["multistage"]["outcome"] == "PASS"  # the baseline alone passes it...
    cascade = verdicts["cascade"]
    step = cascade["judgments"]["provenance"]["cascade"]
    # ... but sees the car weakly, so the MLLM judged too and the verdict was decided as "both" decides.
    assert step["path"] == "escalated" and "not sure of the vehicle" in step["reason"]
    assert cascade["outcome"] == "REVIEW" and "PIPELINES_DISAGREE_PLATE" in cascade["reasons"]
    assert cascade["judgments"]["provenance"]["pipelines"] == ["mllm", "multistage"]


def test_submit_with_a_cascade_keeps_one_verdict_naming_its_path(tiny_env: Path, tiny_model_dir: Path) -> None:
    verdict = _submit_sample(tiny_model_dir, "cascade")
    assert verdict["judgments"]["provenance"]["pipeline"] == "cascade"
    assert verdict["judgments"]["provenance"]["cascade"]["path"] == "escalated"
