"""A driver's licence photo replacements, read from the audit trail, and the verdicts decided before
the latest one (against the photo replaced) in the last N days, for a person to check again; on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from sqlalchemy.orm import Session

from compliance.store import registry, verdicts
from compliance.store.models import utcnow
from compliance.store.pages import licence_recheck
from compliance.verdicts import Outcome, ReasonCode
from tests.store.samples import Fleet, decided_at, submit, verdict

OLD = "a" * 64
NEW = "b" * 64
_photos = count(1)


@pytest.fixture()
def licensed(session: Session, fleet: Fleet) -> Fleet:
    """The fleet's drivers with a licence photo on file."""
    for driver_id in (fleet.driver_id, fleet.other_driver_id):
        registry.set_driver_licence(session, driver_id, OLD, actor="tests")
    session.commit()
    return fleet


def decided(
    session: Session,
    fleet: Fleet,
    outcome: Outcome,
    days_ago: float | None,
    *,
    driver_id: int | None = None,
    reasons=(),
) -> str:
    """A submission of the driver's decided ``outcome`` (``days_ago``; None: now)."""
    n = next(_photos)
    created = submit(
        session, fleet, driver_id=driver_id or fleet.driver_id, photo_sha256=f"{n:064x}", photo_phash=f"{n:016x}"
    )
    verdicts.record_verdict(session, created.submission.id, verdict(outcome, reasons=reasons))
    if days_ago is not None:
        decided_at(session, created.submission.id, utcnow() - timedelta(days=days_ago))
    session.commit()
    return created.submission.id


def replace(session: Session, driver_id: int, sha: str | None, reason: str = "renewed licence") -> None:
    registry.set_driver_licence(session, driver_id, sha, actor="key:back-office", reason=reason)
    session.commit()


def test_verdicts_decided_before_the_replacement_in_the_window_are_listed(session: Session, licensed: Fleet) -> None:
    passed = decided(session, licensed, Outcome.PASS, 2)
    failed = decided(session, licensed, Outcome.FAIL, 5, reasons=(ReasonCode.PLATE_MISMATCH,))
    too_old = decided(session, licensed, Outcome.PASS, 31)
    someone_else = decided(session, licensed, Outcome.PASS, 2, driver_id=licensed.other_driver_id)
    replace(session, licensed.driver_id, NEW)
    after = decided(session, licensed, Outcome.PASS, None)

    found = licence_recheck(session, carrier_id=licensed.carrier_id, driver_id=licensed.driver_id, days=30)

    assert [i.submission_id for i in found.items] == [passed, failed]  # newest verdict first
    assert not {too_old, someone_else, after} & {i.submission_id for i in found.items}
    first = found.items[0]
    assert (first.outcome, first.decided_by, first.reasons) == (Outcome.PASS, "machine", [])
    assert found.items[1].reasons == [ReasonCode.PLATE_MISMATCH.value]
    assert found.counts == {Outcome.PASS: 1, Outcome.FAIL: 1} and found.total == 2
    # The history, newest first: the replacement, then the photo first put on file.
    latest, first_photo = found.replacements
    assert (latest.actor, latest.reason, latest.old_sha256, latest.new_sha256) == (
        "key:back-office",
        "renewed licence",
        OLD,
        NEW,
    )
    assert (first_photo.old_sha256, first_photo.new_sha256) == (None, OLD)
    assert found.replaced_at == latest.at
    # Older than the window: the 31-day-old verdict comes back with a wider one.
    wider = licence_recheck(session, carrier_id=licensed.carrier_id, driver_id=licensed.driver_id, days=40)
    assert [i.submission_id for i in wider.items] == [passed, failed, too_old]


def test_a_new_verdict_after_the_replacement_takes_the_submission_off_the_list(
    session: Session, licensed: Fleet
) -> None:
    passed = decided(session, licensed, Outcome.PASS, 2)
    replace(session, licensed.driver_id, NEW)
    verdicts.record_review(
        session, passed, reviewer="ana", outcome=Outcome.FAIL, note="not him", reasons=["FACE_MISMATCH"]
    )
    session.commit()
    found = licence_recheck(session, carrier_id=licensed.carrier_id, driver_id=licensed.driver_id, days=30)
    assert found.items == [] and found.replaced_at is not None


def test_nothing_to_recheck_without_a_change_of_photo_in_the_window(session: Session, fleet: Fleet) -> None:
    decided(session, fleet, Outcome.PASS, 2)
    # The first photo put on file replaces none: no verdict was decided against a face.
    replace(session, fleet.driver_id, OLD, reason="first photo")
    # The same photo sent again changes no face either.
    replace(session, fleet.driver_id, OLD, reason="sent again")
    found = licence_recheck(session, carrier_id=fleet.carrier_id, driver_id=fleet.driver_id, days=30)
    assert found.replaced_at is None and found.items == [] and found.counts == {}
    assert [r.reason for r in found.replacements] == ["sent again", "first photo"]

    # A real replacement, then the same photo again: the cutoff is the real one.
    replace(session, fleet.driver_id, NEW)
    between = decided(session, fleet, Outcome.PASS, None)
    replace(session, fleet.driver_id, NEW, reason="sent again")
    found = licence_recheck(session, carrier_id=fleet.carrier_id, driver_id=fleet.driver_id, days=30)
    assert found.replaced_at == found.replacements[1].at
    assert between not in {i.submission_id for i in found.items} and len(found.items) == 1

    # A replacement longer ago than the window: nothing to re-check any more.
    later = utcnow() + timedelta(days=31)
    assert (
        licence_recheck(session, carrier_id=fleet.carrier_id, driver_id=fleet.driver_id, days=30, now=later).items == []
    )


def test_another_carrier_sees_neither_the_replacements_nor_the_verdicts(session: Session, licensed: Fleet) -> None:
    decided(session, licensed, Outcome.PASS, 2)
    replace(session, licensed.driver_id, NEW)
    other = registry.add_carrier(session, code="other", name="Other Haulage")
    session.commit()
    found = licence_recheck(session, carrier_id=other.id, driver_id=licensed.driver_id, days=30)
    assert found.replacements == [] and found.items == [] and found.replaced_at is None


def test_the_list_is_bounded_and_counts_what_it_leaves_off(session: Session, licensed: Fleet) -> None:
    ids = [decided(session, licensed, outcome, days) for outcome, days in
           ((Outcome.PASS, 1), (Outcome.REVIEW, 2), (Outcome.PASS, 3), (Outcome.FAIL, 4))]  # fmt: skip
    replace(session, licensed.driver_id, NEW)
    found = licence_recheck(session, carrier_id=licensed.carrier_id, driver_id=licensed.driver_id, days=30, limit=2)
    assert [i.submission_id for i in found.items] == ids[:2]
    assert found.counts == {Outcome.PASS: 2, Outcome.REVIEW: 1, Outcome.FAIL: 1} and found.total == 4
