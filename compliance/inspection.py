"""From judgments to a verdict: builds the check context and runs the policy.

Shared by the CLI's ad-hoc check, stored submissions and batch audits, so they decide alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from compliance import plates
from compliance.checks import CheckContext, Policy, PriorPhoto
from compliance.judgments import Judgments
from compliance.settings import Thresholds
from compliance.verdicts import Verdict

DEFAULT_POLICY = Policy()


def decide(
    judgments: Judgments,
    *,
    thresholds: Thresholds,
    registered_plates: Sequence[str],
    licence_given: bool,
    driver_id: int | None = None,
    submitted_at: datetime | None = None,
    capture_time: datetime | None = None,
    job_window: tuple[datetime, datetime] | None = None,
    similar_photos: Sequence[PriorPhoto] = (),
    policy: Policy = DEFAULT_POLICY,
) -> Verdict:
    ctx = CheckContext(
        judgments=judgments,
        thresholds=thresholds,
        registered_plates=tuple(plates.normalise(p) for p in registered_plates),
        licence_given=licence_given,
        driver_id=driver_id,
        submitted_at=submitted_at,
        capture_time=capture_time,
        job_window=job_window,
        similar_photos=tuple(similar_photos),
    )
    return policy.decide(ctx)
