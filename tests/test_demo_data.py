"""`compliance demo-data`: the synthetic history it bulk-inserts keeps every invariant the store
keeps when it writes one verdict at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from compliance import agreement
from compliance.cli import app
from compliance.demo_data import generate
from compliance.judgments import Judgments
from compliance.settings import Settings
from compliance.store import Store, verdicts
from compliance.store.models import (
    MACHINE,
    Carrier,
    PhotoHashBand,
    PlateReview,
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
            latest = verdicts.latest_judgments(s, sub.id)
            if all(p in latest for p in agreement.COMPARED):
                compared = agreement.compare(*(Judgments.model_validate(latest[p].data) for p in agreement.COMPARED))
                assert sub.pipelines_agree is compared.agree
                assert (sub.pipelines_disagree_on or "") == ",".join(compared.disagreeing)
            else:
                assert sub.pipelines_agree is None
        assert outcomes == set(Outcome)
        assert any(sub.pipelines_agree is False for sub in subs)


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
