"""What the checks decide: an outcome with reason codes, and the judgments it was decided from."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, StrictInt, field_validator

from compliance import plates
from compliance.judgments import Answer, Judgments, PlateColor, VehicleKind


class Outcome(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    REVIEW = "REVIEW"


# Severity order: one FAIL fails the photo, otherwise one REVIEW sends it to a person.
_SEVERITY = {Outcome.PASS: 0, Outcome.REVIEW: 1, Outcome.FAIL: 2}


def worst(outcomes: list[Outcome]) -> Outcome:
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.PASS)


class ReasonCode(StrEnum):
    PERSON_MISSING = "PERSON_MISSING"
    PERSON_UNCERTAIN = "PERSON_UNCERTAIN"
    VEHICLE_MISSING = "VEHICLE_MISSING"
    VEHICLE_UNCERTAIN = "VEHICLE_UNCERTAIN"
    PLATE_UNREADABLE = "PLATE_UNREADABLE"
    PLATE_LOW_CONFIDENCE = "PLATE_LOW_CONFIDENCE"
    PLATE_MISMATCH = "PLATE_MISMATCH"
    PLATE_CONFUSABLE = "PLATE_CONFUSABLE"
    # One character differs from the registered plate, and the reader itself doubted that character.
    PLATE_UNCERTAIN_CHARACTER = "PLATE_UNCERTAIN_CHARACTER"
    # A registered plate is read, but a markedly nearer vehicle's plate is surely another.
    PLATE_MATCH_NOT_NEAREST = "PLATE_MATCH_NOT_NEAREST"
    PLATE_UNKNOWN_FORMAT = "PLATE_UNKNOWN_FORMAT"
    PLATE_NOT_REGISTERED = "PLATE_NOT_REGISTERED"
    FACE_MISMATCH = "FACE_MISMATCH"
    FACE_UNCERTAIN = "FACE_UNCERTAIN"
    FACE_NOT_IN_SCENE = "FACE_NOT_IN_SCENE"
    FACE_NOT_ON_LICENCE = "FACE_NOT_ON_LICENCE"
    # The scene's face scored under live_min: perhaps shown on a screen or on paper (REVIEW, never FAIL).
    FACE_NOT_LIVE = "FACE_NOT_LIVE"
    LICENCE_PHOTO_MISSING = "LICENCE_PHOTO_MISSING"
    LOW_QUALITY_BLUR = "LOW_QUALITY_BLUR"
    LOW_QUALITY_DARK = "LOW_QUALITY_DARK"
    LOW_QUALITY_OVEREXPOSED = "LOW_QUALITY_OVEREXPOSED"
    LOW_RESOLUTION = "LOW_RESOLUTION"
    QUALITY_UNKNOWN = "QUALITY_UNKNOWN"
    DUPLICATE_PHOTO = "DUPLICATE_PHOTO"
    CAPTURE_TIME_OUTSIDE_WINDOW = "CAPTURE_TIME_OUTSIDE_WINDOW"
    CAPTURE_TIME_MISSING = "CAPTURE_TIME_MISSING"
    INVALID_MODEL_OUTPUT = "INVALID_MODEL_OUTPUT"
    # A well-formed answer whose values the model itself gave too low a probability: noise, or doubt.
    MODEL_LOW_CONFIDENCE = "MODEL_LOW_CONFIDENCE"
    # Judged by two pipelines ("both") that disagree on one field: a person looks.
    PIPELINES_DISAGREE_PERSON = "PIPELINES_DISAGREE_PERSON"
    PIPELINES_DISAGREE_VEHICLE = "PIPELINES_DISAGREE_VEHICLE"
    PIPELINES_DISAGREE_PLATE = "PIPELINES_DISAGREE_PLATE"
    PIPELINES_DISAGREE_FACE = "PIPELINES_DISAGREE_FACE"
    # The MLLM failed or answered invalidly and the multistage baseline judged instead (setting mllm_fallback).
    MLLM_FALLBACK = "MLLM_FALLBACK"
    # The photo's EXIF GPS position is farther from the registered site than the site's radius.
    LOCATION_OUTSIDE_SITE = "LOCATION_OUTSIDE_SITE"
    # The site has a position but the photo recorded none (or an unreadable one).
    LOCATION_MISSING = "LOCATION_MISSING"
    # EXIF Software names a known photo editor (compliance.photos.KNOWN_EDITORS).
    PHOTO_EDITED = "PHOTO_EDITED"
    # No camera make or model in EXIF: a screenshot or a re-saved image.
    NO_CAMERA_EXIF = "NO_CAMERA_EXIF"


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    check: str
    outcome: Outcome
    reason: ReasonCode | None = None
    detail: str = ""


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reasons: tuple[ReasonCode, ...]
    results: tuple[CheckResult, ...]
    judgments: Judgments
    policy_version: str


class Corrections(BaseModel):
    """What a reviewer says the photo really shows, field by field; None where they did not correct.

    Applied over the machine's judgments it gives the corrected judgments: the truth that exports
    to training data (SFT answers, DPO chosen) and that the reports score the pipelines against.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    person_present: Answer | None = None
    vehicle_present: Answer | None = None
    vehicle_kind: VehicleKind | None = None
    plate_text: str | None = None
    plate_color: PlateColor | None = None
    plate_rows: StrictInt | None = None  # strict: true is not one row
    same_person: Answer | None = None

    @field_validator("plate_text")
    @classmethod
    def _normalised_plate(cls, value: str | None) -> str | None:
        # Normalised as every reading is; a shape the grammar does not know is kept, as read.
        if value is None:
            return None
        text = plates.normalise(value)
        if not text:
            raise ValueError(f"{value!r} holds no plate characters")
        return text

    @field_validator("plate_rows")
    @classmethod
    def _one_or_two_rows(cls, value: int | None) -> int | None:
        if value is not None and value not in (1, 2):
            raise ValueError("a plate has 1 or 2 rows")
        return value

    @property
    def empty(self) -> bool:
        return not self.model_dump(exclude_none=True)

    def apply(self, judgments: Judgments) -> Judgments:
        """The judgments with these corrections laid over them; provenance stays the machine's."""
        person, vehicle, plate, face = judgments.person, judgments.vehicle, judgments.plate, judgments.face
        if self.person_present is not None:
            person = person.model_copy(update={"present": self.person_present})
        vehicle_update = {
            k: v for k, v in (("present", self.vehicle_present), ("kind", self.vehicle_kind)) if v is not None
        }
        if vehicle_update:
            vehicle = vehicle.model_copy(update=vehicle_update)
        plate_update: dict[str, object] = {}
        if self.plate_text is not None:
            parsed = plates.parse(self.plate_text)
            plate_update |= {
                "text": self.plate_text,
                "plate_type": parsed.plate_type.value if parsed.valid and parsed.plate_type else None,
                "known_format": Answer.of(parsed.valid),
            }
        if self.plate_color is not None:
            plate_update["color"] = self.plate_color
        if self.plate_rows is not None:
            plate_update["rows"] = self.plate_rows
        if plate_update:
            plate = plate.model_copy(update=plate_update)
        if self.same_person is not None:
            face = face.model_copy(update={"same_person": self.same_person})
        return judgments.model_copy(update={"person": person, "vehicle": vehicle, "plate": plate, "face": face})
