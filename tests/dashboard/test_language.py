"""The dashboard in Chinese and English: who sees which (the user's setting, the header's switch, the
browser's Accept-Language, COMPLIANCE_DEFAULT_LANGUAGE), the pages, errors, times and exports in
the reader's language, and no English left on a Chinese page. Over HTTP, on a small store."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from compliance.api.app import create_app
from compliance.dashboard.language import negotiate
from compliance.messages import message
from compliance.reports.exports import COLUMNS
from compliance.settings import Settings
from compliance.store import Store, registry, submissions, users, verdicts
from compliance.store.models import Role
from compliance.verdicts import Outcome, ReasonCode
from tests.dashboard.test_audits import PASSWORD, closed_port, older, token
from tests.store.samples import judgments, verdict

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


@dataclass
class Dash:
    client: TestClient
    store: Store
    settings: Settings
    failed: str  # a FAIL for PLATE_MISMATCH
    review: str  # a REVIEW waiting in the queue


def _dash(database_url: str, tmp_path: Path, **overrides: object) -> Iterator[Dash]:
    settings = Settings(
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        broker_url=f"redis://127.0.0.1:{closed_port()}/0",
        broker_connect_timeout_s=0.5,
        **overrides,  # type: ignore[arg-type]
    )
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="安徽物流")
        vehicle = registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299", plate_color="blue")
        driver = registry.add_driver(s, carrier_id=carrier.id, name="李伟", external_ref="D-1")
        ids = []
        for n, decided in enumerate((older(Outcome.FAIL, ReasonCode.PLATE_MISMATCH), None)):
            sub = submissions.create_submission(
                s,
                carrier_id=carrier.id,
                driver_id=driver.id,
                vehicle_id=vehicle.id,
                photo_sha256=f"{n + 1:064x}",
                photo_phash=f"{n + 1:016x}",
                source="api",
                site="合肥仓",
            ).submission
            ids.append(sub.id)
            verdicts.record_verdict(
                s,
                sub.id,
                decided or verdict(Outcome.REVIEW, reasons=(ReasonCode.PLATE_CONFUSABLE,), of=judgments()),
            )
        users.add_user(s, username="wang", password=PASSWORD, role=Role.REVIEWER, carrier_id=carrier.id)
        users.add_user(s, username="li", password=PASSWORD, role=Role.ADMIN, carrier_id=None, language="en")
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        yield Dash(client, store, settings, *ids)
    store.engine.dispose()


@pytest.fixture()
def dash(database_url: str, tmp_path: Path) -> Iterator[Dash]:
    yield from _dash(database_url, tmp_path, default_language="zh-CN")


def sign_in(client: TestClient, username: str, headers: dict[str, str] | None = None) -> str:
    page = client.get("/dashboard/login", headers=headers)
    signed = client.post(
        "/dashboard/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token(page.text)},
        headers=headers,
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    return token(client.get("/dashboard/exports", headers=headers).text)


def switch(client: TestClient, form_token: str, lang: str, headers: dict[str, str] | None = None):
    return client.post(
        "/dashboard/language",
        data={"lang": lang, "next": "/dashboard/submissions?outcome=FAIL", "csrf_token": form_token},
        headers=headers,
        follow_redirects=False,
    )


def stored_language(dash: Dash, username: str) -> str | None:
    with dash.store.sessions() as s:
        return users.find_user(s, username).language


def test_chinese_is_the_default_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPLIANCE_DEFAULT_LANGUAGE")
    assert Settings().default_language == "zh-CN"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh-TW", "zh-CN"),  # the only Chinese here
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("en;q=0.1, zh;q=0.9", "zh-CN"),  # the weights, not the order
        ("de-DE", None),
        ("*", None),
        ("", None),
        ("en;q=bogus, zh", "zh-CN"),
    ],
)
def test_the_browsers_accept_language_is_negotiated(header: str, expected: str | None) -> None:
    assert negotiate(header) == expected


def test_a_user_with_no_setting_sees_the_browsers_language_else_the_default(dash: Dash) -> None:
    login = dash.client.get("/dashboard/login")
    assert '<html lang="zh-CN">' in login.text and "登录" in login.text  # neither: the default
    sign_in(dash.client, "wang")
    chinese = dash.client.get("/dashboard/", headers=ZH)
    assert "总览" in chinese.text and "Overview" not in chinese.text
    english = dash.client.get("/dashboard/", headers=EN)
    assert '<html lang="en">' in english.text and "Overview" in english.text and "总览" not in english.text


def test_the_default_language_setting_decides_when_the_browser_asks_for_neither(
    database_url: str, tmp_path: Path
) -> None:
    for dash in _dash(database_url, tmp_path, default_language="en"):
        assert "Sign in" in dash.client.get("/dashboard/login", headers={"Accept-Language": "de"}).text
        assert "登录" in dash.client.get("/dashboard/login", headers=ZH).text


def test_a_users_setting_outranks_the_browser(dash: Dash) -> None:
    sign_in(dash.client, "li", headers=ZH)
    page = dash.client.get("/dashboard/submissions", headers=ZH)
    assert "Submissions" in page.text and "提交记录" not in page.text


def test_the_switch_is_saved_on_the_user_and_follows_them_to_another_browser(dash: Dash) -> None:
    form_token = sign_in(dash.client, "wang", headers=ZH)
    switched = switch(dash.client, form_token, "en", headers=ZH)
    assert switched.status_code == 303 and switched.headers["location"] == "/dashboard/submissions?outcome=FAIL"
    assert stored_language(dash, "wang") == "en"
    assert "Submissions" in dash.client.get("/dashboard/submissions", headers=ZH).text
    with TestClient(dash.client.app, base_url="http://dash.test") as other:  # another browser, in Chinese
        sign_in(other, "wang", headers=ZH)
        assert "Submissions" in other.get("/dashboard/", headers=ZH).text
    back = switch(dash.client, form_token, "zh-CN", headers=EN)
    assert back.status_code == 303 and stored_language(dash, "wang") == "zh-CN"
    assert "提交记录" in dash.client.get("/dashboard/submissions", headers=EN).text


def test_the_switch_before_signing_in_lasts_through_sign_in(dash: Dash) -> None:
    page = dash.client.get("/dashboard/login", headers=ZH)
    assert switch(dash.client, token(page.text), "en", headers=ZH).status_code == 303
    assert "Sign in" in dash.client.get("/dashboard/login", headers=ZH).text
    sign_in(dash.client, "wang", headers=ZH)
    assert "Overview" in dash.client.get("/dashboard/", headers=ZH).text
    assert stored_language(dash, "wang") is None  # not signed in when chosen: the session's only


def test_a_bad_switch_is_refused_and_changes_nothing(dash: Dash) -> None:
    form_token = sign_in(dash.client, "wang", headers=ZH)
    refused = switch(dash.client, form_token, "fr", headers=ZH)
    assert refused.status_code == 400 and "请选择以下之一：zh-CN, en" in refused.text
    assert stored_language(dash, "wang") is None
    forged = switch(dash.client, "not the token", "en", headers=ZH)
    assert forged.status_code == 403 and "表单已过期或并非来自本站" in forged.text
    assert stored_language(dash, "wang") is None


def test_reason_codes_stay_codes_with_their_explanation_beside_them(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    page = dash.client.get(f"/dashboard/submissions/{dash.failed}", headers=ZH).text
    assert "PLATE_MISMATCH" in page and message(ReasonCode.PLATE_MISMATCH, "zh") in page
    assert message(ReasonCode.PLATE_MISMATCH, "en") not in page
    english = dash.client.get(f"/dashboard/submissions/{dash.failed}", headers=EN).text
    assert "PLATE_MISMATCH" in english and message(ReasonCode.PLATE_MISMATCH, "en") in english
    queue = dash.client.get("/dashboard/review", headers=ZH).text
    assert "审核队列" in queue and "与驾驶证是同一人吗？" in queue and "批准 · 通过" in queue
    assert "PLATE_CONFUSABLE" in queue and message(ReasonCode.PLATE_CONFUSABLE, "zh") in queue
    # The keyboard's hints come from the page, in Chinese.
    assert 'data-need-reason="请先选择原因' in queue and 'data-picked="原因：{reason}' in queue


def test_times_are_named_in_the_readers_words(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    assert "时间为北京时间" in dash.client.get("/dashboard/submissions", headers=ZH).text
    assert "times in China Standard Time" in dash.client.get("/dashboard/submissions", headers=EN).text


def test_errors_and_form_messages_are_in_the_readers_language(dash: Dash) -> None:
    form_token = sign_in(dash.client, "wang", headers=ZH)
    missing = dash.client.get("/dashboard/submissions/nonesuch", headers=ZH)
    assert missing.status_code == 404 and "未找到" in missing.text and "找不到该提交" in missing.text
    bad = dash.client.get("/dashboard/submissions?since=yesterday&until=2026-01-01", headers=ZH)
    assert bad.status_code == 400 and "开始日期：&#39;yesterday&#39; 不是有效日期" in bad.text
    admins_only = dash.client.post("/dashboard/audits", data={"csrf_token": form_token}, headers=ZH)
    assert admins_only.status_code == 403 and "此操作需要管理员角色；您的角色是审核员" in admins_only.text
    wrong = TestClient(dash.client.app, base_url="http://dash.test")
    page = wrong.get("/dashboard/login", headers=ZH)
    denied = wrong.post(
        "/dashboard/login",
        data={"username": "wang", "password": "wrong password", "csrf_token": token(page.text)},
        headers=ZH,
    )
    assert denied.status_code == 401 and "用户名或密码错误。" in denied.text


# Latin words a Chinese page may hold: the language switch's own "English", formats and units, and
# the pipelines' names (identifiers, as the reason codes are).
_ALLOWED = {"English", "Esc", "zip", "multistage", "mllm", "both", "cascade"}
# A word is a run of letters standing alone: ids, versions and plates (letters among digits) are not.
_TOKEN = re.compile(r"[^\s,;:()（）·。，：、/|“”?！!=]+")
_WORD = re.compile(r"[A-Za-z]{3,}(?:'[a-z]+)?\.?")


def english_left(html: str) -> list[str]:
    """Latin words a reader sees on the page (text, not markup, scripts or stored data), bar codes."""
    visible = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    # Stored data shown as it is: the audit trail's JSON and action names, the model's diagnostics.
    visible = re.sub(r'<td class="(?:[^"]* )?(?:json|code)"[^>]*>.*?</td>', " ", visible, flags=re.S)
    # What a reader sees of the markup: placeholders, tooltips, labels read out, image text.
    shown = " ".join(re.findall(r'\s(?:placeholder|title|aria-label|alt)="([^"]*)"', visible))
    visible = re.sub(r"<[^>]+>", " ", visible) + " " + shown
    visible = visible.replace("&#39;", "'").replace("&amp;", "&")
    words = [t for t in _TOKEN.findall(visible) if _WORD.fullmatch(t)]
    return [w for w in words if not w.isupper() and w.rstrip(".") not in _ALLOWED]


def test_no_english_is_left_on_the_chinese_pages(dash: Dash) -> None:
    sign_in(dash.client, "li", headers=ZH)
    form_token = token(dash.client.get("/dashboard/exports").text)
    switch(dash.client, form_token, "zh-CN")
    pages = (
        "/dashboard/",
        "/dashboard/submissions",
        f"/dashboard/submissions/{dash.failed}",
        f"/dashboard/submissions/{dash.review}",
        f"/dashboard/review/{dash.review}",
        "/dashboard/audits",
        "/dashboard/exports",
        "/dashboard/drivers/1",
        "/dashboard/submissions/nonesuch",
        "/dashboard/submissions?since=bogus",
    )
    for path in pages:
        page = dash.client.get(path)
        assert page.status_code in (200, 400, 404), path
        assert not english_left(page.text), (path, english_left(page.text))
    assert english_left("<p>Review queue</p><script>var x = 'ignored';</script>") == ["Review", "queue"]


def test_the_charts_titles_axes_and_legends_are_in_the_readers_language(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    page = dash.client.get("/dashboard/", headers=ZH).text
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', page, flags=re.S)
    assert found
    figures = json.loads(found[1])
    titles = [f["layout"]["title"]["text"] for f in figures.values()]
    assert "每日提交数（按判定结果）" in titles and "最常见的原因代码" in titles
    legends = [trace.get("name") for f in figures.values() for trace in f["data"] if trace.get("name")]
    assert "不通过" in legends and "FAIL" not in legends
    reasons = figures["chart-reasons"]["data"][0]
    at = reasons["y"].index("PLATE_MISMATCH")  # the code on the axis, its meaning on hover
    assert reasons["text"][at] == message(ReasonCode.PLATE_MISMATCH, "zh")
    words = (
        " ".join(titles)
        + " "
        + " ".join(
            str(axis.get("title", {}).get("text", ""))
            for f in figures.values()
            for name, axis in f["layout"].items()
            if name.endswith("axis")
        )
    )
    assert not re.findall(r"[A-Za-z]{3,}", words.replace("MLLM", "")), words
    assert "%-m月%-d日" in json.dumps(figures["chart-verdicts"]["layout"]["xaxis"], ensure_ascii=False)


def test_the_csv_speaks_the_readers_language_and_keeps_its_byte_order_mark(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    body = dash.client.get("/dashboard/exports/verdicts.csv?outcome=FAIL", headers=ZH).content
    assert body.startswith(b"\xef\xbb\xbf")
    header, row = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[:2]
    assert header[:3] == ["提交", "上传时间 (北京时间)", "承运商"]
    assert header[header.index("原因代码") + 1] == "原因说明"
    assert row[header.index("原因代码")] == "PLATE_MISMATCH"
    assert row[header.index("原因说明")] == message(ReasonCode.PLATE_MISMATCH, "zh")
    english = dash.client.get("/dashboard/exports/verdicts.csv?outcome=FAIL", headers=EN).content.decode("utf-8-sig")
    assert english.splitlines()[0].startswith("submission,uploaded (China Standard Time),carrier")
    assert message(ReasonCode.PLATE_MISMATCH, "en") in english


def test_code_headers_are_todays_columns_for_carriers_scripts(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    body = dash.client.get("/dashboard/exports/verdicts.csv?outcome=FAIL&headers=codes", headers=ZH).content
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(rows[0]) == COLUMNS and len(rows[1]) == len(COLUMNS)
    sheet = load_workbook(io.BytesIO(dash.client.get("/dashboard/exports/verdicts.xlsx?headers=codes").content))
    header = [c.value for c in next(sheet.active.iter_rows(max_row=1))]
    assert header[0] == "submission" and header[1].startswith("created (UTC+08") and len(header) == len(COLUMNS)
    page = dash.client.get("/dashboard/exports", headers=ZH).text
    assert 'id="export-csv-codes"' in page and "headers=codes" in page
    refused = dash.client.get("/dashboard/exports/verdicts.csv?headers=fancy", headers=ZH)
    assert refused.status_code == 400 and "表头：请选择以下之一：words, codes" in refused.text


def test_the_xlsx_holds_the_chinese_intact(dash: Dash) -> None:
    sign_in(dash.client, "wang", headers=ZH)
    data = dash.client.get("/dashboard/exports/verdicts.xlsx?outcome=FAIL", headers=ZH).content
    book = load_workbook(io.BytesIO(data))
    sheet = book.active
    assert sheet.title == "判定"
    header, row = ([c.value for c in r] for r in sheet.iter_rows(max_row=2))
    assert header[:3] == ["提交", "上传时间 (北京时间)", "承运商"]
    assert row[header.index("司机")] == "李伟" and row[header.index("原因说明")] == message(
        ReasonCode.PLATE_MISMATCH, "zh"
    )
    first = next(sheet.iter_rows(max_row=1))[0]
    assert first.font.name == "等线" and first.font.b
    # What Excel and WPS read: UTF-8 XML holding the characters themselves.
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        strings = package.read("xl/sharedStrings.xml") if "xl/sharedStrings.xml" in package.namelist() else b""
        sheet_xml = package.read("xl/worksheets/sheet1.xml")
    text = (strings + sheet_xml).decode("utf-8")
    assert "原因说明" in text and "李伟" in text
