"""Whether two pipelines' judgments of one photo agree, field by field.

The fields are the ones a verdict rests on (person, vehicle, plate text, same person), read the
way the "both" mode's agreement checks read them: an unknown on one side and an answer on the
other is a disagreement, since the second pipeline did not confirm it. Reports count agreement
with this; the store keeps its result on the submission so that counting needs no JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from compliance.judgments import Judgments

Field = Literal["person", "vehicle", "plate", "face"]
FIELDS: tuple[Field, ...] = ("person", "vehicle", "plate", "face")

# The two pipelines whose judgments are compared: the baseline first.
BASELINE = "multistage"
MLLM = "mllm"
COMPARED = (BASELINE, MLLM)

# Reason codes of the "both" mode start with this; each names the field after it.
DISAGREE_REASON_PREFIX = "PIPELINES_DISAGREE"

_READ: dict[Field, Callable[[Judgments], str]] = {
    "person": lambda j: j.person.present.value,
    "vehicle": lambda j: j.vehicle.present.value,
    "plate": lambda j: j.plate.text or "unread",
    "face": lambda j: j.face.same_person.value,
}


@dataclass(frozen=True, slots=True)
class FieldComparison:
    field: Field
    first: str
    second: str

    @property
    def agree(self) -> bool:
        return self.first == self.second


@dataclass(frozen=True, slots=True)
class Comparison:
    fields: tuple[FieldComparison, ...]

    @property
    def agree(self) -> bool:
        return all(f.agree for f in self.fields)

    @property
    def disagreeing(self) -> tuple[Field, ...]:
        return tuple(f.field for f in self.fields if not f.agree)


def read_field(field: Field, judgments: Judgments) -> str:
    """The value a comparison sees: ``yes``/``no``/``unknown``, or the plate text (``unread``)."""
    return _READ[field](judgments)


def compare(first: Judgments, second: Judgments) -> Comparison:
    return Comparison(tuple(FieldComparison(f, read_field(f, first), read_field(f, second)) for f in FIELDS))


def is_disagreement_reason(reason: str) -> bool:
    return reason.startswith(DISAGREE_REASON_PREFIX)
