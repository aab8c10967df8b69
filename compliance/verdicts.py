"""What the checks decide: an outcome with reason codes, and the judgments it was decided from."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from compliance.judgments import Judgments


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
    PLATE_UNKNOWN_FORMAT = "PLATE_UNKNOWN_FORMAT"
    PLATE_NOT_REGISTERED = "PLATE_NOT_REGISTERED"
    FACE_MISMATCH = "FACE_MISMATCH"
    FACE_UNCERTAIN = "FACE_UNCERTAIN"
    FACE_NOT_IN_SCENE = "FACE_NOT_IN_SCENE"
    FACE_NOT_ON_LICENCE = "FACE_NOT_ON_LICENCE"
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
