"""The overview's numbers against the same numbers counted by hand from the stored rows, on SQLite
and PostgreSQL, for a small history written by the store's own functions."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from compliance.judgments import Answer, FaceMatch, Judgments, PersonJudgment, PlateReading, Provenance
from compliance.reports.overview import overview
from compliance.reports.period import ReportZone
from compliance.store import db, registry, submissions, verdicts
from compliance.store.models import MACHINE, PlateReview, Submission, SubmissionStatus
from compliance.verdicts import Corrections, Outcome, ReasonCode
from tests.store.samples import Fleet, verdict

ZONE = ReportZone(timedelta(hours=8))
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def seen(pipeline: str, plate: str | None = "京A12345", same: Answer = Answer.YES) -> Judgments:
    return Judgments(
        person=PersonJudgment(present=Answer.YES, count=1),
        plate=PlateReading(text=plate),
        face=FaceMatch(same_person=same),
        provenance=Provenance(pipeline=pipeline, models={pipeline: "1"}),
    )


# (hours before NOW, site, outcome, reasons, MLLM's plate (None: MLLM did not judge), review)
HISTORY = [
    (1, "north", Outcome.PASS, (), None, None),
    (2, "north", Outcome.PASS, (), "京A12345", None),
    (3, "south", Outcome.FAIL, (ReasonCode.PLATE_MISMATCH,), None, None),
    (5, "south", Outcome.REVIEW, (ReasonCode.PLATE_CONFUSABLE,), "京A1234S", ("PASS", "京A12345")),
    (9, "north", Outcome.REVIEW, (ReasonCode.FACE_UNCERTAIN,), None, ("FAIL", None)),
    (14, None, Outcome.REVIEW, (ReasonCode.PLATE_UNREADABLE, ReasonCode.FACE_UNCERTAIN), "京A12345", None),
    (20, "north", Outcome.FAIL, (ReasonCode.FACE_MISMATCH, ReasonCode.PLATE_MISMATCH), None, None),
    (30, "south", None, (), None, None),  # still queued
    (60, "south", Outcome.PASS, (), None, None),  # two days before, in UTC+8
]


@pytest.fixture()
def sessions(engine: Engine) -> sessionmaker[Session]:
    """What the dashboard hands the overview: read-only sessions, one per pass."""
    return db.session_factory(engine, read_only=True)


@pytest.fixture()
def history(session: Session, fleet: Fleet) -> dict[str, object]:
    other = registry.add_carrier(session, code="other", name="Other")
    other_driver = registry.add_driver(session, carrier_id=other.id, name="Zhao")
    ids = []
    for i, (hours, site, outcome, reasons, mllm_plate, review) in enumerate(HISTORY):
        carrier, driver = (other.id, other_driver.id) if i == 0 else (fleet.carrier_id, fleet.driver_id)
        sub = submissions.create_submission(
            session,
            carrier_id=carrier,
            driver_id=driver,
            vehicle_id=fleet.vehicle_id if carrier == fleet.carrier_id else None,
            photo_sha256=f"{i:064x}",
            photo_phash=f"{i:016x}",
            source="api",
            site=site,
            status=SubmissionStatus.QUEUED,
        ).submission
        sub.created_at = NOW - timedelta(hours=hours)
        session.flush()
        if outcome is None:
            continue
        baseline_plate = "京A1234S" if ReasonCode.PLATE_CONFUSABLE in reasons else "京A12345"
        if ReasonCode.PLATE_UNREADABLE in reasons:
            baseline_plate = None
        verdicts.record_verdict(
            session, sub.id, verdict(outcome, reasons=reasons, of=seen("multistage", baseline_plate))
        )
        if mllm_plate is not None:
            verdicts.record_judgment(session, sub.id, seen("mllm", mllm_plate))
        if review is not None:
            decided, plate = review
            verdicts.record_review(
                session,
                sub.id,
                reviewer="li.wei",
                outcome=decided,
                note="checked",
                reasons=[] if decided == "PASS" else [ReasonCode.FACE_MISMATCH],
                corrections=Corrections(plate_text=plate) if plate else None,
            )
        ids.append(sub.id)
    session.commit()
    return {"other": other.id}


def _rows(session: Session, carrier_id: int | None = None) -> list[Submission]:
    query = sa.select(Submission)
    if carrier_id is not None:
        query = query.where(Submission.carrier_id == carrier_id)
    return list(session.scalars(query))


def test_the_overview_counts_what_is_stored(
    session: Session, sessions: sessionmaker[Session], fleet: Fleet, history: dict[str, object]
) -> None:
    since, until = NOW - timedelta(days=10), NOW + timedelta(days=1)
    report = overview(sessions, ZONE, since=since, until=until)
    rows = _rows(session)

    outcomes = Counter(r.outcome.value if r.outcome else None for r in rows)
    assert (report.totals.passed, report.totals.failed, report.totals.review, report.totals.pending) == (
        outcomes["PASS"],
        outcomes["FAIL"],
        outcomes["REVIEW"],
        outcomes[None],
    )
    assert report.totals.total == len(HISTORY)

    by_day = Counter(ZONE.local(r.created_at).date().isoformat() for r in rows)
    assert {d.day: d.counts.total for d in report.days} == dict(by_day)
    assert len(report.days) == 3  # in UTC+8: NOW's day, 30 hours back, 60 hours back

    reasons = Counter(reason.reason for r in rows for reason in r.reasons)
    assert dict(report.reasons) == dict(reasons)
    assert report.reasons[:2] == [("FACE_MISMATCH", 2), ("PLATE_MISMATCH", 2)]  # most first, then by name

    assert {g.label: g.counts.total for g in report.carriers} == {"acme": 8, "other": 1}
    assert {(g.carrier, g.site): g.counts.total for g in report.sites} == {
        ("acme", "north"): 3,
        ("acme", "south"): 4,
        ("acme", None): 1,
        ("other", "north"): 1,
    }
    assert report.drivers[0].driver_id == fleet.driver_id and report.drivers[0].counts.failed == 3

    # Agreement: three submissions judged by both; one disagrees on the plate.
    assert (report.agreement.compared, report.agreement.agreed) == (3, 2)
    assert report.agreement.disagreements == {"person": 0, "vehicle": 0, "plate": 1, "face": 0}

    machine = [r.verdict_seconds for r in rows if r.decided_by == MACHINE]
    people = [r.verdict_seconds for r in rows if r.decided_by not in (None, MACHINE)]
    assert report.turnaround.machine_count == len(machine) and report.turnaround.review_count == len(people) == 2
    assert report.turnaround.machine_median_s == pytest.approx(statistics.median(machine))
    assert report.turnaround.review_median_s == pytest.approx(statistics.median(people))
    assert report.reviewed == 2

    # Plate accuracy from the two reviewed: the confusable reading was corrected, the other stood.
    assert (report.plates.overall.read, report.plates.overall.correct) == (2, 1)
    assert [(a.key, a.read, a.correct) for a in report.plates.by_province] == [("京", 2, 1)]
    assert session.scalar(sa.select(sa.func.count()).select_from(PlateReview)) == 2


def test_a_carrier_and_a_period_narrow_every_number(
    sessions: sessionmaker[Session], fleet: Fleet, history: dict[str, object]
) -> None:
    report = overview(sessions, ZONE, since=NOW - timedelta(hours=12), until=NOW, carrier_id=fleet.carrier_id)
    # 2, 3, 5 and 9 hours back, ACME's (1 hour back is the other carrier's).
    assert report.totals.total == 4
    assert [g.label for g in report.carriers] == ["acme"]
    assert report.agreement.compared == 2 and report.reviewed == 2
    assert dict(report.reasons) == {"PLATE_MISMATCH": 1, "FACE_MISMATCH": 1}
    empty = overview(sessions, ZONE, since=NOW + timedelta(days=1), until=NOW + timedelta(days=2))
    assert empty.totals.total == 0 and empty.days == [] and empty.turnaround.machine_median_s is None
    assert empty.agreement.rate is None and empty.plates.overall.rate is None


def test_days_follow_the_report_zone(sessions: sessionmaker[Session], history: dict[str, object]) -> None:
    utc = overview(sessions, ReportZone(timedelta(0)), since=NOW - timedelta(days=10), until=NOW)
    eight = overview(sessions, ZONE, since=NOW - timedelta(days=10), until=NOW)
    assert sum(d.counts.total for d in utc.days) == sum(d.counts.total for d in eight.days)
    # 14 and 20 hours before noon UTC fall on the previous UTC day but on NOW's day in UTC+8.
    assert {d.day: d.counts.total for d in utc.days} != {d.day: d.counts.total for d in eight.days}
