"""With two pipelines ("both"), each judgment the decision rests on must be the same from both.

One check per field, so that each disagreement is its own REVIEW with a reason code naming the
field. An unknown on one side and an answer on the other is a disagreement too: the second pipeline
did not confirm it. Fields that no check decides on (vehicle kind, plate colour) are not compared.
"""

from __future__ import annotations

from compliance.agreement import Field, read_field
from compliance.checks.base import CheckContext, passed, review
from compliance.verdicts import CheckResult, ReasonCode

# How a value is named in a check's detail.
_LABEL: dict[Field, str] = {"person": "person", "vehicle": "vehicle", "plate": "plate", "face": "same person"}
_REASON: dict[Field, ReasonCode] = {
    "person": ReasonCode.PIPELINES_DISAGREE_PERSON,
    "vehicle": ReasonCode.PIPELINES_DISAGREE_VEHICLE,
    "plate": ReasonCode.PIPELINES_DISAGREE_PLATE,
    "face": ReasonCode.PIPELINES_DISAGREE_FACE,
}


class PipelinesAgree:
    """Applies only where the context holds a second opinion."""

    def __init__(self, field: Field) -> None:
        self.field = field
        self.name = f"agreement_{field}"

    def run(self, ctx: CheckContext) -> CheckResult | None:
        other = ctx.second_opinion
        if other is None:
            return None
        label = _LABEL[self.field]
        mine, theirs = (f"{label} {read_field(self.field, j)}" for j in (ctx.judgments, other))
        # Combined judgments ("both") name the pipeline whose values they hold first.
        first = next(iter(ctx.judgments.provenance.pipelines), ctx.judgments.provenance.pipeline)
        second = other.provenance.pipeline
        if mine == theirs:
            detail = f"{first} and {second}: {mine}"
            if self.field == "face" and other.face.similarity is not None:
                detail += f" ({second} similarity {other.face.similarity:.3f})"
            return passed(self.name, detail)
        return review(self.name, _REASON[self.field], f"{first}: {mine}; {second}: {theirs}")
