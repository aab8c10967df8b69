"""What intake reads from a photo's EXIF of where and how it was made: real EXIF, written by
Pillow's writer; an unreadable GPS block is unknown, never an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from compliance.photos import ExifFacts, edited_by, load_photo, receive_photo
from tests.exif_photos import exif_jpeg, with_gps_pointer_broken

LIMITS = {"max_bytes": 20_000_000, "max_pixels": 50_000_000}


def test_gps_position_fix_time_and_camera_are_read() -> None:
    photo = exif_jpeg(make="HUAWEI", model="ALN-AL00", gps=(31.3756, 121.2489), gps_fix=("2026:12:04", (1, 2, 3)))
    for read in (receive_photo(photo, **LIMITS), load_photo(photo, **LIMITS)):
        facts = read.exif
        assert facts.latitude == pytest.approx(31.3756, abs=1e-6)
        assert facts.longitude == pytest.approx(121.2489, abs=1e-6)
        assert facts.gps_time == datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)
        assert facts.camera_make == "HUAWEI" and facts.camera_model == "ALN-AL00" and facts.has_camera
        assert not facts.gps_malformed and facts.software is None


def test_southern_and_western_hemispheres_are_negative() -> None:
    facts = receive_photo(exif_jpeg(gps=(-33.45, -70.66)), **LIMITS).exif
    assert facts.latitude == pytest.approx(-33.45, abs=1e-6) and facts.longitude == pytest.approx(-70.66, abs=1e-6)


@pytest.mark.parametrize(
    ("software", "editor"),
    [
        ("美图秀秀 9.9.1", "美图秀秀"),
        ("醒图", "醒图"),
        ("Adobe Photoshop 25.0 (Windows)", "Photoshop"),
        ("SNAPSEED 2.19", "Snapseed"),
        ("HDR+ 1.0.540104767zd", None),
        ("Android", None),
    ],
)
def test_an_editors_software_tag_is_named(software: str, editor: str | None) -> None:
    facts = receive_photo(exif_jpeg(make="Xiaomi", software=software), **LIMITS).exif
    assert facts.software == software
    assert edited_by(facts.software) == editor


def test_a_screenshot_carries_no_camera() -> None:
    facts = receive_photo(exif_jpeg(), **LIMITS).exif
    assert facts.read and not facts.has_camera and not facts.has_position and not facts.gps_malformed


@pytest.mark.parametrize(
    "photo",
    [
        exif_jpeg(make="Apple", malformed_gps=True),
        with_gps_pointer_broken(exif_jpeg(make="Apple", gps=(31.3, 121.2), taken="2026:12:04 08:00:00")),
    ],
    ids=["bad values", "pointer past the end"],
)
def test_a_malformed_gps_block_is_unknown_not_an_error(photo: bytes) -> None:
    for read in (receive_photo(photo, **LIMITS), load_photo(photo, **LIMITS)):
        assert read.exif.gps_malformed and not read.exif.has_position
        assert read.exif.camera_make == "Apple"


def test_findings_round_trip_through_the_row() -> None:
    facts = receive_photo(exif_jpeg(make="vivo", software="Meitu", gps=(30.0, 120.0)), **LIMITS).exif
    stored = ExifFacts.stored(facts.findings(), facts.latitude, facts.longitude, facts.gps_time)
    assert stored == facts
    assert ExifFacts.stored(None, None, None, None).read is False
