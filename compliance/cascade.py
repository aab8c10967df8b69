"""The cascade's one rule: when the baseline's verdict stands without the MLLM.

With the pipeline choice "cascade" the multistage baseline judges first. Its verdict is **settled**
(it is the verdict; no MLLM runs) when it is a PASS or a FAIL and every judgment it rests on was
decided confidently:

- a PASS rests on every judgment the checks read from a model: person, vehicle, plate and face;
- a FAIL rests on the judgments of its failing checks. A FAIL from a check that reads no model
  judgment (a re-used photo, a capture time outside the job) rests on none: the MLLM could not
  overturn it, since "both" fails it as well;
- a REVIEW from a check that reads a model judgment (person, vehicle, plate, face) is never
  settled: the baseline could not tell. A REVIEW only for what no such judgment decides (the
  photo's quality, where or how it was taken, a face not live) rests, like a PASS, on every
  judgment: where the baseline is sure of them all, the MLLM could not lift the REVIEW, so it is
  settled and the GPU is spared.

Confident, per judgment (thresholds are the carrier's, margins are settings):

- person, vehicle: present, with a detector box scoring at least ``detector_score_min`` plus
  ``cascade_detector_margin``. An absence has no score to be sure of (the detector reports only what
  it found), nor has a vehicle inferred from a plate mounted in the scene: the MLLM looks;
- plate: the reading the verdict rests on has a confidence of at least ``plate_confidence_min`` and
  every character one of at least ``plate_char_confidence_min``, each plus ``cascade_plate_margin``;
- face: a similarity outside the face check's undecided band (``Thresholds.face_band``, which
  depends on the smaller face's height) by ``cascade_face_margin``, on the side it was decided.

Otherwise the photo is **escalated**: the MLLM judges too, and the verdict is decided from the two as
"both" decides (``compliance.inspection.decide_cascade``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from compliance.agreement import FIELDS, Field
from compliance.checks.face import FaceMatchesLicence
from compliance.checks.plate import NAME as PLATE_CHECK
from compliance.checks.presence import PersonPresent, VehiclePresent
from compliance.judgments import ESCALATED, SETTLED_BY_BASELINE, Answer, Box, CascadeStep, FaceMatch, Judgments
from compliance.settings import Settings, Thresholds
from compliance.verdicts import Outcome, Verdict

# The check that reads each judgment: a FAIL from it rests on that judgment.
_FIELD_OF_CHECK: dict[str, Field] = {
    PersonPresent.name: "person",
    VehiclePresent.name: "vehicle",
    PLATE_CHECK: "plate",
    FaceMatchesLicence.name: "face",
}


class Sureness(NamedTuple):
    """Whether one judgment was decided confidently, and the figures that say so (or not)."""

    sure: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Settlement:
    """The rule's answer: settled by the baseline, or not, because of the judgments in ``unsure``."""

    settled: bool
    reason: str
    unsure: tuple[Field, ...] = ()

    @property
    def step(self) -> CascadeStep:
        return CascadeStep(
            path=SETTLED_BY_BASELINE if self.settled else ESCALATED, reason=self.reason, unsure=self.unsure
        )


def settle(verdict: Verdict, thresholds: Thresholds, settings: Settings) -> Settlement:
    """Whether the baseline's verdict (decided from its judgments alone) settles the photo."""
    if verdict.outcome is Outcome.REVIEW:
        reviewing = [r.check for r in verdict.results if r.outcome is Outcome.REVIEW]
        if any(check in _FIELD_OF_CHECK for check in reviewing):
            return Settlement(False, f"the baseline's verdict is REVIEW ({', '.join(verdict.reasons)})")
    if verdict.outcome is not Outcome.FAIL:
        resting: tuple[Field, ...] = FIELDS
    else:
        failing = [r.check for r in verdict.results if r.outcome is Outcome.FAIL]
        resting = tuple(dict.fromkeys(_FIELD_OF_CHECK[c] for c in failing if c in _FIELD_OF_CHECK))
    looked = {field: sureness(field, verdict.judgments, thresholds, settings) for field in resting}
    unsure = tuple(field for field, seen in looked.items() if not seen.sure)
    said = verdict.outcome.value
    if unsure:
        doubts = "; ".join(looked[f].detail for f in unsure)
        return Settlement(False, f"{said}, but not sure of the {', '.join(unsure)}: {doubts}", unsure)
    if not looked:
        return Settlement(True, f"{said} ({', '.join(verdict.reasons)}), resting on no model judgment")
    return Settlement(True, f"{said}: " + "; ".join(seen.detail for seen in looked.values()))


