"""Sites through the API (scope ``registry``), an upload's site checked against them, and what a
photo's EXIF says of where and how it was taken kept on the submission and judged from the row:
real EXIF, uploaded through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from compliance import geo
from compliance.judgments import Answer, PlateReading
from compliance.service import registry as registering
from compliance.service import verdicts
from compliance.store import keys, registry
from compliance.store.models import Submission
from compliance.verdicts import Outcome, ReasonCode
from tests.api.helpers import assert_error, count
from tests.checks.test_policy import good_judgments
from tests.exif_photos import exif_jpeg, with_gps_pointer_broken
from tests.service.conftest import PASSING_PHOTO, Api

SITE = (31.3756, 121.2489)  # WGS-84
NEAR = (31.3776, 121.2489)  # ~220 m north
FAR = (31.3956, 121.2489)  # ~2.2 km north


def _site(api: Api, **body: object) -> dict:
    created = api.client.post("/v1/sites", json=body, headers=api.acme.auth)
    assert created.status_code == 201, created.text
    return created.json()


def test_sites_are_registered_listed_and_refused_when_repeated_or_bad(api: Api) -> None:
    client, auth = api.client, api.acme.auth
    site = _site(api, code="SH-JD", name="上海嘉定", lat=SITE[0], lon=SITE[1], radius_m=300)
    assert site["lat"] == pytest.approx(SITE[0]) and site["radius_m"] == 300
    assert client.get(f"/v1/sites/{site['id']}", headers=auth).json()["name"] == "上海嘉定"
    assert_error(client.get(f"/v1/sites/{site['id']}", headers=api.other.auth), 404, "not_found")
    assert_error(client.post("/v1/sites", json={"code": "SH-JD", "name": "again"}, headers=auth), 409)
    assert_error(client.post("/v1/sites", json={"code": "X", "name": "x", "lat": 31.0}, headers=auth), 422)
    assert_error(client.post("/v1/sites", json={"code": "X", "name": "x", "lat": 91, "lon": 0}, headers=auth), 422)
    assert_error(client.post("/v1/sites", json={"code": "X", "name": "x", "radius_m": 5}, headers=auth), 422)
    no_position = _site(api, code="HF", name="Hefei depot")
    assert no_position["lat"] is None and no_position["radius_m"] is None
    assert [s["code"] for s in client.get("/v1/sites", headers=auth).json()["items"]] == ["HF", "SH-JD"]
    assert client.get("/v1/sites", headers=api.other.auth).json()["items"] == []


def test_a_gcj02_position_is_kept_in_wgs84(api: Api) -> None:
    gcj = geo.wgs84_to_gcj02(geo.Position(*SITE))
    site = _site(api, code="SH-JD", name="上海嘉定", lat=gcj.latitude, lon=gcj.longitude, datum="gcj02")
    assert geo.distance_m(geo.Position(site["lat"], site["lon"]), geo.Position(*SITE)) < 1.0
    default_radius = _site(api, code="SH-2", name="二号", lat=SITE[0], lon=SITE[1])
    assert default_radius["radius_m"] == registry.DEFAULT_SITE_RADIUS_M


def test_sites_need_the_registry_scope(api: Api) -> None:
    with api.store.sessions() as s, s.begin():
        _, token = keys.create_key(s, api.acme.id, name="driver app", scopes=("submit",))
    refused = api.client.post(
        "/v1/sites", json={"code": "A", "name": "a"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(refused, 403)


def test_an_unknown_site_is_a_422_once_the_carrier_has_sites(api: Api) -> None:
    assert api.upload(site="anywhere, free text").status_code == 202  # no sites yet: free text
    _site(api, code="SH-JD", name="上海嘉定")
    before = count(api, Submission)
    assert_error(api.upload(site="anywhere, free text"), 422, "unknown_reference")
    assert count(api, Submission) == before
    assert api.upload(site="SH-JD").status_code == 202
    # Another carrier without sites keeps free text.
    assert api.upload(api.other, site="SH-JD").status_code == 202


def _judged(api: Api, submission_id: str):  # type: ignore[no-untyped-def]
    """Decided from the stored row with judgments that pass everything else."""
    ctx = verdicts.begin(api.store, api.settings, submission_id, mark_processing=False)
    plate = PlateReading(text=api.acme.plate, confidence=0.97, known_format=Answer.YES, plate_type="standard")
    return verdicts.conclude(api.store, ctx, good_judgments(plate=plate))


def _upload(api: Api, photo: bytes, site: str | None = "SH-JD") -> str:
    response = api.upload(photo=photo, site=site)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_position_is_kept_and_judged_against_the_site(api: Api) -> None:
    _site(api, code="SH-JD", name="上海嘉定", lat=SITE[0], lon=SITE[1], radius_m=500)
    near = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI", model="P60", gps=NEAR))
    far = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI", model="P60", gps=FAR))
    none = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI"))
    detail = api.client.get(f"/v1/submissions/{far}", headers=api.acme.auth).json()
    assert detail["gps_lat"] == pytest.approx(FAR[0], abs=1e-6) and detail["gps_lon"] == pytest.approx(FAR[1])
    assert detail["exif_findings"]["camera_make"] == "HUAWEI"
    assert _judged(api, near).outcome is Outcome.PASS
    outside = _judged(api, far)
    assert outside.outcome is Outcome.REVIEW and outside.reasons == (ReasonCode.LOCATION_OUTSIDE_SITE,)
    assert any("m from site SH-JD" in r.detail for r in outside.results)
    assert _judged(api, none).outcome is Outcome.PASS  # LOCATION_MISSING is off by default


def test_a_carriers_modes_decide(api: Api) -> None:
    _site(api, code="SH-JD", name="上海嘉定", lat=SITE[0], lon=SITE[1], radius_m=500)
    overrides = {"location_outside_site": "fail", "location_missing": "review", "photo_edited": "review"}
    # What `compliance registry set-thresholds` does: the carrier's overrides.
    registering.set_thresholds(api.store, api.acme.id, overrides, actor="test", reason=None)
    far = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI", gps=FAR))
    none = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI"))
    edited = _upload(api, exif_jpeg(PASSING_PHOTO, make="HUAWEI", software="美图秀秀", gps=NEAR))
    assert _judged(api, far).outcome is Outcome.FAIL
    assert _judged(api, none).reasons == (ReasonCode.LOCATION_MISSING,)
    assert _judged(api, edited).reasons == (ReasonCode.PHOTO_EDITED,)


@pytest.mark.parametrize("broken", ["values", "pointer"])
def test_a_malformed_gps_block_is_never_a_5xx_nor_a_lost_upload(api: Api, broken: str) -> None:
    _site(api, code="SH-JD", name="上海嘉定", lat=SITE[0], lon=SITE[1])
    photo = (
        exif_jpeg(PASSING_PHOTO, make="Apple", malformed_gps=True)
        if broken == "values"
        else with_gps_pointer_broken(exif_jpeg(PASSING_PHOTO, make="Apple", gps=NEAR))
    )
    submission_id = _upload(api, photo)
    detail = api.client.get(f"/v1/submissions/{submission_id}", headers=api.acme.auth).json()
    assert detail["gps_lat"] is None and detail["exif_findings"]["gps_malformed"] is True
    # Unknown, never a pass: where the position is checked (by default) a person looks.
    assert _judged(api, submission_id).reasons == (ReasonCode.LOCATION_MISSING,)


def test_a_photo_without_exif_is_kept_without_findings_of_a_camera(api: Api) -> None:
    submission_id = _upload(api, exif_jpeg(PASSING_PHOTO), site=None)
    detail = api.client.get(f"/v1/submissions/{submission_id}", headers=api.acme.auth).json()
    assert detail["exif_findings"] == {
        "software": None,
        "camera_make": None,
        "camera_model": None,
        "gps_malformed": False,
    }
    assert _judged(api, submission_id).outcome is Outcome.PASS
