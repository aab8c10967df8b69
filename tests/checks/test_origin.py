"""The checks on where and how the photo was taken: each mode, the defaults, and a carrier's
override (the store's effective thresholds) or the deployment's setting."""

from __future__ import annotations

import pytest

from compliance import geo
from compliance.checks.base import SiteArea
from compliance.photos import ExifFacts
from compliance.settings import Settings, Thresholds
from compliance.store.models import Carrier
from compliance.store.registry import effective_thresholds
from compliance.verdicts import Outcome, ReasonCode
from tests.checks.test_policy import decide, good_judgments

PLATES = ("皖A195K9",)
SITE = SiteArea("SH-JD", geo.Position(31.3756, 121.2489), 500.0)
# About 220 m and about 2.2 km north of the site.
NEAR = ExifFacts(latitude=31.3776, longitude=121.2489, camera_make="HUAWEI")
FAR = ExifFacts(latitude=31.3956, longitude=121.2489, camera_make="HUAWEI")
NO_GPS = ExifFacts(camera_make="HUAWEI")
BAD_GPS = ExifFacts(camera_make="HUAWEI", gps_malformed=True)


def verdict(exif: ExifFacts | None, site: SiteArea | None = SITE, **modes: str):  # type: ignore[no-untyped-def]
    return decide(good_judgments(), thresholds=Thresholds(**modes), site=site, exif=exif)  # type: ignore[arg-type]


def test_defaults_pass_every_ordinary_photo() -> None:
    for exif in (NEAR, NO_GPS, ExifFacts(), ExifFacts(software="Meitu"), None):
        assert verdict(exif) == (Outcome.PASS, ())
    # Without a registered site with a position, a position is not checked.
    assert verdict(FAR, site=None) == (Outcome.PASS, ())


@pytest.mark.parametrize(
    ("mode", "outcome"), [("review", Outcome.REVIEW), ("fail", Outcome.FAIL), ("off", Outcome.PASS)]
)
def test_outside_the_radius(mode: str, outcome: Outcome) -> None:
    got = verdict(FAR, location_outside_site=mode)
    assert got[0] is outcome
    assert got[1] == (() if mode == "off" else (ReasonCode.LOCATION_OUTSIDE_SITE,))
    assert verdict(NEAR, location_outside_site=mode) == (Outcome.PASS, ())


def test_outside_is_a_review_by_default_and_names_the_distance() -> None:
    from compliance.checks import CheckContext, Policy

    ctx = CheckContext(
        judgments=good_judgments(), thresholds=Thresholds(), registered_plates=PLATES, site=SITE, exif=FAR
    )
    v = Policy().decide(ctx)
    assert v.outcome is Outcome.REVIEW and v.reasons == (ReasonCode.LOCATION_OUTSIDE_SITE,)
    (result,) = [r for r in v.results if r.reason is ReasonCode.LOCATION_OUTSIDE_SITE]
    assert "2224 m from site SH-JD" in result.detail or "2225 m from site SH-JD" in result.detail
    inside = Policy().decide(
        CheckContext(
            judgments=good_judgments(), thresholds=Thresholds(), registered_plates=PLATES, site=SITE, exif=NEAR
        )
    )
    assert any("m from site SH-JD" in r.detail for r in inside.results)


@pytest.mark.parametrize(
    ("mode", "outcome"), [("off", Outcome.PASS), ("review", Outcome.REVIEW), ("fail", Outcome.FAIL)]
)
def test_no_position_recorded(mode: str, outcome: Outcome) -> None:
    got = verdict(NO_GPS, location_missing=mode)
    assert got[0] is outcome
    assert got[1] == (() if mode == "off" else (ReasonCode.LOCATION_MISSING,))


def test_an_unreadable_gps_block_is_a_review_where_the_position_is_checked() -> None:
    assert verdict(BAD_GPS) == (Outcome.REVIEW, (ReasonCode.LOCATION_MISSING,))
    assert verdict(BAD_GPS, location_missing="fail") == (Outcome.FAIL, (ReasonCode.LOCATION_MISSING,))
    assert verdict(BAD_GPS, location_outside_site="off") == (Outcome.PASS, ())
    assert verdict(BAD_GPS, site=None) == (Outcome.PASS, ())


@pytest.mark.parametrize("software", ["美图秀秀", "Adobe Lightroom", "PicsArt 24", "Faceu 激萌"])
def test_an_editor_is_a_review_when_opted_in(software: str) -> None:
    exif = ExifFacts(software=software, camera_make="OPPO")
    assert verdict(exif) == (Outcome.PASS, ())
    assert verdict(exif, photo_edited="review") == (Outcome.REVIEW, (ReasonCode.PHOTO_EDITED,))
    assert verdict(ExifFacts(software="MIUI Camera", camera_make="Xiaomi"), photo_edited="review") == (
        Outcome.PASS,
        (),
    )


def test_no_camera_exif_is_a_review_when_opted_in() -> None:
    assert verdict(ExifFacts()) == (Outcome.PASS, ())
    assert verdict(ExifFacts(), no_camera_exif="review") == (Outcome.REVIEW, (ReasonCode.NO_CAMERA_EXIF,))
    assert verdict(ExifFacts(camera_model="iPhone 15"), no_camera_exif="review") == (Outcome.PASS, ())
    # EXIF that was never read (a submission from before it was kept) is not "no camera".
    assert verdict(ExifFacts(read=False), no_camera_exif="review", photo_edited="review") == (Outcome.PASS, ())


def test_editing_checks_never_fail() -> None:
    with pytest.raises(ValueError):
        Thresholds(photo_edited="fail")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Thresholds(no_camera_exif="fail")  # type: ignore[arg-type]


def test_modes_come_from_the_environment_and_a_carriers_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLIANCE_THRESHOLDS__LOCATION_OUTSIDE_SITE", "fail")
    monkeypatch.setenv("COMPLIANCE_THRESHOLDS__NO_CAMERA_EXIF", "review")
    base = Settings().thresholds
    assert base.location_outside_site == "fail" and base.no_camera_exif == "review"
    carrier = Carrier(code="ACME", name="Acme", thresholds={"location_outside_site": "off", "photo_edited": "review"})
    mine = effective_thresholds(carrier, base)
    assert mine.location_outside_site == "off" and mine.photo_edited == "review" and mine.no_camera_exif == "review"
    assert decide(good_judgments(), thresholds=mine, site=SITE, exif=FAR) == (Outcome.PASS, ())
