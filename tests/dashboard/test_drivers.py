"""A driver's page: the current licence photo, its replacements, and the verdicts decided against a
photo since replaced, for a person to check again; scoped to the viewer's carrier like submissions;
on SQLite and PostgreSQL. The licence is replaced through the use case the API calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.dashboard.submissions import oriented_size
from compliance.demo import samples_dir
from compliance.photos import Photo, read_photo_file
from compliance.service import registry as registering
from compliance.settings import Settings
from compliance.store import Store, submissions, users, verdicts
from compliance.store.models import Role, utcnow
from compliance.verdicts import Outcome, ReasonCode
from tests.conftest import paired_blob_url
from tests.dashboard.test_security import PASSWORD, sign_in
from tests.store.samples import decided_at, verdict


def photo(name: str) -> Photo:
    return read_photo_file(samples_dir() / name, max_bytes=20_000_000, max_pixels=50_000_000)


@dataclass
class Drivers:
    client: TestClient
    store: Store
    driver: int  # ACME's driver, whose licence photo was replaced
    other_driver: int  # OTHER's driver
    new_licence: Photo
    passed_before: str  # PASS, decided 2 days before the replacement
    failed_before: str  # FAIL, 3 days before
    too_old: str  # PASS, 40 days ago
    after: str  # PASS, decided after the replacement


@pytest.fixture()
def drivers(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Drivers]:
    # The folder beside SQLite, S3 beside PostgreSQL: the photo views run on both photo stores.
    settings = Settings(database_url=database_url, blob_url=paired_blob_url(request, database_url, tmp_path))
    store = Store.open(settings)
    ids: dict[str, int] = {}
    carriers: dict[str | None, int | None] = {None: None}
    for code in ("ACME", "OTHER"):
        carriers[code] = registering.add_carrier(store, code=code, name=f"{code} Logistics", actor="tests").id
        ids[code] = registering.add_driver(
            store, code, name=f"{code} 张伟", ref=f"{code}-1", licence=photo("licence_a.jpg"), actor="tests"
        ).id
    with store.sessions() as s, s.begin():
        for username, role, code in (("acme.viewer", Role.VIEWER, "ACME"), ("other.viewer", Role.VIEWER, "OTHER"),
                                     ("ops", Role.ADMIN, None)):  # fmt: skip
            users.add_user(s, username=username, password=PASSWORD, role=role, carrier_id=carriers[code])

    def decided(outcome: Outcome, days_ago: float | None, n: int, reasons=()) -> str:
        with store.sessions() as s, s.begin():
            sub = submissions.create_submission(
                s,
                carrier_id=carriers["ACME"],
                driver_id=ids["ACME"],
                photo_sha256=f"{n:064x}",
                photo_phash=f"{n:016x}",
                source="api",
            ).submission
            verdicts.record_verdict(s, sub.id, verdict(outcome, reasons=reasons))
            if days_ago is not None:
                decided_at(s, sub.id, utcnow() - timedelta(days=days_ago))
            return sub.id

    passed_before = decided(Outcome.PASS, 2, 1)
    failed_before = decided(Outcome.FAIL, 3, 2, reasons=(ReasonCode.PLATE_MISMATCH,))
    too_old = decided(Outcome.PASS, 40, 3)
    new_licence = photo("licence_b.jpg")
    registering.replace_licence(
        store, carriers["ACME"], ids["ACME"], new_licence, actor="key:back-office", reason="换证 renewed"
    )
    after = decided(Outcome.PASS, None, 4)
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        yield Drivers(
            client, store, ids["ACME"], ids["OTHER"], new_licence, passed_before, failed_before, too_old, after
        )
    store.engine.dispose()


def rows(html: str, table_id: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    return re.findall(r"<tr[^>]*>.*?</tr>", table[0], re.S)[1:]  # without the header


def test_the_driver_page_lists_the_verdicts_decided_against_the_replaced_photo(drivers: Drivers) -> None:
    assert sign_in(drivers.client, "acme.viewer").status_code == 303
    page = drivers.client.get(f"/dashboard/drivers/{drivers.driver}")
    assert page.status_code == 200
    html = page.text
    assert "ACME 张伟" in html and "ACME-1" in html
    listed = rows(html, "recheck-list")
    assert [drivers.passed_before in r for r in listed] == [True, False]
    assert [drivers.failed_before in r for r in listed] == [False, True]
    # Older than 30 days, or decided after the replacement: not listed.
    assert drivers.too_old not in html and drivers.after not in html
    # A PASS decided on the old face is the risk: flagged, and counted above the list.
    assert 'class="recheck-pass"' in listed[0] and "recheck-pass" not in listed[1]
    assert f'href="/dashboard/submissions/{drivers.passed_before}"' in listed[0]
    assert re.search(r'class="recheck-alert"[^>]*><strong>1</strong>', html)
    assert "PLATE_MISMATCH" in listed[1]
    # The replacement: who, why, the old photo's hash and the new one's.
    history = re.search(r'id="replacements".*?</section>', html, re.S)[0]  # type: ignore[index]
    assert "key:back-office" in history and "换证 renewed" in history
    assert drivers.new_licence.sha256[:12] in history
    assert f'src="/dashboard/drivers/{drivers.driver}/licence"' in html


def test_the_licence_photo_served_is_the_new_one(drivers: Drivers) -> None:
    sign_in(drivers.client, "acme.viewer")
    licence = drivers.client.get(f"/dashboard/drivers/{drivers.driver}/licence")
    assert licence.status_code == 200 and licence.headers["content-type"] == "image/jpeg"
    assert licence.content == drivers.new_licence.data
    assert licence.headers["cache-control"].startswith("private")


def test_another_carriers_viewer_finds_neither_the_page_nor_the_licence(drivers: Drivers) -> None:
    mine = (f"/dashboard/drivers/{drivers.driver}", f"/dashboard/drivers/{drivers.driver}/licence")
    for path in mine:  # signed out: sign in first
        response = drivers.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/login?next=")
    sign_in(drivers.client, "other.viewer")
    assert drivers.client.get(f"/dashboard/drivers/{drivers.other_driver}").status_code == 200
    for path in mine:
        response = drivers.client.get(path)
        assert response.status_code == 404, path
        assert drivers.passed_before not in response.text and "ACME" not in response.text
    for bad in ("999999", "0", "abc", "²", "99999999999999999999", "-1"):
        assert drivers.client.get(f"/dashboard/drivers/{bad}").status_code == 404, bad
    # Someone who sees every carrier sees both.
    sign_in(drivers.client, "ops")
    for path in mine:
        assert drivers.client.get(path).status_code == 200


def test_the_submission_page_links_the_driver(drivers: Drivers) -> None:
    sign_in(drivers.client, "acme.viewer")
    page = drivers.client.get(f"/dashboard/submissions/{drivers.passed_before}")
    assert f'href="/dashboard/drivers/{drivers.driver}"' in page.text


def test_the_licence_photo_is_drawn_at_its_size_read_from_its_header(drivers: Drivers) -> None:
    """The licence panel's size comes from the photo's first bytes (a ranged read of the bucket),
    turned by its EXIF orientation; no store hands out a filesystem path."""
    sign_in(drivers.client, "acme.viewer")
    page = drivers.client.get(f"/dashboard/submissions/{drivers.passed_before}")
    width, height = oriented_size(drivers.new_licence.data)
    assert f'class="overlay licence" viewBox="0 0 {width} {height}"' in page.text
    licence = drivers.client.get(f"/dashboard/submissions/{drivers.passed_before}/licence")
    assert licence.status_code == 200 and licence.headers["cache-control"] == "private, max-age=3600"


_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_ENGLISH = re.compile(r"[A-Za-z]{2,}")


def test_every_label_is_in_the_readers_language(drivers: Drivers) -> None:
    sign_in(drivers.client, "ops")
    # One page with a re-check list, one with nothing replaced (its empty messages).
    for language, script in (("zh-CN", _CHINESE), ("en", _ENGLISH)):
        for driver_id, least in ((drivers.driver, 18), (drivers.other_driver, 5)):
            html = drivers.client.get(f"/dashboard/drivers/{driver_id}", headers={"Accept-Language": language}).text
            # Headings, column heads, captions, notes and empty-list messages, each in full.
            found = re.findall(r"<(h1|h2|th|figcaption)\b[^>]*>(.*?)</\1>", html, re.S)
            found += re.findall(r'<(p|td) class="(?:hint|recheck-alert|empty)"[^>]*>(.*?)</\1>', html, re.S)
            found += re.findall(r'<(span) class="tag">(.*?)</span>', html, re.S)
            labels = [re.sub(r"<[^>]+>", " ", text) for _, text in found]
            assert len(labels) >= least, labels
            for text in labels:
                assert script.search(text), f"not in {language}: {text!r}"
        if language == "zh-CN":
            assert "待复核的判定" in html and "驾驶证照片更换记录" in html and "Verdicts to re-check" not in html
        else:
            assert "Verdicts to re-check" in html and "Licence photo replacements" in html and "待复核" not in html
