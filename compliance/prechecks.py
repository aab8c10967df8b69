"""What a precheck finds in a photo before it is uploaded, and the problems a driver fixes by taking
it again (``POST /v1/prechecks``).

Only what an honest retake fixes: sharpness, light, a person, a face, a vehicle, a plate visible at
all, a position recorded. Never liveness, and never whether the plate read is the registered one:
an answer a fraudster may retry against until a spoof passes would be an oracle. So a precheck
carries no plate text, no face similarity and no score that leaks either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from compliance.judgments import Answer, Judgments
from compliance.settings import Thresholds


class PrecheckCode(StrEnum):
    """A problem the driver can fix by taking the photo again. Distinct from the verdicts'
    ``ReasonCode``s: these tell a driver what to do, those tell a compliance team what was decided."""

    PHOTO_BLURRED = "PHOTO_BLURRED"
    PHOTO_TOO_DARK = "PHOTO_TOO_DARK"
    PHOTO_TOO_BRIGHT = "PHOTO_TOO_BRIGHT"
    NO_PERSON = "NO_PERSON"
    NO_FACE = "NO_FACE"
    NO_VEHICLE = "NO_VEHICLE"
    NO_READABLE_PLATE = "NO_READABLE_PLATE"
    NO_POSITION = "NO_POSITION"


class PrecheckFindings(BaseModel):
    """What the precheck saw, before thresholds. ``face`` is ``unknown`` where no person was found
    (nothing is looked for then: "no person" is the problem to fix); ``plate_readable`` means some
    plate-shaped text was read, not which."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    blur: float | None = None
    brightness: float | None = None
    person: Answer = Answer.UNKNOWN
    face: Answer = Answer.UNKNOWN
    vehicle: Answer = Answer.UNKNOWN
    plate_readable: Answer = Answer.UNKNOWN
    latency_ms: dict[str, float] = Field(default_factory=dict)


def findings_of(judgments: Judgments) -> PrecheckFindings:
    """What a full pipeline's judgments say of the same things a precheck looks at: to measure how
    often the two agree (``bench/precheck.py``). The face counts only where a person was found, as
    in a precheck; a plate is readable where any plate was read (what ``PLATE_UNREADABLE`` tests)."""
    person = judgments.person.present
    readable = bool(judgments.plate.text) or any(r.text for r in judgments.plates)
    return PrecheckFindings(
        blur=judgments.quality.blur,
        brightness=judgments.quality.brightness,
        person=person,
        face=judgments.face.scene_face if person is Answer.YES else Answer.UNKNOWN,
        vehicle=judgments.vehicle.present,
        plate_readable=Answer.of(readable),
        latency_ms=dict(judgments.provenance.latency_ms),
    )


@dataclass(frozen=True, slots=True)
class SitePosition:
    """Where a registered site is (WGS-84), when the carrier gave it a position."""

    lat: float
    lon: float
    radius_m: float | None = None


def position_problem(site: SitePosition | None, photo_has_position: bool | None) -> PrecheckCode | None:
    """``NO_POSITION`` when the site has a position and the photo recorded none. A site without a
    position (or no site) asks for none; a photo whose EXIF could not be read counts as none.
    Whether the position is *inside* the site is not said here: that is the verdict's to decide."""
    if site is None:
        return None
    return None if photo_has_position else PrecheckCode.NO_POSITION


def problems(
    findings: PrecheckFindings, thresholds: Thresholds, *, position: PrecheckCode | None = None
) -> tuple[PrecheckCode, ...]:
    """The problems, in the order a driver fixes them: the photo itself, then what is in it. The
    thresholds are the ones the verdict applies (``blur_min``, ``brightness_min``/``max``), so a
    photo the precheck finds sharp is one the verdict finds sharp."""
    found: list[PrecheckCode] = []
    if findings.blur is not None and findings.blur < thresholds.blur_min:
        found.append(PrecheckCode.PHOTO_BLURRED)
    if findings.brightness is not None and findings.brightness < thresholds.brightness_min:
        found.append(PrecheckCode.PHOTO_TOO_DARK)
    if findings.brightness is not None and findings.brightness > thresholds.brightness_max:
        found.append(PrecheckCode.PHOTO_TOO_BRIGHT)
    if findings.person is Answer.NO:
        found.append(PrecheckCode.NO_PERSON)
    elif findings.face is Answer.NO:
        found.append(PrecheckCode.NO_FACE)
    if findings.vehicle is Answer.NO:
        found.append(PrecheckCode.NO_VEHICLE)
    if findings.plate_readable is Answer.NO:
        found.append(PrecheckCode.NO_READABLE_PLATE)
    if position is not None:
        found.append(position)
    return tuple(found)
