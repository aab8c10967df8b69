"""The judgments schema that every pipeline fills, and nothing else does.

A field a model did not give is ``unknown`` (or ``None`` for numbers), never a default:
checks turn unknowns into REVIEW.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, value: bool | None) -> Answer:
        if value is None:
            return cls.UNKNOWN
        return cls.YES if value else cls.NO


class VehicleKind(StrEnum):
    CAR = "car"
    VAN = "van"
    TRUCK = "truck"
    BUS = "bus"
    MOTORCYCLE = "motorcycle"
    TRAILER = "trailer"
    UNKNOWN = "unknown"


class PlateColor(StrEnum):
    BLUE = "blue"
    YELLOW = "yellow"
    GREEN = "green"
    WHITE = "white"
    BLACK = "black"
    UNKNOWN = "unknown"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Box(_Frozen):
    """Axis-aligned box in pixels of the image it was found in."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float | None = None
    label: str | None = None

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)


Point = tuple[float, float]


class PersonJudgment(_Frozen):
    present: Answer = Answer.UNKNOWN
    count: int | None = None
    boxes: tuple[Box, ...] = ()


class VehicleJudgment(_Frozen):
    present: Answer = Answer.UNKNOWN
    kind: VehicleKind = VehicleKind.UNKNOWN
    boxes: tuple[Box, ...] = ()


class PlateReading(_Frozen):
    """One plate as read. ``text`` is normalised (no separator dot, half-width, upper case)."""

    text: str | None = None
    raw_text: str | None = Field(default=None, description="what the reader returned before normalising")
    color: PlateColor = PlateColor.UNKNOWN
    rows: int | None = Field(default=None, ge=1, le=2)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    char_confidences: tuple[float, ...] | None = None
    plate_type: str | None = Field(default=None, description="grammar type, e.g. 'standard'; None if unknown")
    known_format: Answer = Answer.UNKNOWN
    box: Box | None = None
    corners: tuple[Point, Point, Point, Point] | None = None

    @property
    def readable(self) -> bool:
        return bool(self.text)


class FaceMatch(_Frozen):
    scene_face: Answer = Answer.UNKNOWN
    licence_face: Answer = Answer.UNKNOWN
    similarity: float | None = None
    threshold: float | None = None
    same_person: Answer = Answer.UNKNOWN
    scene_box: Box | None = None
    licence_box: Box | None = None
    # Is the scene's face a live one, not a face shown on a screen or on paper? ``unknown`` where no
    # model judged it (the MLLM, a face too small, judgments stored before liveness was checked).
    live: Answer = Answer.UNKNOWN
    live_score: float | None = Field(default=None, ge=0.0, le=1.0, description="the model's probability of a live face")
    live_threshold: float | None = Field(default=None, description="live_min the score was compared with")


class Quality(_Frozen):
    blur: float | None = Field(default=None, description="variance of the Laplacian; low means blurred")
    brightness: float | None = Field(default=None, description="mean luma 0-255")
    width: int | None = None
    height: int | None = None


class Fallback(_Frozen):
    """The pipeline asked for gave no usable answer, so another one judged: said, never silent."""

    pipeline: str = Field(description="the pipeline that was asked first and failed, e.g. 'mllm'")
    reason: str = Field(description="why its answer was not used: the error, or the invalid fields")
    raw_output: str | None = Field(default=None, description="its raw answer, if it gave one (kept for training)")


# The two paths a cascade takes (pipeline choice "cascade"): the baseline's verdict stands, or the
# MLLM judges too and the verdict is decided from both, as "both" decides.
SETTLED_BY_BASELINE = "settled_by_baseline"
ESCALATED = "escalated"
CascadePath = Literal["settled_by_baseline", "escalated"]


class CascadeStep(_Frozen):
    """Which path a cascade took, and why: kept with the judgments a cascade's verdict was decided from."""

    path: CascadePath
    reason: str = Field(description="what settled it, or which judgments the baseline was unsure of")
    unsure: tuple[str, ...] = Field(
        default=(),
        description="the judgments the baseline was not sure of (none when settled, or when it was a REVIEW)",
    )


class Provenance(_Frozen):
    pipeline: str
    models: dict[str, str] = Field(default_factory=dict, description="model name -> version or file digest")
    latency_ms: dict[str, float] = Field(default_factory=dict, description="stage -> milliseconds")
    raw_output: str | None = Field(default=None, description="a generative model's raw answer, kept as given")
    output_errors: tuple[str, ...] = Field(
        default=(), description="fields the model gave that were missing, malformed or outside the grammar"
    )
    output_doubts: tuple[str, ...] = Field(
        default=(),
        description="values the model wrote at too low a token probability to act on (each taken as unknown)",
    )
    pipelines: tuple[str, ...] = Field(
        default=(),
        description="for judgments compared across pipelines ('both'): every pipeline used, the one whose values "
        "these are first",
    )
    fallback: Fallback | None = None
    # Only on a cascade's judgments; None everywhere else, and in judgments stored before cascades.
    cascade: CascadeStep | None = None


class Judgments(_Frozen):
    person: PersonJudgment = PersonJudgment()
    vehicle: VehicleJudgment = VehicleJudgment()
    # The pipeline's main reading; in a verdict, the one the verdict rests on (the one that matched a
    # registered plate, else the most favourable, the most confident among equals).
    plate: PlateReading = PlateReading()
    # Every plate read in the photo, each with its box (two vehicles in a frame: two readings).
    plates: tuple[PlateReading, ...] = ()
    face: FaceMatch = FaceMatch()
    quality: Quality = Quality()
    provenance: Provenance

    @property
    def total_ms(self) -> float:
        return sum(self.provenance.latency_ms.values())
