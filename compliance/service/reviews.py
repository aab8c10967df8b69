"""Recording a person's verdict: a reviewer's decision over the machine's, from the API or the
dashboard's review queue. It becomes the current verdict and is announced to the carrier's
webhooks, whichever door it came through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from compliance.queue.publisher import Publisher
from compliance.service.verdicts import announce
from compliance.store import Store, submissions, verdicts
from compliance.store.errors import UnknownSubmission
from compliance.verdicts import Corrections, Outcome, ReasonCode


class ReviewConflict(ValueError):
    """The verdict the reviewer saw is no longer the current one: nothing was recorded."""


@dataclass(frozen=True, slots=True)
class Review:
    outcome: Outcome
    note: str
    reasons: Sequence[ReasonCode | str] = ()
    corrections: Corrections | None = None


def record_review(
    store: Store,
    publisher: Publisher,
    submission_id: str,
    review: Review,
    *,
    reviewer: str,
    carrier_ids: frozenset[int] | None = None,
    over_verdict: int | None = None,
) -> int:
    """Keep the review as the submission's current verdict and announce it; returns the verdict's
    id. ``carrier_ids`` scopes the caller (None: every carrier); a submission outside it is unknown.
    With ``over_verdict`` the review is refused (``ReviewConflict``) unless that verdict is still
    the current one: two reviewers never overwrite each other unseen."""
    with store.sessions() as s, s.begin():
        # Locked before the current verdict is read: two reviewers take turns, and the second sees
        # the first's verdict (a row lock on PostgreSQL; SQLite's writers are serialised).
        submission = submissions.lock_submission(s, submission_id)
        if carrier_ids is not None and submission.carrier_id not in carrier_ids:
            raise UnknownSubmission(submission_id)
        current = submission.current_verdict
        if over_verdict is not None and (current is None or current.id != over_verdict):
            by = current.decided_by if current is not None else "nobody"
            raise ReviewConflict(f"this submission was decided meanwhile (by {by}): nothing was recorded")
        record = verdicts.record_review(
            s,
            submission_id,
            reviewer=reviewer,
            outcome=review.outcome,
            note=review.note,
            reasons=review.reasons,
            corrections=review.corrections,
        )
        verdict_id = record.id
    announce(store, publisher, submission_id)
    return verdict_id
