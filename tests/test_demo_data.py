"""`compliance demo-data`: the synthetic history it bulk-inserts keeps every invariant the store
keeps when it writes one verdict at a time, on SQLite and PostgreSQL; and it tells the truth about
its photos: every submission's judgments are what the real pipeline finds on its photo, its verdict
is what the policy decides from them against its claims, and a reviewer corrects only to what the
photo shows."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from compliance.api.app import create_app
from compliance.checks.policy import DEFAULT_CHECKS
from compliance.cli import app
from compliance.demo_data import LEFT_OUT, NOTE_EN, NOTE_ZH, POLICY, SCENES, generate
from compliance.inspection import decide
from compliance.judgments import Judgments
from compliance.photos import load_photo
from compliance.pipelines import get_pipeline
from compliance.settings import Settings
from compliance.store import Store, users, verdicts
from compliance.store.models import (
    MACHINE,
    Carrier,
    Driver,
    JudgmentRecord,
    PhotoHashBand,
    PlateReview,
    Role,
    Submission,
    SubmissionReason,
    SubmissionStatus,
    VerdictRecord,
)
from compliance.verdicts import Outcome
from tests.store.samples import verdict

COUNT = 600


@pytest.fixture()
def filled(database_url: str, tmp_path: Path) -> tuple[Store, Settings]:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    summary = generate(store, settings, submissions=COUNT, days=60, seed=3)
    assert summary.submissions == COUNT and summary.reviews > 0 and summary.in_queue > 0
    assert "SYNTHETIC" in summary.describe()
    yield store, settings
    store.engine.dispose()


def test_the_history_keeps_the_stores_invariants(filled: tuple[Store, Settings]) -> None:
    store, _ = filled
    with store.sessions() as s:
        subs = list(s.scalars(sa.select(Submission)))
        assert len(subs) == COUNT
        assert set(s.scalars(sa.select(Carrier.code))) == {"SYN-EAST", "SYN-NORTH", "SYN-SOUTH", "SYN-WEST"}
        current = {v.submission_id: v for v in s.scalars(sa.select(VerdictRecord).where(VerdictRecord.is_current))}
        reasons: dict[str, list[str]] = defaultdict(list)
        for submission_id, reason in s.execute(sa.select(SubmissionReason.submission_id, SubmissionReason.reason)):
            reasons[submission_id].append(reason)
        bands = dict(
            s.execute(
                sa.select(PhotoHashBand.submission_id, sa.func.count()).group_by(PhotoHashBand.submission_id)
            ).all()
        )
        reviewed_rows = set(s.scalars(sa.select(PlateReview.submission_id)))
        outcomes = set()
        for sub in subs:
            assert bands[sub.id] == 8
            verdict_now = current.get(sub.id)
            if sub.status is not SubmissionStatus.DECIDED:
                assert verdict_now is None and sub.outcome is None
                continue
            outcomes.add(sub.outcome)
            assert sub.outcome is verdict_now.outcome and sub.decided_by == verdict_now.decided_by
            assert sub.decided_at == verdict_now.created_at
            assert sub.verdict_seconds == int((sub.decided_at - sub.created_at).total_seconds())
            assert sorted(reasons[sub.id]) == sorted(set(verdict_now.reasons))
            assert (sub.id in reviewed_rows) == (sub.decided_by != MACHINE)
            # One pipeline judged: no MLLM runs offline, so there is no agreement to record.
            assert set(verdicts.latest_judgments(s, sub.id)) == {"multistage"} and sub.pipelines_agree is None
        assert outcomes == set(Outcome)


def test_the_store_writes_on_after_it(filled: tuple[Store, Settings]) -> None:
    """Ids were given explicitly: the sequences must have moved past them (PostgreSQL)."""
    store, _ = filled
    with store.sessions() as s, s.begin():
        sub = s.scalars(sa.select(Submission).where(Submission.status == SubmissionStatus.DECIDED)).first()
        record = verdicts.record_verdict(s, sub.id, verdict(Outcome.PASS, policy_version="after-demo"))
        assert record.is_current and sub.outcome is Outcome.PASS


def test_a_second_run_on_the_same_database_is_refused(filled: tuple[Store, Settings]) -> None:
    store, settings = filled
    with pytest.raises(ValueError, match="already holds synthetic carriers"):
        generate(store, settings, submissions=10)


def test_the_command_says_the_data_is_synthetic(isolated_env: Path) -> None:
    result = CliRunner().invoke(app, ["demo-data", "--submissions", "50", "--days", "10"])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "50 submissions" in result.output
    again = CliRunner().invoke(app, ["demo-data", "--submissions", "50"])
    assert again.exit_code == 2 and "already holds synthetic carriers" in again.output


def without_latency(data: dict) -> dict:
    """Judgments as the pipeline gives them, less how long each stage took (one run's, not the photo's)."""
    provenance = {k: v for k, v in data["provenance"].items() if k != "latency_ms"}
    return {**data, "provenance": provenance}


def test_every_judgment_is_what_the_pipeline_finds_on_the_photo(filled: tuple[Store, Settings]) -> None:
    """Each photo shown is judged again here, in full, against each licence photo shown with it:
    what every synthetic submission over it carries is exactly that."""
    store, settings = filled
    pipeline = get_pipeline("multistage", settings)
    with store.sessions() as s:
        rows = s.execute(
            sa.select(Submission.photo_sha256, Driver.licence_sha256, JudgmentRecord.data)
            .join(Driver, Driver.id == Submission.driver_id)
            .join(JudgmentRecord, JudgmentRecord.submission_id == Submission.id)
        ).all()
    shown: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for photo, licence, data in rows:
        shown[photo, licence].append(data)
    assert len({photo for photo, _ in shown}) == len(SCENES), "every photo, samples and copies, is shown"
    for (photo, licence), stored in shown.items():
        scene = load_photo(store.blobs.get(photo), **settings.photo_limits)
        licence_photo = load_photo(store.blobs.get(licence), **settings.photo_limits)
        found = pipeline.judge(scene.image, licence_photo.image, settings.thresholds).model_dump(mode="json")
        for data in stored:
            assert without_latency(data) == without_latency(found), f"photo {photo[:12]} with licence {licence[:12]}"


def test_every_machine_verdict_is_the_policys_on_those_judgments_and_claims(filled: tuple[Store, Settings]) -> None:
    store, settings = filled
    with store.sessions() as s:
        machine = s.execute(
            sa.select(VerdictRecord, JudgmentRecord.data, Submission.claimed_plate)
            .join(JudgmentRecord, JudgmentRecord.id == VerdictRecord.judgment_id)
            .join(Submission, Submission.id == VerdictRecord.submission_id)
            .where(VerdictRecord.decided_by == MACHINE)
        ).all()
    reasons = set()
    for record, data, plate in machine:
        verdict = decide(
            Judgments.model_validate(data),
            thresholds=settings.thresholds,
            registered_plates=[plate],
            licence_given=True,
            policy=POLICY,
        )
        assert (record.outcome, record.reasons) == (verdict.outcome, [r.value for r in verdict.reasons])
        assert record.policy_version == POLICY.version
        reasons |= set(record.reasons)
    # The few photos, and copies of them, still show the whole mix of reasons.
    assert {
        "PLATE_MISMATCH",
        "PLATE_CONFUSABLE",
        "PLATE_UNREADABLE",
        "PLATE_LOW_CONFIDENCE",
        "FACE_UNCERTAIN",
        "FACE_NOT_IN_SCENE",
        "PERSON_MISSING",
        "VEHICLE_MISSING",
        "LOW_QUALITY_BLUR",
        "LOW_QUALITY_DARK",
        "LOW_RESOLUTION",
    } <= reasons
    # ... and none of the checks it leaves out.
    assert not reasons & {"DUPLICATE_PHOTO", "FACE_NOT_LIVE", "CAPTURE_TIME_OUTSIDE_WINDOW", "CAPTURE_TIME_MISSING"}


def test_the_policy_is_the_products_less_what_is_left_out() -> None:
    left_out = {check.name for check in DEFAULT_CHECKS} - {check.name for check in POLICY.checks}
    assert left_out == {
        "duplicate",
        "liveness",
        "capture_time",
        "location",
        "location_recorded",
        "editing",
        "camera_exif",
    }
    assert all(check in DEFAULT_CHECKS for check in POLICY.checks)
    assert len(LEFT_OUT) == 4 and "SYNTHETIC" in NOTE_EN and "合成数据" in NOTE_ZH


def test_a_reviewer_corrects_only_to_what_the_photo_shows(filled: tuple[Store, Settings]) -> None:
    store, _ = filled
    with store.sessions() as s:
        reviewed = s.scalars(sa.select(VerdictRecord).where(VerdictRecord.decided_by != MACHINE)).all()
    assert reviewed
    for verdict_now in reviewed:
        corrections = verdict_now.corrections or {}
        assert corrections.get("plate_text") in (None, "皖AUJ299", "皖A195K9")
        assert (verdict_now.outcome is Outcome.PASS) == (not verdict_now.reasons)


def test_the_overview_says_the_history_is_synthetic_and_what_it_leaves_out(filled: tuple[Store, Settings]) -> None:
    store, settings = filled
    password = "correct horse battery"
    with store.sessions() as s, s.begin():
        users.add_user(s, username="ops", password=password, role=Role.ADMIN, carrier_id=None)
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        page = client.get("/dashboard/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf, "no form token on the sign-in page"
        fields = {"username": "ops", "password": password, "csrf_token": csrf[1]}
        signed = client.post("/dashboard/login", data=fields, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        overview = client.get("/dashboard/")
    assert overview.status_code == 200, overview.text
    banner = re.search(r'<p [^>]*id="synthetic"[^>]*>(.*?)</p>', overview.text, re.S)
    assert banner, "the overview does not say the history is synthetic"
    assert NOTE_ZH in banner[1] and NOTE_EN in banner[1]
