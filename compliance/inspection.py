"""From judgments to a verdict: builds the check context and runs the policy.

Shared by the CLI's ad-hoc check, stored submissions and batch audits, so they decide alike.
With a second opinion (pipeline choice "both") the verdict is decided from the first pipeline's
judgments, the checks compare the second's field by field, and the verdict's judgments say that
both were used (``combined``). A cascade (``decide_cascade``) keeps the baseline's verdict where
``compliance.cascade.settle`` says it settles the photo, and otherwise decides as "both" does; its
judgments say which path it took (``provenance.cascade``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import NotRequired, TypedDict, Unpack

from compliance import plates
from compliance.cascade import settle
from compliance.checks import CheckContext, Policy, PriorPhoto
from compliance.checks.base import SiteArea
from compliance.checks.plate import resting_on_registered
from compliance.judgments import CascadeStep, Judgments, Provenance
from compliance.photos import ExifFacts
from compliance.pipeline import CASCADE
from compliance.settings import Settings, Thresholds
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
    cascade: CascadeStep | None = None,
    site: SiteArea | None = None,
    exif: ExifFacts | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> Verdict:
    registered = tuple(plates.normalise(p) for p in registered_plates)
    # Of every plate read, the verdict rests on the one that matches (the other vehicle's is kept too).
    judgments = resting_on_registered(judgments, registered, thresholds)
    if second_opinion is not None:
        second_opinion = resting_on_registered(second_opinion, registered, thresholds)
    judged = judgments if second_opinion is None else combined(judgments, second_opinion)
    ctx = CheckContext(
        judgments=judged if cascade is None else cascaded(judged, cascade),
        thresholds=thresholds,
        registered_plates=registered,
        licence_given=licence_given,
        driver_id=driver_id,
        submitted_at=submitted_at,
        capture_time=capture_time,
        job_window=job_window,
        similar_photos=tuple(similar_photos),
        second_opinion=second_opinion,
        site=site,
        exif=exif,
    )
    return policy.decide(ctx)


class Facts(TypedDict):
    """What a verdict is decided against besides the judgments: ``decide``'s keywords, given once
    to ``decide_cascade``, which decides with them up to twice."""

    thresholds: Thresholds
    registered_plates: Sequence[str]
    licence_given: bool
    driver_id: NotRequired[int | None]
    submitted_at: NotRequired[datetime | None]
    capture_time: NotRequired[datetime | None]
    job_window: NotRequired[tuple[datetime, datetime] | None]
    similar_photos: NotRequired[Sequence[PriorPhoto]]
    site: NotRequired[SiteArea | None]
    exif: NotRequired[ExifFacts | None]
    policy: NotRequired[Policy]


def decide_cascade(
    baseline: Judgments, mllm: Judgments | None, *, settings: Settings, **facts: Unpack[Facts]
) -> Verdict | None:
    """A cascade's verdict: the baseline's own where it settles the photo; else, once the MLLM's
    judgments are given, decided from the two exactly as "both" decides (the MLLM's values first, the
    baseline's compared field by field). None: escalated, and the MLLM has not judged yet. Either
    verdict's judgments carry the path taken and why (``provenance.cascade``)."""
    decided = partial(decide, **facts)
    thresholds = facts["thresholds"]
    settlement = settle(decided(baseline), thresholds, settings)
    if settlement.settled:
        return decided(baseline, cascade=settlement.step)
    if mllm is None:
        return None
    return decided(mllm, second_opinion=baseline, cascade=settlement.step)


def cascaded(judgments: Judgments, step: CascadeStep) -> Judgments:
    """The judgments a cascade's verdict was decided from, named ``cascade``, with the pipelines
    used (the baseline alone, or the two of "both") and the path taken."""
    own = judgments.provenance
    provenance = own.model_copy(
        update={"pipeline": CASCADE, "pipelines": own.pipelines or (own.pipeline,), "cascade": step}
    )
    return judgments.model_copy(update={"provenance": provenance})


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
