"""Submissions, their judgments and their verdict history: idempotent where a task may run
twice, never losing an earlier verdict, every change audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compliance.judgments import Answer, Judgments
from compliance.store import audit, db, pages, verdicts
from compliance.store import submissions as subs
from compliance.store.errors import (
    IdempotencyConflict,
    InvalidSubmission,
    InvalidVerdict,
    UnknownDriver,
    UnknownSubmission,
    UnknownVehicle,
)
from compliance.store.models import (
    JudgmentRecord,
    PhotoHashBand,
    SubmissionSource,
    SubmissionStatus,
    VerdictRecord,
)
from compliance.verdicts import Corrections, Outcome, ReasonCode
from tests.store.samples import Fleet, judgments, verdict

PHOTO = "c0ffee" + "0" * 58
PHASH = "8f3c0a5e91b2d476"


def _submit(session: Session, fleet: Fleet, **overrides: object) -> subs.CreatedSubmission:
    fields: dict[str, object] = {
        "carrier_id": fleet.carrier_id,
        "driver_id": fleet.driver_id,
        "photo_sha256": PHOTO,
        "photo_phash": PHASH,
        "source": "api",
    }
    fields.update(overrides)
    return subs.create_submission(session, **fields)  # type: ignore[arg-type]


def _count(session: Session, model: type, **where: object) -> int:
    query = sa.select(sa.func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return session.scalar(query) or 0


def test_create_keeps_what_was_given(session: Session, fleet: Fleet) -> None:
    start = datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    created = _submit(
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
    assert _count(session, PhotoHashBand, submission_id=got.id) == 8
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
    created = _submit(session, fleet, capture_time=capture_time)
    session.commit()
    session.expire_all()
    got = subs.get_submission(session, created.submission.id).captured_at
    assert got == capture_time and got.utcoffset() == capture_time.utcoffset()


def test_idempotency_key_returns_the_first_submission(session: Session, fleet: Fleet) -> None:
    first = _submit(session, fleet, idempotency_key="req-1")
    again = _submit(session, fleet, idempotency_key="req-1")
    session.commit()
    assert again.submission.id == first.submission.id and not again.created
    assert len(pages.list_submissions(session, carrier_id=fleet.carrier_id)) == 1
    assert len(audit.list_events(session, action="submission.create")) == 1
    with pytest.raises(IdempotencyConflict):
        _submit(session, fleet, idempotency_key="req-1", photo_sha256="d" * 64)
    # Without a key, every call is a new submission.
    _submit(session, fleet)
    _submit(session, fleet)
    assert len(pages.list_submissions(session, carrier_id=fleet.carrier_id)) == 3


def test_create_refuses_what_does_not_belong(session: Session, fleet: Fleet) -> None:
    from compliance.store import registry

    other = registry.add_carrier(session, code="other", name="Other")
    stranger = registry.add_driver(session, carrier_id=other.id, name="Stranger")
    their_truck = registry.add_vehicle(session, carrier_id=other.id, registered_plate="沪B99999")
    with pytest.raises(UnknownDriver):
        _submit(session, fleet, driver_id=stranger.id)
    with pytest.raises(UnknownVehicle):
        _submit(session, fleet, vehicle_id=their_truck.id)
    with pytest.raises(InvalidSubmission):
        _submit(session, fleet, photo_phash="xyz")
    with pytest.raises(InvalidSubmission):
        _submit(session, fleet, photo_sha256="not-a-digest")
    with pytest.raises(InvalidSubmission):
        _submit(session, fleet, job_start=datetime(2026, 1, 1, 8), job_end=datetime(2026, 1, 1, 9))
    with pytest.raises(InvalidSubmission):
        _submit(session, fleet, job_start=datetime(2026, 1, 1, 8, tzinfo=UTC))
    with pytest.raises(ValueError):
        _submit(session, fleet, source="fax")


def test_status_counts_attempts_and_keeps_the_error(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
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


def test_recording_a_judgment_twice_keeps_one(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    given = judgments(persons=2)
    first = verdicts.record_judgment(session, sid, given)
    # The task ran again, with a different (later) answer from the same models: the first stays.
    second = verdicts.record_judgment(session, sid, judgments(persons=3))
    session.commit()
    assert second.id == first.id
    assert _count(session, JudgmentRecord, submission_id=sid) == 1
    assert Judgments.model_validate(second.data) == given
    assert len(audit.list_events(session, subject_id=sid, action="judgment.record")) == 1

    # Another model version, or another pipeline, is another judgment.
    verdicts.record_judgment(session, sid, judgments(models={"yolox": "nano-2"}))
    verdicts.record_judgment(session, sid, judgments(pipeline="mllm", models={"qwen": "2.5-vl-3b"}))
    verdicts.record_judgment(session, sid, given, model_version="explicit-v9")
    session.commit()
    assert _count(session, JudgmentRecord, submission_id=sid) == 4
    with pytest.raises(UnknownSubmission):
        verdicts.record_judgment(session, "no-such-id", given)


def test_a_new_verdict_keeps_the_old_one(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    first = verdicts.record_verdict(session, sid, verdict(Outcome.REVIEW, reasons=(ReasonCode.FACE_UNCERTAIN,)))
    session.commit()
    assert first.is_current
    second = verdicts.record_verdict(session, sid, verdict(Outcome.PASS, policy_version="policy-2"))
    session.commit()
    session.expire_all()

    got = subs.get_submission(session, sid)
    assert [v.id for v in got.verdicts] == [first.id, second.id]
    assert [v.is_current for v in got.verdicts] == [False, True]
    assert got.current_verdict.id == second.id
    assert got.status is SubmissionStatus.DECIDED
    old = got.verdicts[0]
    assert (old.outcome, old.reasons, old.policy_version) == (Outcome.REVIEW, ["FACE_UNCERTAIN"], "policy-1")
    assert old.results[0]["reason"] == "FACE_UNCERTAIN"
    # The judgments it was decided from are kept and linked.
    assert old.judgment is not None and old.judgment.pipeline == "multistage"
    events = audit.list_events(session, subject_id=sid, action="verdict.record")
    assert [(e.before["outcome"], e.after["outcome"]) for e in events] == [(None, "REVIEW"), ("REVIEW", "PASS")]


def test_deciding_the_same_machine_verdict_twice_keeps_one(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    first = verdicts.record_verdict(session, sid, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
    again = verdicts.record_verdict(session, sid, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
    session.commit()
    assert again.id == first.id
    assert _count(session, VerdictRecord, submission_id=sid) == 1
    assert _count(session, JudgmentRecord, submission_id=sid) == 1

    # A reviewer overrides it; a late retry of the machine task must not take the decision back.
    review = verdicts.record_review(
        session, sid, reviewer="reviewer-7", outcome=Outcome.PASS, note="plate is legible: 京A12345"
    )
    subs.set_status(session, sid, SubmissionStatus.PROCESSING, actor="worker-1")  # the task, re-delivered
    retried = verdicts.record_verdict(session, sid, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
    session.commit()
    session.expire_all()
    assert retried.id == first.id
    got = subs.get_submission(session, sid)
    assert got.current_verdict.id == review.id
    assert got.status is SubmissionStatus.DECIDED
    assert (review.decided_by, review.outcome, review.policy_version) == ("reviewer-7", Outcome.PASS, "policy-1")
    assert review.judgment_id == first.judgment_id
    assert len(got.verdicts) == 2


def test_reviewers_must_say_why(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    with pytest.raises(InvalidVerdict):
        verdicts.record_review(session, sid, reviewer="reviewer-7", outcome=Outcome.PASS, note=" ")
    with pytest.raises(InvalidVerdict):
        verdicts.record_verdict(session, sid, verdict(), decided_by="reviewer-7")
    with pytest.raises(InvalidVerdict):
        verdicts.record_review(session, sid, reviewer="machine", outcome=Outcome.PASS, note="I am a robot")
    # Two decisions by people are both history, even if identical.
    verdicts.record_review(session, sid, reviewer="reviewer-7", outcome=Outcome.FAIL, note="not the driver")
    verdicts.record_review(session, sid, reviewer="reviewer-7", outcome=Outcome.FAIL, note="not the driver")
    session.commit()
    assert _count(session, VerdictRecord, submission_id=sid) == 2
    assert _count(session, VerdictRecord, submission_id=sid, is_current=True) == 1


def test_the_database_allows_one_current_verdict(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    current = verdicts.record_verdict(session, sid, verdict())
    session.commit()
    row = {
        c: getattr(current, c)
        for c in ("submission_id", "outcome", "reasons", "results", "policy_version", "pipeline", "model_version")
    }
    row.update(decided_by="reviewer-1", is_current=True, created_at=current.created_at)
    with pytest.raises(IntegrityError):
        session.execute(sa.insert(VerdictRecord).values(row))
    session.rollback()


def test_concurrent_workers_record_one_verdict(engine: Engine, fleet: Fleet) -> None:
    factory = db.session_factory(engine)
    with factory() as session, session.begin():
        sid = _submit(session, fleet).submission.id

    def decide(_: int) -> int:
        with factory() as session, session.begin():
            return verdicts.record_verdict(session, sid, verdict(Outcome.PASS)).id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(decide, range(8)))
    assert len(ids) == 1
    with factory() as session:
        assert _count(session, VerdictRecord, submission_id=sid) == 1
        assert _count(session, JudgmentRecord, submission_id=sid) == 1


def test_list_filters(session: Session, fleet: Fleet) -> None:
    a = _submit(session, fleet, vehicle_id=fleet.vehicle_id).submission
    session.commit()
    between = datetime.now(UTC)
    b = _submit(session, fleet, driver_id=fleet.other_driver_id).submission
    c = _submit(session, fleet, source="audit").submission
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


def test_a_review_keeps_the_reviewers_corrections_beside_the_machines_judgments(session: Session, fleet: Fleet) -> None:
    sid = _submit(session, fleet).submission.id
    machine = verdicts.record_verdict(session, sid, verdict(Outcome.REVIEW, reasons=(ReasonCode.PLATE_UNREADABLE,)))
    fixed = Corrections(plate_text="京a·12345", same_person=Answer.YES)
    review = verdicts.record_review(
        session, sid, reviewer="reviewer-7", outcome=Outcome.PASS, note="plate legible on zoom", corrections=fixed
    )
    session.commit()
    session.expire_all()
    got = subs.get_submission(session, sid)
    assert got.current_verdict.id == review.id
    assert got.current_verdict.corrections == {"plate_text": "京A12345", "same_person": "yes"}
    # The machine's own verdict and judgments are untouched; the corrections lay over them.
    machine_judgments = Judgments.model_validate(got.judgments[0].data)
    assert subs.get_submission(session, sid).verdicts[0].id == machine.id
    corrected = Corrections.model_validate(got.current_verdict.corrections).apply(machine_judgments)
    assert corrected.plate.text == "京A12345" and corrected.plate.known_format is Answer.YES
    assert corrected.face.same_person is Answer.YES
    assert corrected.person == machine_judgments.person
    (event,) = audit.list_events(session, subject_id=sid, action="verdict.record")[-1:]
    assert event.after["corrections"] == {"plate_text": "京A12345", "same_person": "yes"}


def test_corrections_refuse_what_no_plate_or_answer_can_be() -> None:
    with pytest.raises(ValueError):
        Corrections(plate_text="·  ")
    with pytest.raises(ValueError):
        Corrections(plate_rows=3)
    with pytest.raises(ValueError):
        Corrections(same_person="maybe")
    with pytest.raises(ValueError):
        Corrections(face="yes")
    assert Corrections().empty and not Corrections(vehicle_kind="truck").empty
