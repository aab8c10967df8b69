"""Small judgments and verdicts to store: what a pipeline and the policy would hand over."""

from __future__ import annotations

from dataclasses import dataclass

from compliance.judgments import Answer, Judgments, PersonJudgment, Provenance
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
