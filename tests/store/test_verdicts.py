"""Judgments and verdict history: idempotent where a task may run twice, never losing an
earlier verdict, reviewers saying why, every change audited."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from compliance.judgments import Answer, Judgments
from compliance.store import audit, db, verdicts
from compliance.store import submissions as subs
from compliance.store.errors import (
    InvalidVerdict,
    UnknownSubmission,
)
from compliance.store.models import (
    JudgmentRecord,
    SubmissionStatus,
    VerdictRecord,
)
from compliance.verdicts import Corrections, Outcome, ReasonCode
from tests.store.samples import Fleet, count, judgments, submit, verdict


def test_recording_a_judgment_twice_keeps_one(session: Session, fleet: Fleet) -> None:
    sid = submit(session, fleet).submission.id
    given = judgments(persons=2)
    first = verdicts.record_judgment(session, sid, given)
    # The task ran again, with a different (later) answer from the same models: the first stays.
    second = verdicts.record_judgment(session, sid, judgments(persons=3))
    session.commit()
    assert second.id == first.id
    assert count(session, JudgmentRecord, submission_id=sid) == 1
    assert Judgments.model_validate(second.data) == given
    assert len(audit.list_events(session, subject_id=sid, action="judgment.record")) == 1

    # Another model version, or another pipeline, is another judgment.
    verdicts.record_judgment(session, sid, judgments(models={"yolox": "nano-2"}))
    verdicts.record_judgment(session, sid, judgments(pipeline="mllm", models={"qwen": "2.5-vl-3b"}))
    verdicts.record_judgment(session, sid, given, model_version="explicit-v9")
    session.commit()
    assert count(session, JudgmentRecord, submission_id=sid) == 4
    with pytest.raises(UnknownSubmission):
        verdicts.record_judgment(session, "no-such-id", given)


def test_a_new_verdict_keeps_the_old_one(session: Session, fleet: Fleet) -> None:
    sid = submit(session, fleet).submission.id
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
    sid = submit(session, fleet).submission.id
    first = verdicts.record_verdict(session, sid, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
    again = verdicts.record_verdict(session, sid, verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
    session.commit()
    assert again.id == first.id
    assert count(session, VerdictRecord, submission_id=sid) == 1
    assert count(session, JudgmentRecord, submission_id=sid) == 1

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
    sid = submit(session, fleet).submission.id
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
    assert count(session, VerdictRecord, submission_id=sid) == 2
    assert count(session, VerdictRecord, submission_id=sid, is_current=True) == 1


def test_the_database_allows_one_current_verdict(session: Session, fleet: Fleet) -> None:
    sid = submit(session, fleet).submission.id
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
        sid = submit(session, fleet).submission.id

    def decide(_: int) -> int:
        with factory() as session, session.begin():
            return verdicts.record_verdict(session, sid, verdict(Outcome.PASS)).id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(decide, range(8)))
    assert len(ids) == 1
    with factory() as session:
        assert count(session, VerdictRecord, submission_id=sid) == 1
        assert count(session, JudgmentRecord, submission_id=sid) == 1


def test_a_review_keeps_the_reviewers_corrections_beside_the_machines_judgments(session: Session, fleet: Fleet) -> None:
    sid = submit(session, fleet).submission.id
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
