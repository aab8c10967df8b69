"""The live score on the submission page and in the review queue, and FACE_NOT_LIVE counted on the
overview, at the HTTP level on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.judgments import Answer, FaceMatch, Judgments, Provenance
from compliance.settings import Settings
from compliance.store import Store, registry, submissions, users, verdicts
from compliance.store.models import Role
from compliance.verdicts import Outcome, ReasonCode
from tests.dashboard.test_security import PASSWORD, sign_in
from tests.store.samples import verdict


@dataclass
class Judged:
    client: TestClient
    spoof: str  # a face scored not live: REVIEW, FACE_NOT_LIVE
    small: str  # a face too small to judge: live unknown


def _judgments(live: Answer, score: float | None) -> Judgments:
    return Judgments(
        face=FaceMatch(
            scene_face=Answer.YES,
            licence_face=Answer.YES,
            similarity=0.71,
            threshold=0.363,
            same_person=Answer.YES,
            live=live,
            live_score=score,
            live_threshold=0.25 if score is not None else None,
        ),
        provenance=Provenance(pipeline="multistage", models={"minifasnet": "MiniFASNetV2-44e7dcfe"}),
    )


@pytest.fixture()
def judged(database_url: str, tmp_path: Path) -> Iterator[Judged]:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    ids = []
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="ACME")
        driver = registry.add_driver(s, carrier_id=carrier.id, name="Driver")
        users.add_user(s, username="ana", password=PASSWORD, role=Role.REVIEWER, carrier_id=carrier.id)
        for n, (live, score, reasons) in enumerate(
            ((Answer.NO, 0.0712, (ReasonCode.FACE_NOT_LIVE,)), (Answer.UNKNOWN, None, (ReasonCode.PLATE_UNREADABLE,)))
        ):
            sub = submissions.create_submission(
                s,
                carrier_id=carrier.id,
                driver_id=driver.id,
                photo_sha256=f"{n + 1:064x}",
                photo_phash=f"{n + 1:016x}",
                source="api",
            ).submission
            judgments = _judgments(live, score)
            verdicts.record_judgment(s, sub.id, judgments)
            verdicts.record_verdict(s, sub.id, verdict(Outcome.REVIEW, reasons=reasons, of=judgments))
            ids.append(sub.id)
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        assert sign_in(client, "ana").status_code == 303
        yield Judged(client, *ids)
    store.engine.dispose()


def test_the_submission_page_shows_the_live_score(judged: Judged) -> None:
    page = judged.client.get(f"/dashboard/submissions/{judged.spoof}")
    assert page.status_code == 200
    assert "live:" in page.text
    assert '<strong class="answer no">no</strong> (score 0.07, threshold 0.25)' in page.text
    small = judged.client.get(f"/dashboard/submissions/{judged.small}").text
    assert 'live: <strong class="answer unknown">unknown</strong></span>' in small  # no score to show
    chinese = judged.client.get(f"/dashboard/submissions/{judged.spoof}", headers={"Accept-Language": "zh"}).text
    assert '活体： <strong class="answer no">否</strong> (分数 0.07, 阈值 0.25)' in chinese


def test_the_review_queue_shows_the_live_score(judged: Judged) -> None:
    page = judged.client.get(f"/dashboard/review/{judged.spoof}")
    assert page.status_code == 200
    assert "live:" in page.text and "(score 0.07, threshold 0.25)" in page.text
    assert "FACE_NOT_LIVE" in page.text


def test_the_overview_counts_the_new_reason(judged: Judged) -> None:
    page = judged.client.get("/dashboard/")
    assert page.status_code == 200
    assert "FACE_NOT_LIVE" in page.text
