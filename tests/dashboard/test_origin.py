"""The submission page and the review queue show where and how the photo was taken: the EXIF
position and its distance to the registered site, the Software tag and whether a camera wrote it;
the overview counts the new reasons. On SQLite and PostgreSQL, through the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.photos import receive_photo
from compliance.service import registry as registering
from compliance.service.intake import Upload, accept
from compliance.settings import Settings
from compliance.store import Store, users, verdicts
from compliance.store.models import Role
from compliance.verdicts import Outcome, ReasonCode
from tests.dashboard.test_security import PASSWORD, sign_in
from tests.exif_photos import exif_jpeg
from tests.service.conftest import PASSING_PHOTO
from tests.store.samples import verdict

LIMITS = {"max_bytes": 20_000_000, "max_pixels": 50_000_000}


@dataclass
class Origins:
    client: TestClient
    far: str  # 2.2 km from SH-JD, edited in 美图秀秀, by a HUAWEI camera: REVIEW
    plain: str  # no EXIF at all, at site SH-JD: PASS


@pytest.fixture()
def origins(database_url: str, tmp_path: Path) -> Iterator[Origins]:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    carrier = registering.add_carrier(store, code="ACME", name="ACME Logistics", actor="tests")
    registering.add_vehicle(store, "ACME", plate="皖AUJ299", actor="tests")
    registering.add_driver(store, "ACME", name="张伟", ref="A-1", licence=None, actor="tests")
    registering.add_site(
        store, "ACME", code="SH-JD", name="上海嘉定", latitude=31.3756, longitude=121.2489, radius_m=500, actor="t"
    )
    with store.sessions() as s, s.begin():
        users.add_user(s, username="acme.reviewer", password=PASSWORD, role=Role.REVIEWER, carrier_id=carrier.id)

    def submitted(photo: bytes, outcome: Outcome, reasons: tuple[ReasonCode, ...]) -> str:
        upload = Upload(carrier="ACME", driver="A-1", plate="皖AUJ299", site="SH-JD")
        accepted = accept(store, receive_photo(photo, **LIMITS), upload)
        with store.sessions() as s, s.begin():
            verdicts.record_verdict(s, accepted.submission_id, verdict(outcome, reasons=reasons))
        return accepted.submission_id

    far = submitted(
        exif_jpeg(PASSING_PHOTO, make="HUAWEI", model="P60", software="美图秀秀 9.9", gps=(31.3956, 121.2489)),
        Outcome.REVIEW,
        (ReasonCode.LOCATION_OUTSIDE_SITE, ReasonCode.PHOTO_EDITED),
    )
    plain = submitted(exif_jpeg(PASSING_PHOTO), Outcome.PASS, ())
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        yield Origins(client, far, plain)
    store.engine.dispose()


def _panel(html: str) -> str:
    found = re.search(r'<section class="card origin" id="origin">.*?</section>', html, re.S)
    assert found, "no origin panel"
    return found[0]


def test_the_submission_page_shows_position_distance_and_exif(origins: Origins) -> None:
    assert sign_in(origins.client, "acme.reviewer").status_code == 303
    panel = _panel(origins.client.get(f"/dashboard/submissions/{origins.far}").text)
    assert "position" in panel and "distance to site" in panel
    assert "31.395600, 121.248900" in panel
    assert re.search(r"222[45] m</strong> outside the radius", panel)
    assert "SH-JD 上海嘉定" in panel and "radius 500 m" in panel
    assert "美图秀秀 9.9" in panel and "editor: 美图秀秀" in panel
    assert "HUAWEI P60" in panel

    plain = _panel(origins.client.get(f"/dashboard/submissions/{origins.plain}").text)
    assert "none recorded" in plain and "unknown" in plain
    assert '<strong class="answer unknown">none</strong>' in plain  # no camera make or model
    chinese = _panel(
        origins.client.get(f"/dashboard/submissions/{origins.far}", headers={"Accept-Language": "zh-CN"}).text
    )
    assert "拍摄地点与来源" in chinese and "距场地" in chinese and "半径 500 米" in chinese
    assert re.search(r"222[45] m</strong> 超出半径", chinese) and "修图软件： 美图秀秀" in chinese


def test_the_review_queue_shows_them_too(origins: Origins) -> None:
    assert sign_in(origins.client, "acme.reviewer").status_code == 303
    page = origins.client.get(f"/dashboard/review/{origins.far}")
    assert page.status_code == 200
    panel = _panel(page.text)
    assert "31.395600, 121.248900" in panel and "editor: 美图秀秀" in panel


def test_the_overview_counts_the_new_reasons(origins: Origins) -> None:
    assert sign_in(origins.client, "acme.reviewer").status_code == 303
    html = origins.client.get("/dashboard/").text
    assert "LOCATION_OUTSIDE_SITE" in html and "PHOTO_EDITED" in html