def sureness(field: Field, judgments: Judgments, thresholds: Thresholds, settings: Settings) -> Sureness:
    """Whether one of the judgments was decided confidently (see the module's rule)."""
    return _SURENESS[field](judgments, thresholds, settings)


def unsure_of(
    judgments: Judgments, thresholds: Thresholds, settings: Settings, fields: tuple[Field, ...]
) -> tuple[Field, ...]:
    """Which of ``fields`` the judgments are not sure of (an evaluation's photos, judged with no verdict)."""
    return tuple(f for f in fields if not sureness(f, judgments, thresholds, settings).sure)


def _detected(what: str, present: Answer, boxes: tuple[Box, ...], settings: Settings) -> Sureness:
    if present is Answer.NO:
        return Sureness(False, f"no {what} found (an absence has no detector score)")
    if present is Answer.UNKNOWN:
        return Sureness(False, f"could not tell whether a {what} is there")
    if not boxes:
        return Sureness(False, f"{what} inferred without a detector box (no score)")
    best = max(b.score or 0.0 for b in boxes)
    need = settings.detector_score_min + settings.cascade_detector_margin
    return Sureness(best >= need, f"{what} score {best:.2f} {'≥' if best >= need else '<'} {need:.2f}")


def _person(judgments: Judgments, thresholds: Thresholds, settings: Settings) -> Sureness:
    return _detected("person", judgments.person.present, judgments.person.boxes, settings)


def _vehicle(judgments: Judgments, thresholds: Thresholds, settings: Settings) -> Sureness:
    return _detected("vehicle", judgments.vehicle.present, judgments.vehicle.boxes, settings)


def _plate(judgments: Judgments, thresholds: Thresholds, settings: Settings) -> Sureness:
    reading = judgments.plate
    text = reading.text
    if not text:
        return Sureness(False, "no plate read")
    need = thresholds.plate_confidence_min + settings.cascade_plate_margin
    if reading.confidence is None or reading.confidence < need:
        how = "unknown" if reading.confidence is None else f"{reading.confidence:.2f}"
        return Sureness(False, f"plate {text} read with confidence {how} < {need:.2f}")
    chars = reading.char_confidences
    if chars is None or len(chars) != len(text):
        return Sureness(False, f"plate {text}: no confidence for each character")
    need_char = thresholds.plate_char_confidence_min + settings.cascade_plate_margin
    weakest = min(range(len(chars)), key=chars.__getitem__)
    if chars[weakest] < need_char:
        return Sureness(
            False,
            f"plate {text}: character {weakest + 1} ({text[weakest]}) read with confidence "
            f"{chars[weakest]:.2f} < {need_char:.2f}",
        )
    return Sureness(True, f"plate {text} read at {reading.confidence:.2f}, every character ≥ {need_char:.2f}")


def face_sureness(face: FaceMatch, thresholds: Thresholds, settings: Settings) -> Sureness:
    """A face match decided confidently: its similarity clear of the undecided band by the margin."""
    if face.same_person is Answer.UNKNOWN or face.similarity is None:
        return Sureness(False, "face undecided")
    if face.scene_box is None or face.licence_box is None:
        return Sureness(False, "face decided without both faces' sizes")
    different_below, same_from = thresholds.face_band(min(face.scene_box.height, face.licence_box.height))
    margin = settings.cascade_face_margin
    similarity = face.similarity
    if face.same_person is Answer.YES:
        need = same_from + margin
        sure = similarity >= need
        return Sureness(sure, f"face similarity {similarity:.3f} {'≥' if sure else '<'} {need:.3f} (same person)")
    need = different_below - margin
    sure = similarity < need
    return Sureness(sure, f"face similarity {similarity:.3f} {'<' if sure else '≥'} {need:.3f} (another person)")


def _face(judgments: Judgments, thresholds: Thresholds, settings: Settings) -> Sureness:
    return face_sureness(judgments.face, thresholds, settings)


_SURENESS: dict[Field, Callable[[Judgments, Thresholds, Settings], Sureness]] = {
    "person": _person,
    "vehicle": _vehicle,
    "plate": _plate,
    "face": _face,
}
