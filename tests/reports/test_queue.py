"""The review queue's order: REVIEW verdicts on which the pipelines disagree, then other REVIEWs,
then machine verdicts the pipelines disagree on; oldest first; a person's verdict takes it out."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from compliance.judgments import Answer, FaceMatch, Judgments, PersonJudgment, PlateReading, Provenance
from compliance.reports.queue import in_queue, next_in_queue, queue_size
from compliance.store import registry, submissions, verdicts
from compliance.store.models import Submission, SubmissionReason, utcnow
from compliance.store.pages import SubmissionFilter
from compliance.verdicts import Outcome, ReasonCode
from tests.store.samples import Fleet, verdict


def seen(pipeline: str, plate: str = "京A12345") -> Judgments:
    return Judgments(
        person=PersonJudgment(present=Answer.YES, count=1),
        plate=PlateReading(text=plate),
        face=FaceMatch(same_person=Answer.YES),
        provenance=Provenance(pipeline=pipeline, models={pipeline: "1"}),
    )


def judged(
    session: Session, fleet: Fleet, n: int, minutes_ago: int, outcome: Outcome, *, mllm_plate: str | None = None,
    carrier_id: int | None = None, driver_id: int | None = None,
) -> str:  # fmt: skip
    sub = submissions.create_submission(
        session,
        carrier_id=carrier_id or fleet.carrier_id,
        driver_id=driver_id or fleet.driver_id,
        photo_sha256=f"{n:064x}",
        photo_phash=f"{n:016x}",
        source="api",
    ).submission
    sub.created_at = utcnow() - timedelta(minutes=minutes_ago)
    session.flush()
    reasons = (ReasonCode.PLATE_LOW_CONFIDENCE,) if outcome is Outcome.REVIEW else ()
    verdicts.record_verdict(session, sub.id, verdict(outcome, reasons=reasons, of=seen("multistage")))
    if mllm_plate is not None:
        verdicts.record_judgment(session, sub.id, seen("mllm", mllm_plate))
    return sub.id


def test_disagreements_first_then_reviews_oldest_first(session: Session, fleet: Fleet) -> None:
    review_old = judged(session, fleet, 1, 50, Outcome.REVIEW)
    review_new = judged(session, fleet, 2, 10, Outcome.REVIEW)
    review_disagree = judged(session, fleet, 3, 5, Outcome.REVIEW, mllm_plate="京A1234S")
    review_agree = judged(session, fleet, 4, 60, Outcome.REVIEW, mllm_plate="京A12345")
    pass_disagree = judged(session, fleet, 5, 70, Outcome.PASS, mllm_plate="京B99999")
    judged(session, fleet, 6, 80, Outcome.PASS, mllm_plate="京A12345")  # agreed PASS: not for people
    judged(session, fleet, 7, 90, Outcome.FAIL)
    reviewed = judged(session, fleet, 8, 100, Outcome.REVIEW)
    verdicts.record_review(session, reviewed, reviewer="li.wei", outcome=Outcome.PASS, note="fine")

    where = SubmissionFilter(carrier_id=fleet.carrier_id)
    order = [item.submission_id for item in next_in_queue(session, where, limit=10)]
    assert order == [review_disagree, review_agree, review_old, review_new, pass_disagree]
    assert queue_size(session, where) == 5
    assert not in_queue(session, reviewed) and in_queue(session, pass_disagree)
    # Skipping: what comes after a given one, in the same order.
    assert [i.submission_id for i in next_in_queue(session, where, after=review_agree, limit=2)] == [
        review_old,
        review_new,
    ]
    assert next_in_queue(session, where, after=pass_disagree) == []


def test_a_disagreement_reason_counts_without_two_judgments(session: Session, fleet: Fleet) -> None:
    plain = judged(session, fleet, 1, 30, Outcome.REVIEW)
    flagged = judged(session, fleet, 2, 5, Outcome.REVIEW)
    # The "both" mode's reason codes name the disagreement in the verdict itself.
    sub = session.get(Submission, flagged)
    session.add(
        SubmissionReason(
            submission_id=flagged,
            reason="PIPELINES_DISAGREE_PLATE",
            carrier_id=sub.carrier_id,
            created_at=sub.created_at,
        )
    )
    session.flush()
    order = [i.submission_id for i in next_in_queue(session, SubmissionFilter(), limit=5)]
    assert order == [flagged, plain]


def test_the_queue_is_the_carriers_own(session: Session, fleet: Fleet) -> None:
    other = registry.add_carrier(session, code="other", name="Other")
    driver = registry.add_driver(session, carrier_id=other.id, name="Zhao")
    mine = judged(session, fleet, 1, 30, Outcome.REVIEW)
    theirs = judged(session, fleet, 2, 40, Outcome.REVIEW, carrier_id=other.id, driver_id=driver.id)
    assert [i.submission_id for i in next_in_queue(session, SubmissionFilter(carrier_id=fleet.carrier_id))] == [mine]
    assert [i.submission_id for i in next_in_queue(session, SubmissionFilter(carrier_id=other.id))] == [theirs]
    assert queue_size(session, SubmissionFilter()) == 2


def test_another_carriers_submission_is_no_position_to_start_from(session: Session, fleet: Fleet) -> None:
    """``after=`` an id of another carrier must not tell where that submission stands in the order."""
    other = registry.add_carrier(session, code="other", name="Other")
    driver = registry.add_driver(session, carrier_id=other.id, name="Zhao")
    older = judged(session, fleet, 1, 50, Outcome.REVIEW)
    newer = judged(session, fleet, 2, 10, Outcome.REVIEW)
    between = judged(session, fleet, 3, 30, Outcome.REVIEW, carrier_id=other.id, driver_id=driver.id)
    mine = SubmissionFilter(carrier_id=fleet.carrier_id)
    assert [i.submission_id for i in next_in_queue(session, mine, after=between, limit=5)] == [older, newer]
    assert [i.submission_id for i in next_in_queue(session, mine, after="no-such-id", limit=5)] == [older, newer]
