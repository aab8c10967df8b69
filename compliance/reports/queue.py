"""The review queue: what a person should look at next.

In the queue: submissions whose current verdict the machine gave and that need a person: a
REVIEW, or a PASS/FAIL on which the two pipelines disagree. In order: REVIEW verdicts on which
the pipelines disagree (by their judgments, or a PIPELINES_DISAGREE_* reason), then the other
REVIEW verdicts, then the rest; oldest first within each. A person's verdict takes the submission
out of the queue, since it is no longer the machine's.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.agreement import DISAGREE_REASON_PREFIX
from compliance.store.models import MACHINE, Submission, SubmissionReason
from compliance.store.pages import SubmissionFilter
from compliance.verdicts import Outcome

_DISAGREE = sa.or_(
    Submission.pipelines_agree.is_(False),
    sa.exists().where(
        SubmissionReason.submission_id == Submission.id,
        SubmissionReason.reason.like(DISAGREE_REASON_PREFIX + "%"),
    ),
)
_IS_REVIEW = Submission.outcome == Outcome.REVIEW
TIER = sa.case((sa.and_(_IS_REVIEW, _DISAGREE), 0), (_IS_REVIEW, 1), else_=2)
_IN_QUEUE = sa.and_(Submission.decided_by == MACHINE, sa.or_(_IS_REVIEW, Submission.pipelines_agree.is_(False)))


class QueueItem(NamedTuple):
    submission_id: str
    tier: int  # 0: REVIEW and the pipelines disagree; 1: REVIEW; 2: decided, but the pipelines disagree


def in_queue(session: Session, submission_id: str) -> bool:
    return session.scalar(sa.select(sa.literal(True)).where(Submission.id == submission_id, _IN_QUEUE)) is not None


def next_in_queue(
    session: Session, where: SubmissionFilter, *, after: str | None = None, limit: int = 1
) -> list[QueueItem]:
    """The next ``limit`` submissions in queue order, after the one with id ``after`` (skipped).
    ``after`` counts only within ``where``'s scope: another carrier's submission is no position to
    start from (it would tell the caller where that one stands)."""
    query = sa.select(Submission.id, TIER.label("tier")).where(*where.where(), _IN_QUEUE)
    if after is not None:
        position = session.execute(
            sa.select(TIER, Submission.created_at, Submission.id).where(Submission.id == after, *where.where())
        ).one_or_none()
        if position is not None:
            query = query.where(
                sa.tuple_(TIER, Submission.created_at, Submission.id)
                > sa.tuple_(
                    sa.literal(position[0]),
                    sa.literal(position[1], Submission.created_at.type),
                    sa.literal(position[2]),
                )
            )
    query = query.order_by(TIER, Submission.created_at, Submission.id).limit(limit)
    return [QueueItem(submission_id, tier) for submission_id, tier in session.execute(query)]


def queue_size(session: Session, where: SubmissionFilter) -> int:
    return session.execute(
        sa.select(sa.func.count()).select_from(Submission).where(*where.where(), _IN_QUEUE)
    ).scalar_one()
