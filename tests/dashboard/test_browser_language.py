"""The dashboard in Chinese in a real browser (Chromium set to zh-CN, as a carrier's staff have it),
over photos judged by the real multistage pipeline: every page, a review done by keyboard, and the
header's language switch. The overview and the review queue are saved in both languages under
artifacts/screenshots/ (README's pictures are copies of them, in docs/screenshots/)."""

from __future__ import annotations

import pytest

from compliance.store import submissions, users
from compliance.verdicts import Outcome
from tests.dashboard.site import Site
from tests.dashboard.test_language import english_left

pytestmark = pytest.mark.timeout(300)

CHINESE = {"locale": "zh-CN"}  # Chromium then sends Accept-Language: zh-CN
# Words of the test site's own data (tests/dashboard/site.py): names, not the pages' words.
SEEDED = {"admin", "Hefei", "depot", "Driver", "Logistics"}


def _charts_drawn(tab: object) -> None:
    for chart in ("chart-verdicts", "chart-rates", "chart-reasons"):
        tab.page.wait_for_selector(f"#{chart} .main-svg", timeout=15_000)  # type: ignore[attr-defined]


def test_every_page_speaks_chinese_to_a_chinese_browser(site: Site, visit) -> None:
    tab = visit(**CHINESE)
    tab.go("/dashboard/login")
    assert tab.page.inner_text("h1") == "登录"
    tab.sign_in("admin")
    tab.go("/dashboard/")
    _charts_drawn(tab)
    assert tab.page.inner_text("h1") == "总览"
    # What plotly drew (titles, legends, axes) is the reader's language too.
    drawn = tab.page.locator("#chart-verdicts").inner_html()
    assert "每日提交数（按判定结果）" in drawn and "待人工审核" in drawn
    tab.screenshot("overview-zh", full_page=False)
    pages = {
        "/dashboard/": "总览",
        "/dashboard/submissions": "提交记录",
        f"/dashboard/submissions/{site.passed}": "提交",
        "/dashboard/review": "审核队列",
        "/dashboard/audits": "批量复判",
        "/dashboard/exports": "导出",
    }
    for path, heading in pages.items():
        tab.go(path)
        if path == "/dashboard/":
            _charts_drawn(tab)
        assert tab.page.inner_text("h1").startswith(heading), path
        left = [w for w in english_left(tab.page.content()) if w not in SEEDED]
        assert not left, (path, left)
    tab.go("/dashboard/exports")
    with tab.page.expect_download() as download:
        tab.page.click("#export-csv")
    header = download.value.path().read_bytes().decode("utf-8-sig").splitlines()[0]
    assert header.startswith("提交,上传时间 (北京时间),承运商")
    english = visit("admin", locale="en-US")
    english.go("/dashboard/")
    _charts_drawn(english)
    assert english.page.inner_text("h1") == "Overview"
    english.screenshot("overview-en", full_page=False)


def test_a_reviewer_completes_a_review_by_keyboard_in_chinese(site: Site, visit) -> None:
    tab = visit("acme.reviewer", **CHINESE)
    tab.go("/dashboard/review")
    tab.page.wait_for_selector("form#decision")
    assert site.review_taxi in tab.page.inner_text(".heading")
    assert "与驾驶证是同一人吗？" in tab.page.inner_text("#decision")
    tab.screenshot("review-queue-zh", full_page=False)
    tab.page.keyboard.press("f")  # reject without a reason: the page says what to do, in Chinese
    assert tab.page.inner_text("#hint") == "请先选择原因：按 1–9，或从列表中选择后再按 F。"
    tab.page.keyboard.press("Escape")
    tab.page.keyboard.press("2")  # FACE_MISMATCH
    assert tab.page.inner_text("#hint") == "原因：FACE_MISMATCH —— 按 F 驳回。"
    with tab.page.expect_navigation():
        tab.page.keyboard.press("f")
    assert site.review_confusable in tab.page.inner_text(".heading")
    with site.store.sessions() as s:
        current = submissions.get_submission(s, site.review_taxi).current_verdict
        assert current.outcome is Outcome.FAIL and current.reasons == ["FACE_MISMATCH"]
        assert current.decided_by == "acme.reviewer"


def test_the_language_switch_changes_the_page_and_is_remembered(site: Site, visit) -> None:
    tab = visit("acme.reviewer", **CHINESE)
    tab.go("/dashboard/review")
    tab.page.wait_for_selector("form#decision")
    with tab.page.expect_navigation():
        tab.page.click('#language button[value="en"]')
    assert tab.page.url.endswith("/dashboard/review")  # the same page, now in English
    assert tab.page.inner_text("h1").startswith("Review queue")
    assert "Same person as the licence?" in tab.page.inner_text("#decision")
    tab.screenshot("review-queue-en", full_page=False)
    with site.store.sessions() as s:
        assert users.find_user(s, "acme.reviewer").language == "en"
    # Saved on the user: another browser, still set to Chinese, shows English after signing in.
    other = visit("acme.reviewer", **CHINESE)
    other.go("/dashboard/")
    assert other.page.inner_text("h1") == "Overview"
    with other.page.expect_navigation():
        other.page.click('#language button[value="zh-CN"]')
    assert other.page.inner_text("h1") == "总览"
    assert other.page.get_attribute("html", "lang") == "zh-CN"
