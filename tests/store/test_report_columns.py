"""What the store keeps in step for reports: the pipelines' agreement, the seconds to verdict, and
what a person's verdict says of the plate reading (plate_reviews)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance import agreement
from compliance.judgments import Answer, FaceMatch, Judgments, PersonJudgment, PlateColor, PlateReading, Provenance
from compliance.store import pages, submissions, verdicts
from compliance.store.models import PlateReview, Submission
from compliance.verdicts import Corrections, Outcome, ReasonCode
from tests.store.samples import Fleet, verdict

SHA = "ab" * 32


def seen(pipeline: str, *, plate: str | None = "京A12345", same: Answer = Answer.YES) -> Judgments:
    return Judgments(
        person=PersonJudgment(present=Answer.YES, count=1),
        plate=PlateReading(text=plate, color=PlateColor.YELLOW if plate else PlateColor.UNKNOWN),
        face=FaceMatch(same_person=same),
        provenance=Provenance(pipeline=pipeline, models={pipeline: "1"}),
    )


def new_submission(session: Session, fleet: Fleet) -> Submission:
    return submissions.create_submission(
        session,
        carrier_id=fleet.carrier_id,
        driver_id=fleet.driver_id,
        vehicle_id=fleet.vehicle_id,
        photo_sha256=SHA,
        photo_phash="0123456789abcdef",
        source="api",
    ).submission


def test_agreement_is_kept_once_both_pipelines_have_judged(session: Session, fleet: Fleet) -> None:
    sub = new_submission(session, fleet)
    verdicts.record_judgment(session, sub.id, seen("multistage"))
    assert sub.pipelines_agree is None  # one pipeline: nothing to compare
    verdicts.record_judgment(session, sub.id, seen("mllm", plate="京A12346", same=Answer.UNKNOWN))
    session.refresh(sub)
    assert sub.pipelines_agree is False and sub.pipelines_disagree_on == "plate,face"
    # A newer MLLM model that reads it as the baseline did: they agree now.
    mllm = seen("mllm").model_copy(update={"provenance": Provenance(pipeline="mllm", models={"mllm": "2"})})
    verdicts.record_judgment(session, sub.id, mllm)
    session.refresh(sub)
    assert sub.pipelines_agree is True and sub.pipelines_disagree_on is None
    assert pages.count_submissions(session, pages.SubmissionFilter(pipelines_agree=True)) == 1


def test_agreement_reads_unknown_against_an_answer_as_a_disagreement() -> None:
    compared = agreement.compare(seen("multistage"), seen("mllm", plate=None, same=Answer.UNKNOWN))
    assert not compared.agree and compared.disagreeing == ("plate", "face")
    assert agreement.compare(seen("multistage"), seen("mllm")).agree


def test_a_persons_verdict_keeps_a_plate_review_until_the_machine_decides_again(session: Session, fleet: Fleet) -> None:
    sub = new_submission(session, fleet)
    machine = verdict(Outcome.REVIEW, reasons=(ReasonCode.PLATE_CONFUSABLE,), of=seen("multistage", plate="京A1234S"))
    verdicts.record_verdict(session, sub.id, machine)
    assert sub.verdict_seconds is not None and sub.verdict_seconds >= 0
    assert session.scalar(sa.select(sa.func.count()).select_from(PlateReview)) == 0  # the machine's: none

    verdicts.record_review(
        session,
        sub.id,
        reviewer="li.wei",
        outcome=Outcome.PASS,
        note="the plate is 京A12345",
        corrections=Corrections(plate_text="京A12345"),
    )
    review = session.get(PlateReview, sub.id)
    assert review is not None
    assert (review.colour, review.province, review.read_right) == ("blue", "京", False)  # the registered colour
    assert review.created_at == sub.created_at and review.carrier_id == fleet.carrier_id
    assert sub.verdict_seconds == int((sub.decided_at - sub.created_at).total_seconds())

    # Re-judged with a new policy: the machine's verdict is current again, the review row goes.
    verdicts.record_verdict(session, sub.id, verdict(Outcome.PASS, policy_version="policy-2"))
    session.expire_all()
    assert session.get(PlateReview, sub.id) is None


def test_a_reading_the_reviewer_lets_stand_counts_as_right(session: Session, fleet: Fleet) -> None:
    sub = new_submission(session, fleet)
    verdicts.record_verdict(session, sub.id, verdict(Outcome.REVIEW, of=seen("multistage")))
    verdicts.record_review(session, sub.id, reviewer="li.wei", outcome=Outcome.PASS, note="fine")
    assert session.get(PlateReview, sub.id).read_right is True
    # Correcting to the same text changes nothing.
    verdicts.record_review(
        session,
        sub.id,
        reviewer="li.wei",
        outcome=Outcome.PASS,
        note="same",
        corrections=Corrections(plate_text="京A12345"),
    )
    session.expire_all()
    assert session.get(PlateReview, sub.id).read_right is True


def test_no_reading_and_no_correction_is_not_right(session: Session, fleet: Fleet) -> None:
    sub = new_submission(session, fleet)
    verdicts.record_verdict(session, sub.id, verdict(Outcome.REVIEW, of=seen("multistage", plate=None)))
    verdicts.record_review(session, sub.id, reviewer="li.wei", outcome=Outcome.FAIL, note="no plate")
    review = session.get(PlateReview, sub.id)
    # The truth falls back to the registered plate: its province, and a miss for the reader.
    assert (review.province, review.read_right) == ("京", False)


def test_seconds_to_verdict_follow_the_current_verdict(session: Session, fleet: Fleet) -> None:
    sub = new_submission(session, fleet)
    sub.created_at = sub.created_at - timedelta(minutes=10)
    session.flush()
    verdicts.record_verdict(session, sub.id, verdict(Outcome.PASS))
    assert 600 <= sub.verdict_seconds <= 660
