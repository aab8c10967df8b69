"""The command line as a user meets it: verdicts, JSON, and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from compliance.cli import app
from compliance.demo import samples_dir

SAMPLES = samples_dir()
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), stderr
    message = " ".join(lines)  # rich may fold a long line to the terminal's width
    for fragment in fragments:
        assert fragment in message


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
    assert_one_line_error(code, stderr, "unknown pipeline")


def test_empty_registry_and_unknown_names_are_clear_errors(isolated_env: Path) -> None:
    photo = str(SAMPLES / "parked_car_wanA195K9.jpg")
    code, _, stderr = run("registry", "list")
    assert_one_line_error(code, stderr, "registry is empty")
    code, _, stderr = run("submit", photo, "--carrier", "NOPE", "--driver", "D-1")
    assert_one_line_error(code, stderr, "NOPE")
    assert run("registry", "add-carrier", "ACME")[0] == 0
    code, _, stderr = run("submit", photo, "--carrier", "ACME", "--driver", "D-1")
    assert_one_line_error(code, stderr, "no registered vehicles")


def test_registry_submit_and_nothing_lost_on_bad_input(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME", "--name", "Acme Haulage")[0] == 0
    assert run("registry", "add-vehicle", "ACME", "皖A·UJ299", "--color", "blue", "--kind", "car")[0] == 0
    code, _, stderr = run("registry", "add-vehicle", "ACME", "皖AUJ299")
    assert_one_line_error(code, stderr, "皖AUJ299")  # the same plate twice, however it is written
    code, _, stderr = run("registry", "add-driver", "ACME", "A", "--licence", str(isolated_env / "none.jpg"))
    assert_one_line_error(code, stderr, "no such file")
    assert (
        run("registry", "add-driver", "ACME", "Driver A", "--licence", str(SAMPLES / "licence_a.jpg"), "--ref", "A-1")[
            0
        ]
        == 0
    )

    code, stdout, stderr = run(
        "submit",
        str(SAMPLES / "a_by_car_wanAUJ299.jpg"),
        "--carrier",
        "ACME",
        "--driver",
        "A-1",
        "--plate",
        "皖AUJ299",
        "--json",
    )
    assert code == 0, stderr
    first = json.loads(stdout)
    assert first["outcome"] == "PASS"

    # A bad upload afterwards is refused and leaves the earlier submission as it was.
    bad = isolated_env / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, _, stderr = run("submit", str(bad), "--carrier", "ACME", "--driver", "A-1")
    assert_one_line_error(code, stderr, "bad.jpg")
    code, _, stderr = run(
        "submit", str(SAMPLES / "street_taxi.jpg"), "--carrier", "ACME", "--driver", "A-1", "--plate", "京A00000"
    )
    assert_one_line_error(code, stderr, "京A00000")

    from compliance.settings import get_settings
    from compliance.store import Store, pages

    store = Store.open(get_settings())
    with store.sessions() as s:
        rows = pages.list_submissions(s)
        assert [r.id for r in rows] == [first["submission"]]
        assert rows[0].current_verdict is not None and rows[0].current_verdict.outcome.value == "PASS"
        assert store.blobs.exists(rows[0].photo_sha256)


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
