"""The dashboard in a real browser (Debian's Chromium, headless, driven by Playwright), on SQLite and
PostgreSQL, over photos judged by the real multistage pipeline. Each page is saved as a screenshot
under artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import openpyxl
import pytest

from compliance.judgments import Judgments
from compliance.store import audit, submissions, verdicts
from compliance.store.models import MACHINE
from compliance.verdicts import Outcome
from tests.dashboard.site import PASSWORD, Site

pytestmark = pytest.mark.timeout(300)


def test_sign_in_then_the_overview_draws_its_charts(site: Site, visit) -> None:
    tab = visit()
    tab.go("/dashboard/submissions")
    assert "/dashboard/login" in tab.page.url  # nothing without signing in
    tab.page.fill("input[name=username]", "admin")
    tab.page.fill("input[name=password]", "not the password")
    tab.page.click("button[type=submit]")
    assert "Wrong name or password" in tab.page.inner_text(".error")
    tab.screenshot("login-refused")

    tab.page.fill("input[name=password]", PASSWORD)
    with tab.page.expect_navigation():
        tab.page.click("button[type=submit]")
    assert tab.page.url.endswith("/dashboard/submissions")  # back where they were going
    tab.go("/dashboard/")
    # plotly.js (served by the app from the plotly wheel) drew each chart as SVG.
    for chart in ("chart-verdicts", "chart-rates", "chart-reasons"):
        tab.page.wait_for_selector(f"#{chart} .main-svg", timeout=15_000)
    bars = tab.page.locator("#chart-verdicts .bars path")
    assert bars.count() >= 2  # PASS and REVIEW today
    reasons = tab.page.locator("#chart-reasons .ytick text").all_text_contents()
    assert {"PLATE_CONFUSABLE", "PLATE_UNREADABLE", "FACE_UNCERTAIN"} <= set(reasons)
    kpis = tab.page.inner_text(".kpis")
    assert "4" in kpis and "25.0%" in kpis  # 4 submissions, 1 of 4 PASS
    assert "ACME" in tab.page.inner_text("body") and "OTHER" in tab.page.inner_text("body")
    tab.screenshot("overview")


def test_a_submission_shows_each_box_the_pipeline_found_on_the_photo(site: Site, visit) -> None:
    tab = visit("acme.reviewer")
    tab.go(f"/dashboard/submissions/{site.passed}")
    overlay = tab.page.locator("svg#scene")
    overlay.wait_for()
    # The photo itself loaded (as the pipeline saw it) under the boxes.
    photo = tab.page.request.get(f"{site.url}/dashboard/submissions/{site.passed}/photo")
    assert photo.ok and photo.headers["content-type"].startswith("image/")
    shapes = overlay.locator('g.pipeline[data-pipeline="multistage"] g.shape')
    categories = {shapes.nth(i).get_attribute("data-category") for i in range(shapes.count())}
    assert {"person", "vehicle", "plate", "face"} <= categories
    with site.store.sessions() as s:
        stored = Judgments.model_validate(verdicts.latest_judgments(s, site.passed)["multistage"].data)
    plate = overlay.locator('g.pipeline[data-pipeline="multistage"] g.shape.plate')
    assert stored.plate.text == "皖AUJ299" and "皖AUJ299" in plate.get_attribute("data-label")
    rect = plate.locator("rect")
    assert float(rect.get_attribute("x")) == pytest.approx(stored.plate.box.x1, abs=0.1)
    assert float(rect.get_attribute("width")) == pytest.approx(stored.plate.box.width, abs=0.1)
    # Drawn on the photo: each box lies inside the rendered image (give or take its 3 px line).
    image = overlay.locator("image").bounding_box()
    for i in range(shapes.count()):
        box = shapes.nth(i).locator("rect").bounding_box()
        assert box["width"] > 2 and box["height"] > 2
        assert image["x"] - 3 <= box["x"] and box["x"] + box["width"] <= image["x"] + image["width"] + 3
        assert image["y"] - 3 <= box["y"] and box["y"] + box["height"] <= image["y"] + image["height"] + 3
    # The licence photo beside it, with the similarity the pipeline measured.
    assert f"{stored.face.similarity:.3f}" in tab.page.inner_text(".licence-panel")
    # And whether the scene's face is live, as the pipeline judged it (with its score where it gave one).
    assert stored.face.live.value == "yes" and stored.face.live_score is not None  # a 382 px face, judged
    live = f"live: yes (score {stored.face.live_score:.2f}, threshold 0.25)"
    assert live in tab.page.inner_text(".licence-panel")
    assert tab.page.locator(".licence-panel g.shape.face rect").count() == 1
    # Both pipelines' judgments side by side, the plate they disagree on marked, the MLLM's answer.
    assert tab.page.locator("#judgments thead th").all_inner_texts()[-2:] == ["MULTISTAGE", "MLLM"]
    disagreements = tab.page.locator("#judgments tr[data-disagree]")
    assert disagreements.count() == 1 and disagreements.get_attribute("data-disagree") == "plate"
    assert "皖AUJ299" in disagreements.inner_text() and "皖AUJ298" in disagreements.inner_text()
    assert '"plate": "皖AUJ298"' in tab.page.inner_text("pre.raw")
    assert "disagree on plate" in tab.page.inner_text(".verdict-bar")
    # The verdict history and the audit trail.
    assert "PASS" in tab.page.inner_text("#verdicts")
    actions = tab.page.locator("#audit tr[data-action]").evaluate_all("rows => rows.map(r => r.dataset.action)")
    assert actions[:1] == ["submission.create"] and "verdict.record" in actions
    tab.screenshot("submission-detail")
    # Toggling the pipeline hides its boxes.
    tab.page.uncheck('input[data-toggle-pipeline="multistage"]')
    assert not overlay.locator('g.pipeline[data-pipeline="multistage"]').is_visible()


def test_a_reviewer_clears_a_review_by_keyboard_and_it_is_on_record(site: Site, visit) -> None:
    tab = visit("acme.reviewer")
    tab.go("/dashboard/review")
    tab.page.wait_for_selector("form#decision")
    # REVIEW verdicts oldest first: the street photo came in before the confusable plate.
    assert site.review_taxi in tab.page.inner_text(".heading")
    assert tab.page.locator('g.pipeline[data-pipeline="multistage"] g.shape').count() >= 1
    tab.screenshot("review-queue")

    tab.page.keyboard.press("p")  # edit the plate: the reviewer reads it off the photo
    tab.page.keyboard.press("Control+a")
    tab.page.keyboard.type("皖A195K9")
    tab.page.keyboard.press("Escape")
    tab.page.keyboard.press("n")  # not the driver on the licence
    tab.page.keyboard.press("2")  # reason 2 of the list: FACE_MISMATCH
    assert tab.page.input_value("#reason") == "FACE_MISMATCH"
    with tab.page.expect_navigation():
        tab.page.keyboard.press("f")  # reject
    # The next photo opens at once: the other ACME REVIEW.
    assert site.review_confusable in tab.page.inner_text(".heading")

    with site.store.sessions() as s:
        sub = submissions.get_submission(s, site.review_taxi)
        current = sub.current_verdict
        assert current.decided_by == "acme.reviewer" and current.outcome is Outcome.FAIL
        assert current.reasons == ["FACE_MISMATCH"]
        assert current.corrections == {"plate_text": "皖A195K9", "same_person": "no"}
        # The machine's verdict stays in the history.
        assert [v.decided_by for v in sub.verdicts] == [MACHINE, "acme.reviewer"]
        events = audit.list_events(s, subject_type="submission", subject_id=site.review_taxi, action="verdict.record")
        decision = events[-1]
        assert decision.actor == "acme.reviewer"
        assert decision.before["outcome"] == "REVIEW" and decision.after["outcome"] == "FAIL"
        assert decision.reason == "rejected in the review queue: FACE_MISMATCH"

    # The decision is in the audit trail on the submission's page.
    tab.go(f"/dashboard/submissions/{site.review_taxi}")
    last = tab.page.locator('#audit tr[data-action="verdict.record"]').last
    assert "acme.reviewer" in last.inner_text() and "FACE_MISMATCH" in last.inner_text()
    assert "皖A195K9" in last.inner_text()
    tab.screenshot("submission-after-review")

    # Approve the second one straight away: A.
    tab.go("/dashboard/review")
    with tab.page.expect_navigation():
        tab.page.keyboard.press("a")
    with site.store.sessions() as s:
        assert submissions.get_submission(s, site.review_confusable).outcome is Outcome.PASS
    # Then the machine's PASS on which the MLLM read another plate.
    assert site.passed in tab.page.inner_text(".heading")
    assert "The pipelines disagree on: plate" in tab.page.inner_text(".facts")
    tab.screenshot("review-queue-disagreement")
    with tab.page.expect_navigation():
        tab.page.keyboard.press("a")
    assert tab.page.locator("#queue-empty").is_visible()
    tab.screenshot("review-queue-empty")


def test_the_reviewers_correction_reaches_the_sft_export(site: Site, visit) -> None:
    tab = visit("acme.reviewer")
    tab.go("/dashboard/review")
    tab.page.keyboard.press("p")
    tab.page.keyboard.press("Control+a")
    tab.page.keyboard.type("皖A195K9")
    tab.page.keyboard.press("Escape")
    with tab.page.expect_navigation():
        tab.page.keyboard.press("a")
    tab.go("/dashboard/exports")
    with tab.page.expect_download() as download:
        tab.page.click("#export-sft")
    with zipfile.ZipFile(download.value.path()) as bundle:
        lines = bundle.read("sft.jsonl").decode().splitlines()
    assert lines and any("皖A195K9" in line for line in lines)


def test_a_viewer_cannot_review(site: Site, visit) -> None:
    tab = visit("acme.viewer")
    assert tab.page.locator("nav.nav >> text=Review queue").count() == 0
    response = tab.go("/dashboard/review")
    assert response.status == 403
    assert "reviewer role" in tab.page.inner_text("main")
    tab.screenshot("viewer-refused")
    # Nor by posting the form straight to the server (with the viewer's own valid form token).
    tab.go(f"/dashboard/submissions/{site.review_taxi}")
    assert tab.page.locator("text=Review this").count() == 0
    token = tab.page.locator("input[name=csrf_token]").first.input_value()
    with site.store.sessions() as s:
        verdict_id = submissions.get_submission(s, site.review_taxi).current_verdict.id
    posted = tab.page.request.post(
        f"{site.url}/dashboard/review/{site.review_taxi}",
        form={"csrf_token": token, "decision": "approve", "verdict_id": str(verdict_id)},
    )
    assert posted.status == 403
    with site.store.sessions() as s:
        assert submissions.get_submission(s, site.review_taxi).decided_by == MACHINE


def test_one_carriers_user_cannot_open_another_carriers_submission(site: Site, visit) -> None:
    tab = visit("other.reviewer")
    for path in (
        f"/dashboard/submissions/{site.passed}",
        f"/dashboard/submissions/{site.passed}/photo",
        f"/dashboard/submissions/{site.passed}/licence",
        f"/dashboard/review/{site.review_taxi}",
    ):
        assert tab.go(path).status == 404, path
    tab.go(f"/dashboard/submissions/{site.passed}")
    tab.screenshot("other-carrier-not-found")
    # Their own list and queue hold only their carrier's submission.
    tab.go("/dashboard/submissions")
    links = tab.page.locator("#submissions tbody a").evaluate_all("links => links.map(a => a.href)")
    assert [link.rsplit("/", 1)[1] for link in links] == [site.other_review]
    tab.go("/dashboard/review")
    assert site.other_review in tab.page.inner_text(".heading")


def test_csv_and_xlsx_exports_hold_the_filtered_rows(site: Site, visit) -> None:
    tab = visit("admin")
    tab.go("/dashboard/submissions?carrier=ACME&outcome=REVIEW")
    rows = tab.page.locator("#submissions tbody tr")
    assert rows.count() == 2
    tab.screenshot("submissions")
    expected = {site.review_taxi, site.review_confusable}

    with tab.page.expect_download() as download:
        tab.page.click("text=CSV")
    text = download.value.path().read_text(encoding="utf-8-sig")
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["submission"] for r in table} == expected
    assert {r["verdict"] for r in table} == {"REVIEW"} and {r["carrier"] for r in table} == {"ACME"}
    taxi = next(r for r in table if r["submission"] == site.review_taxi)
    assert taxi["reason codes"] == "FACE_UNCERTAIN;PLATE_UNREADABLE" and taxi["plate"] == "皖A195K9"
    assert taxi["what the reasons mean"].startswith("Could not tell whether the face matches the licence")

    with tab.page.expect_download() as download:
        tab.page.click("text=XLSX")
    sheet = openpyxl.load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True)["verdicts"]
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header[0] == "submission" and header[1] == "uploaded (China Standard Time)"
    assert {r[0] for r in body} == expected
    assert {r[header.index("verdict")] for r in body} == {"REVIEW"}

    tab.go("/dashboard/exports?carrier=ACME&outcome=REVIEW")
    assert "2 submissions" in tab.page.inner_text("main")
    # For carriers' scripts: today's code headers and columns, from the page's own link.
    with tab.page.expect_download() as download:
        tab.page.click("#export-xlsx-codes")
    sheet = openpyxl.load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True)["verdicts"]
    header = next(sheet.iter_rows(values_only=True))
    assert header[0] == "submission" and re.fullmatch(r"created \(UTC[+-]\d{4}\)", header[1])
    assert "reasons" in header and "reason_messages" not in header
    tab.screenshot("exports")


def test_pages_fit_a_tablet(site: Site, visit) -> None:
    tab = visit("acme.reviewer", viewport={"width": 820, "height": 1180}, has_touch=True, is_mobile=True)
    for path, name in (("/dashboard/", "tablet-overview"), ("/dashboard/review", "tablet-review")):
        tab.go(path)
        tab.page.wait_for_load_state("networkidle")
        overflow = tab.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} scrolls sideways by {overflow}px"
        tab.screenshot(name)
    # A tap decides as the keyboard does.
    with tab.page.expect_navigation():
        tab.page.tap("#approve")
    with site.store.sessions() as s:
        assert submissions.get_submission(s, site.review_taxi).outcome is Outcome.PASS
