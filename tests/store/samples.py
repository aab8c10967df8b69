"""Small judgments and verdicts to store, and a submission to hang them on: what a pipeline, the
policy and the API would hand over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.judgments import Answer, Judgments, PersonJudgment, Provenance
from compliance.store import submissions
from compliance.store.models import Submission, VerdictRecord
from compliance.verdicts import CheckResult, Outcome, ReasonCode, Verdict


@dataclass(frozen=True)
class Fleet:
    """One carrier's registered drivers and vehicle, by id."""

    carrier_id: int
    driver_id: int
    other_driver_id: int
    vehicle_id: int


def judgments(pipeline: str = "multistage", models: dict[str, str] | None = None, persons: int = 1) -> Judgments:
    return Judgments(
        person=PersonJudgment(present=Answer.of(persons > 0), count=persons),
        provenance=Provenance(pipeline=pipeline, models=models if models is not None else {"yolox": "nano-1"}),
    )


def verdict(
    outcome: Outcome = Outcome.PASS,
    *,
    policy_version: str = "policy-1",
    reasons: tuple[ReasonCode, ...] = (),
    of: Judgments | None = None,
) -> Verdict:
    results = tuple(CheckResult(check="presence", outcome=outcome, reason=r) for r in reasons) or (
        CheckResult(check="presence", outcome=outcome),
    )
    return Verdict(
        outcome=outcome,
        reasons=reasons,
        results=results,
        judgments=of if of is not None else judgments(),
        policy_version=policy_version,
    )


PHOTO = "c0ffee" + "0" * 58
PHASH = "8f3c0a5e91b2d476"


def submit(session: Session, fleet: Fleet, **overrides: object) -> submissions.CreatedSubmission:
    fields: dict[str, object] = {
        "carrier_id": fleet.carrier_id,
        "driver_id": fleet.driver_id,
        "photo_sha256": PHOTO,
        "photo_phash": PHASH,
        "source": "api",
    }
    fields.update(overrides)
    return submissions.create_submission(session, **fields)  # type: ignore[arg-type]


def count(session: Session, model: type, **where: object) -> int:
    query = sa.select(sa.func.count()).select_from(model)
    for column, value in where.items():
        query = query.where(getattr(model, column) == value)
    return session.scalar(query) or 0


def decided_at(session: Session, submission_id: str, when: datetime) -> None:
    """Move the submission's current verdict back to ``when``, as if it had been decided then."""
    session.execute(sa.update(Submission).where(Submission.id == submission_id).values(decided_at=when))
    session.execute(
        sa.update(VerdictRecord)
        .where(VerdictRecord.submission_id == submission_id, VerdictRecord.is_current.is_(True))
        .values(created_at=when)
    )
