"""Submissions: created once per idempotency key, only for what the carrier registered, and
moved on through their statuses with every change audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from compliance.store import audit, pages
from compliance.store import submissions as subs
from compliance.store.errors import (
    IdempotencyConflict,
    InvalidSubmission,
    UnknownDriver,
    UnknownSubmission,
    UnknownVehicle,
)
from compliance.store.models import (
    PhotoHashBand,
    SubmissionSource,
    SubmissionStatus,
)
from tests.store.samples import PHASH, PHOTO, Fleet, count, submit


def test_create_keeps_what_was_given(session: Session, fleet: Fleet) -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    created = submit(
        session,
        fleet,
        vehicle_id=fleet.vehicle_id,
        claimed_plate="京a·12345",
        photo_phash=PHASH.upper(),
        job_id="J-7",
        job_start=start,
        job_end=start + timedelta(hours=4),
        source=SubmissionSource.CLI,
    )
    session.commit()
    assert created.created
    session.expire_all()
    got = subs.get_submission(session, created.submission.id)
    assert (got.driver.name, got.vehicle.registered_plate) == ("Li Wei", "京A12345")
    assert got.claimed_plate == "京A12345"
    assert got.photo_phash == PHASH
    assert got.status is SubmissionStatus.RECEIVED and got.source is SubmissionSource.CLI
    assert got.attempts == 0 and got.last_error is None
    # Stored as UTC, the same instant as given.
    assert got.job_window == (start, start + timedelta(hours=4))
    assert got.job_start.tzinfo == UTC
    assert got.created_at.tzinfo == UTC
    assert abs(datetime.now(UTC) - got.created_at) < timedelta(minutes=1)
    assert count(session, PhotoHashBand, submission_id=got.id) == 8
    [event] = audit.list_events(session, subject_type="submission", subject_id=got.id)
    assert event.action == "submission.create" and event.after["photo_sha256"] == PHOTO


@pytest.mark.parametrize(
    "capture_time",
    [
        datetime(2026, 3, 1, 9, 30, 5),  # what most cameras write: local time, no zone
        datetime(2026, 3, 1, 9, 30, 5, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 3, 1, 9, 30, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    ],
)
def test_capture_time_comes_back_as_the_camera_wrote_it(session: Session, fleet: Fleet, capture_time: datetime) -> None:
    created = submit(session, fleet, capture_time=capture_time)
    session.commit()
    session.expire_all()
    got = subs.get_submission(session, created.submission.id).captured_at
    assert got == capture_time and got.utcoffset() == capture_time.utcoffset()


def test_idempotency_key_returns_the_first_submission(session: Session, fleet: Fleet) -> None:
    first = submit(session, fleet, idempotency_key="req-1")
    again = submit(session, fleet, idempotency_key="req-1")
    session.commit()
    assert again.submission.id == first.submission.id and not again.created
    assert len(pages.list_submissions(session, carrier_id=fleet.carrier_id)) == 1
    assert len(audit.list_events(session, action="submission.create")) == 1
    with pytest.raises(IdempotencyConflict):
        submit(session, fleet, idempotency_key="req-1", photo_sha256="d" * 64)
    # Without a key, every call is a new submission.
    submit(session, fleet)
    submit(session, fleet)
    assert len(pages.list_submissions(session, carrier_id=fleet.carrier_id)) == 3


def test_create_refuses_what_does_not_belong(session: Session, fleet: Fleet) -> None:
    from compliance.store import registry

    other = registry.add_carrier(session, code="other", name="Other")
    stranger = registry.add_driver(session, carrier_id=other.id, name="Stranger")
    their_truck = registry.add_vehicle(session, carrier_id=other.id, registered_plate="沪B99999")
    with pytest.raises(UnknownDriver):
        submit(session, fleet, driver_id=stranger.id)
    with pytest.raises(UnknownVehicle):
        submit(session, fleet, vehicle_id=their_truck.id)
    with pytest.raises(InvalidSubmission):
        submit(session, fleet, photo_phash="xyz")
    with pytest.raises(InvalidSubmission):
        submit(session, fleet, photo_sha256="not-a-digest")
    with pytest.raises(ValueError):
        submit(session, fleet, source="fax")


def test_status_counts_attempts_and_keeps_the_error(session: Session, fleet: Fleet) -> None:
    sid = submit(session, fleet).submission.id
    subs.set_status(session, sid, SubmissionStatus.QUEUED)
    subs.set_status(session, sid, SubmissionStatus.PROCESSING)
    subs.set_status(session, sid, SubmissionStatus.FAILED, error="detector crashed", actor="worker-1")
    subs.set_status(session, sid, "processing", actor="worker-2")
    session.commit()
    got = subs.get_submission(session, sid)
    assert (got.status, got.attempts, got.last_error) == (SubmissionStatus.PROCESSING, 2, "detector crashed")
    moves = [
        (e.before["status"], e.after["status"], e.actor)
        for e in audit.list_events(session, subject_id=sid, action="submission.status")
    ]
    assert moves == [
        ("received", "queued", "system"),
        ("queued", "processing", "system"),
        ("processing", "failed", "worker-1"),
        ("failed", "processing", "worker-2"),
    ]
    with pytest.raises(UnknownSubmission):
        subs.set_status(session, "no-such-id", SubmissionStatus.QUEUED)
