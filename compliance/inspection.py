"""From judgments to a verdict: builds the check context and runs the policy.

Shared by the CLI's ad-hoc check, stored submissions and batch audits, so they decide alike.
With a second opinion (pipeline choice "both") the verdict is decided from the first pipeline's
judgments, the checks compare the second's field by field, and the verdict's judgments say that
both were used (``combined``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from compliance import plates
from compliance.checks import CheckContext, Policy, PriorPhoto
from compliance.checks.plate import resting_on_registered
from compliance.judgments import Judgments, Provenance
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
    second_opinion: Judgments | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Verdict:
    registered = tuple(plates.normalise(p) for p in registered_plates)
    # Of every plate read, the verdict rests on the one that matches (the other vehicle's is kept too).
    judgments = resting_on_registered(judgments, registered, thresholds)
    if second_opinion is not None:
        second_opinion = resting_on_registered(second_opinion, registered, thresholds)
    ctx = CheckContext(
        judgments=judgments if second_opinion is None else combined(judgments, second_opinion),
        thresholds=thresholds,
        registered_plates=registered,
        licence_given=licence_given,
        driver_id=driver_id,
        submitted_at=submitted_at,
        capture_time=capture_time,
        job_window=job_window,
        similar_photos=tuple(similar_photos),
        second_opinion=second_opinion,
    )
    return policy.decide(ctx)


BOTH = "both"


def combined(first: Judgments, second: Judgments) -> Judgments:
    """``first``'s values, with a provenance that names both pipelines and all their models.

    Latencies are kept per pipeline, prefixed with its name (``mllm.generate``): the two may have
    run on different workers, at different times.
    """
    a, b = first.provenance, second.provenance
    return first.model_copy(
        update={
            "provenance": Provenance(
                pipeline=BOTH,
                models={**b.models, **a.models},
                latency_ms={
                    **{f"{a.pipeline}.{k}": v for k, v in a.latency_ms.items()},
                    **{f"{b.pipeline}.{k}": v for k, v in b.latency_ms.items()},
                },
                raw_output=a.raw_output if a.raw_output is not None else b.raw_output,
                output_errors=a.output_errors,
                output_doubts=a.output_doubts,
                pipelines=(a.pipeline, b.pipeline),
            )
        }
    )
