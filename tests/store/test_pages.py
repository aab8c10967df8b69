"""Lists for the API and the dashboard: filters on the current verdict, keyset pages in every sort
order, counts; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from compliance.store import pages, verdicts
from compliance.store import submissions as subs
from compliance.store.errors import InvalidCursor
from compliance.store.models import Submission, SubmissionStatus
from compliance.verdicts import Outcome, ReasonCode
from tests.store.samples import Fleet, submit, verdict

PHASH = "8f3c0a5e91b2d476"
SITES = ("north yard", "south depot", None)
OUTCOMES = (
    (Outcome.PASS, ()),
    (Outcome.FAIL, (ReasonCode.PLATE_MISMATCH,)),
    (Outcome.REVIEW, (ReasonCode.FACE_UNCERTAIN, ReasonCode.PLATE_LOW_CONFIDENCE)),
    (None, ()),
)


@pytest.fixture()
def history(session: Session, fleet: Fleet) -> list[str]:
    """23 submissions over three days, with every mix of site, outcome and status."""
    rng = random.Random(7)
    start = datetime(2026, 11, 1, 8, tzinfo=UTC)
    ids = []
    for i in range(23):
        created = subs.create_submission(
            session,
            carrier_id=fleet.carrier_id,
            driver_id=fleet.driver_id if i % 2 else fleet.other_driver_id,
            vehicle_id=fleet.vehicle_id if i % 3 == 0 else None,
            claimed_plate="京A12345" if i % 3 == 0 else None,
            photo_sha256=f"{i:064x}",
            photo_phash=PHASH,
            source="api",
            site=SITES[i % 3],
        ).submission
        # Same created_at for some pairs: the id breaks the tie, and pages must not skip or repeat.
        created.created_at = start + timedelta(hours=7 * (i // 2))
        outcome, reasons = OUTCOMES[rng.randrange(len(OUTCOMES))]
        if outcome is not None:
            verdicts.record_verdict(session, created.id, verdict(outcome, reasons=reasons))
        else:
            subs.set_status(session, created.id, rng.choice([SubmissionStatus.QUEUED, SubmissionStatus.FAILED]))
        ids.append(created.id)
    session.commit()
    return ids


def _sort_value(s: Submission, sort: str) -> object:
    return {
        "created_at": s.created_at,
        "status": s.status.value,
        "outcome": s.outcome.value if s.outcome else "",
        "site": s.site or "",
        "plate": s.claimed_plate or "",
    }[sort]


@pytest.mark.parametrize(("sort", "descending"), list(itertools.product(pages.SORT_KEYS, (True, False))))
def test_pages_walk_every_row_once_in_order(session: Session, history: list[str], sort: str, descending: bool) -> None:
    everything = session.query(Submission).all()
    expected = sorted(everything, key=lambda s: (_sort_value(s, sort), s.created_at, s.id), reverse=descending)
    seen: list[str] = []
    cursor = None
    while True:
        page = pages.page_submissions(session, sort=sort, descending=descending, cursor=cursor, limit=5)
        seen += [s.id for s in page.items]
        assert len(page.items) <= 5
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [s.id for s in expected]


def test_filters_read_the_current_verdict(session: Session, fleet: Fleet, history: list[str]) -> None:
    every = session.query(Submission).all()

    def ids(**where: object) -> set[str]:
        found = pages.page_submissions(session, pages.SubmissionFilter(**where), limit=1000).items  # type: ignore[arg-type]
        assert pages.count_submissions(session, pages.SubmissionFilter(**where)) == len(found)  # type: ignore[arg-type]
        return {s.id for s in found}

    assert ids() == set(history)
    assert ids(outcome="REVIEW") == {s.id for s in every if s.outcome is Outcome.REVIEW}
    assert ids(reason=ReasonCode.PLATE_LOW_CONFIDENCE) == {s.id for s in every if s.outcome is Outcome.REVIEW}
    assert ids(reason=[ReasonCode.PLATE_MISMATCH, "FACE_UNCERTAIN"]) == {
        s.id for s in every if s.outcome in (Outcome.FAIL, Outcome.REVIEW)
    }
    assert ids(status=["queued", "failed"]) == {s.id for s in every if s.outcome is None}
    assert ids(site="north yard") == {s.id for s in every if s.site == "north yard"}
    assert ids(vehicle_id=fleet.vehicle_id, driver_id=fleet.driver_id) == {
        s.id for s in every if s.vehicle_id == fleet.vehicle_id and s.driver_id == fleet.driver_id
    }
    middle = datetime(2026, 11, 3, tzinfo=UTC)
    assert ids(since=middle) | ids(until=middle) == set(history)
    assert not ids(since=middle) & ids(until=middle)
    assert ids(carrier_id=fleet.carrier_id + 1) == set()

    # A reviewer's decision moves the submission between outcome, reason and reviewed filters.
    target = next(s for s in every if s.outcome is Outcome.REVIEW)
    assert target.id not in ids(reviewed=True) and target.id in ids(reviewed=False)
    verdicts.record_review(session, target.id, reviewer="rev-1", outcome=Outcome.PASS, note="plate legible")
    session.commit()
    assert target.id in ids(outcome="PASS") and target.id not in ids(reason="FACE_UNCERTAIN")
    assert ids(reviewed=True) == {target.id}
    assert target.id not in ids(reviewed=False)


def test_a_cursor_is_checked(session: Session, history: list[str]) -> None:
    page = pages.page_submissions(session, sort="site", limit=3)
    assert page.next_cursor is not None
    for bad in ("", "not-a-cursor", page.next_cursor[:-3] + "AAA", "W10"):
        with pytest.raises(InvalidCursor):
            pages.page_submissions(session, sort="site", cursor=bad)
    with pytest.raises(InvalidCursor):  # a cursor from another order
        pages.page_submissions(session, sort="status", cursor=page.next_cursor)
    with pytest.raises(ValueError, match="cannot sort"):
        pages.page_submissions(session, sort="driver_secret")


def test_list_filters(session: Session, fleet: Fleet) -> None:
    a = submit(session, fleet, vehicle_id=fleet.vehicle_id).submission
    session.commit()
    between = datetime.now(UTC)
    b = submit(session, fleet, driver_id=fleet.other_driver_id).submission
    c = submit(session, fleet, source="audit").submission
    verdicts.record_verdict(session, a.id, verdict(Outcome.PASS))
    verdicts.record_verdict(session, b.id, verdict(Outcome.FAIL, reasons=(ReasonCode.FACE_MISMATCH,)))
    verdicts.record_verdict(session, b.id, verdict(Outcome.REVIEW, policy_version="policy-2"))
    subs.set_status(session, c.id, SubmissionStatus.QUEUED)
    session.commit()

    def ids(**filters: object) -> list[str]:
        return [s.id for s in pages.list_submissions(session, **filters)]  # type: ignore[arg-type]

    assert ids(carrier_id=fleet.carrier_id) == [c.id, b.id, a.id]  # newest first
    assert ids(carrier_id=fleet.carrier_id, newest_first=False) == [a.id, b.id, c.id]
    assert ids(status="queued") == [c.id]
    assert ids(status=[SubmissionStatus.DECIDED]) == [b.id, a.id]
    assert ids(outcome="PASS") == [a.id]
    assert ids(outcome=Outcome.FAIL) == []  # b's FAIL is history, its current verdict is REVIEW
    assert ids(outcome=[Outcome.REVIEW, Outcome.PASS]) == [b.id, a.id]
    assert ids(driver_id=fleet.other_driver_id) == [b.id]
    assert ids(vehicle_id=fleet.vehicle_id) == [a.id]
    assert ids(since=between) == [c.id, b.id]
    assert ids(until=between) == [a.id]
    assert ids(carrier_id=fleet.carrier_id, limit=1, offset=1) == [b.id]
    assert ids(carrier_id=fleet.carrier_id + 1) == []
    listed = pages.list_submissions(session, driver_id=fleet.other_driver_id)[0]
    assert listed.current_verdict.outcome is Outcome.REVIEW


def test_naive_timestamps_are_refused(session: Session, fleet: Fleet) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        pages.list_submissions(session, since=datetime(2026, 1, 1))
