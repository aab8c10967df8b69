"""``compliance registry`` as a user meets it: an empty registry and unknown names are clear
errors, and a bad registration or upload loses nothing already stored."""

from __future__ import annotations

import json
from pathlib import Path

from compliance.demo import samples_dir
from tests.cli.helpers import assert_one_line_error, run

SAMPLES = samples_dir()


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


def test_a_duplicate_driver_ref_leaves_no_photo_behind(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME")[0] == 0
    licence_a, licence_b = str(SAMPLES / "licence_a.jpg"), str(SAMPLES / "licence_b.jpg")
    assert run("registry", "add-driver", "ACME", "Driver A", "--licence", licence_a, "--ref", "A-1")[0] == 0
    blobs = isolated_env / "blobs"
    before = {p for p in blobs.rglob("*") if p.is_file()}
    code, _, stderr = run("registry", "add-driver", "ACME", "Driver B", "--licence", licence_b, "--ref", "A-1")
    assert_one_line_error(code, stderr, "A-1", "already registered")
    assert {p for p in blobs.rglob("*") if p.is_file()} == before


def test_sites_from_the_command_line(isolated_env: Path) -> None:
    """``registry add-site`` (WGS-84 or GCJ-02), listed; once a carrier has sites an upload's site
    must name one, and the refusal stores nothing."""
    from compliance import geo

    assert run("registry", "add-carrier", "ACME")[0] == 0
    assert run("registry", "add-vehicle", "ACME", "皖AUJ299")[0] == 0
    assert (
        run("registry", "add-driver", "ACME", "A", "--licence", str(SAMPLES / "licence_a.jpg"), "--ref", "A-1")[0] == 0
    )
    photo = str(SAMPLES / "a_by_car_wanAUJ299.jpg")
    submit = ("submit", photo, "--carrier", "ACME", "--driver", "A-1", "--plate", "皖AUJ299", "--json")
    code, _, stderr = run(*submit, "--site", "Hefei yard")
    assert code == 0, stderr  # no sites registered: free text
    gcj = geo.wgs84_to_gcj02(geo.Position(31.3756, 121.2489))
    code, stdout, stderr = run(
        "registry", "add-site", "ACME", "SH-JD", "上海嘉定",
        "--lat", str(gcj.latitude), "--lon", str(gcj.longitude), "--radius-m", "300", "--datum", "gcj02",
    )  # fmt: skip
    assert code == 0, stderr
    assert "31.3756" in stdout and "121.2489" in stdout and "300 m" in stdout
    code, _, stderr = run("registry", "add-site", "ACME", "SH-JD", "again")
    assert_one_line_error(code, stderr, "SH-JD")
    code, _, stderr = run("registry", "add-site", "ACME", "X", "x", "--lat", "31", "--datum", "bd09")
    assert_one_line_error(code, stderr, "bd09")
    code, stdout, _ = run("registry", "list", "ACME")
    assert "SH-JD" in stdout
    code, _, stderr = run(*submit, "--site", "Hefei yard")
    assert_one_line_error(code, stderr, "Hefei yard")
    code, stdout, stderr = run(*submit, "--site", "SH-JD")
    assert code == 0, stderr
    assert json.loads(stdout)["outcome"] == "PASS"  # no GPS in the photo: LOCATION_MISSING is off by default
    assert run("registry", "set-thresholds", "ACME", "location_missing=review")[0] == 0
    code, stdout, stderr = run(*submit, "--site", "SH-JD")
    assert code == 0, stderr
    assert json.loads(stdout)["outcome"] == "REVIEW" and json.loads(stdout)["reasons"] == ["LOCATION_MISSING"]
