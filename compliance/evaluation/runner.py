"""Run pipelines over a labelled manifest and score every judgment the product makes.

A cascade is scored from its two pipelines' answers (``cascaded``): a labelled photo has no claim to
decide a verdict against, so a photo reaches the MLLM when the baseline is unsure of any judgment a
PASS would rest on that a photo alone carries (person, vehicle, plate; ``compliance.cascade``), and a
face pair when it is unsure of the match. What reached the MLLM is scored by the MLLM's values, as
"both" decides from them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from compliance import plates
from compliance.agreement import Field
from compliance.cascade import face_sureness, unsure_of
from compliance.checks.base import CheckContext
from compliance.checks.liveness import not_live
from compliance.checks.plate import PlateMatchesRegistered
from compliance.evaluation.licence import LicenceLook, licence_image
from compliance.evaluation.manifest import FacePair, ManifestRow
from compliance.evaluation.metrics import confusion, grouped_rate, percentile, rate, tar_at_far
from compliance.judgments import Answer, FaceMatch, Judgments
from compliance.photos import Photo, read_photo_file
from compliance.pipeline import Pipeline
from compliance.settings import Settings
from compliance.verdicts import Outcome

Progress = Callable[[str], None]


class PlateOutcome(BaseModel):
    file: str
    expected: str
    read: str | None
    expected_color: str | None
    read_color: str
    ok: bool


class FaceFigures(BaseModel):
    """Face decisions at the operating threshold; undecided counted on same and different pairs apart."""

    tar: float | None
    far: float | None
    unknown_same: float | None
    unknown_diff: float | None
    tar_at_far_1pct: float | None


class PipelineReport(BaseModel):
    """One pipeline's scores; the keys are the agreed ``compliance eval --json`` shape."""

    plate_exact: float | None
    plate_exact_by_color: dict[str, float]
    plate_exact_by_province: dict[str, float]
    plate_color_acc: float | None
    plate_check_acc: float | None
    plate_check_confusion: dict[str, dict[str, int]]
    face_tar: float | None
    face_far: float | None
    face_unknown_rate: float | None
    face_unknown_same: float | None
    face_unknown_diff: float | None
    face_tar_at_far_1pct: float | None
    face_tar_at_far_0_1pct: float | None
    face_threshold: float | None
    person_presence_acc: float | None
    vehicle_presence_acc: float | None
    median_ms: float | None
    p90_ms: float | None
    median_stage_ms: dict[str, float]
    # The same face pairs with the second photo made a licence photo, by its look (e.g. "120 px, grey, JPEG q35").
    licence_faces: dict[str, FaceFigures]
    # Live faces (every photo's face is a real one) by the rows' kind: faces found, judged for liveness
    # (not too small), and flagged as not live (FACE_NOT_LIVE at the thresholds' live_min).
    live_faces: dict[str, dict[str, int]]
    n: dict[str, int]
    plates: list[PlateOutcome]

    def as_json(self) -> dict[str, object]:
        data = self.model_dump(mode="json")
        # The agreed key has a dot in it, which a Python field name cannot.
        data["face_tar_at_far_0.1pct"] = data.pop("face_tar_at_far_0_1pct")
        return data


class FieldAgreement(BaseModel):
    compared: int
    agree: int
    rate: float | None
    # Of the agreements on labelled items, the share that matches the label: agreeing on a wrong
    # answer is what "both" cannot catch.
    agree_correct: float | None


class Agreement(BaseModel):
    """How often two pipelines give the same answer, field by field: the fields whose disagreement
    sends a photo to REVIEW under ``both``. Labels are not needed to agree; they only score it."""

    pipelines: tuple[str, str]
    fields: dict[str, FieldAgreement]
    photos_all_agree: float | None  # person, vehicle and plate all the same

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class CascadeShare(BaseModel):
    """How much of the set a cascade sent on to the MLLM."""

    photos: int
    photos_escalated: int
    escalated: float | None  # the share of photos that reached the MLLM
    # Photos escalated for each judgment the baseline was unsure of (a photo may count under several).
    unsure: dict[str, int]
    face_pairs: int
    face_pairs_escalated: int
    face_escalated: float | None

    def as_json(self) -> dict[str, object]:
        return self.model_dump(mode="json")


# What a photo alone carries of what a PASS rests on; the face is judged on the face pairs.
PHOTO_FIELDS: tuple[Field, ...] = ("person", "vehicle", "plate")


@dataclass
class Collected:
    """What one pipeline answered for every manifest row (by file) and face pair (in order)."""

    judgments: dict[str, Judgments] = field(default_factory=dict)
    ms: list[float] = field(default_factory=list)
    faces: list[tuple[bool, FaceMatch]] = field(default_factory=list)
    licence_faces: dict[str, list[tuple[bool, FaceMatch]]] = field(default_factory=dict)


def evaluate(
    pipeline: Pipeline,
    rows: Sequence[ManifestRow],
    pairs: Sequence[FacePair],
    settings: Settings,
    progress: Progress | None = None,
) -> PipelineReport:
    return score(rows, collect(pipeline, rows, pairs, settings, progress), settings)


def collect(
    pipeline: Pipeline,
    rows: Sequence[ManifestRow],
    pairs: Sequence[FacePair],
    settings: Settings,
    progress: Progress | None = None,
    licence_looks: Sequence[LicenceLook] = (),
) -> Collected:
    tick = progress or (lambda _label: None)
    photos: dict[Path, Photo] = {}

    def photo(path: Path) -> Photo:
        if path not in photos:
            photos[path] = read_photo_file(path, **settings.photo_limits)
        return photos[path]

    got = Collected()
    for row in rows:
        tick(row.file)
        image = photo(row.path).image
        start = time.perf_counter()
        got.judgments[row.file] = pipeline.judge(image, None, settings.thresholds)
        got.ms.append((time.perf_counter() - start) * 1000.0)
    for pair in pairs:
        tick(f"{pair.a.name} ~ {pair.b.name}")
        got.faces.append(
            (pair.same, pipeline.compare_faces(photo(pair.a).image, photo(pair.b).image, settings.thresholds))
        )
    for look in licence_looks:
        licences: dict[Path, np.ndarray] = {}
        matches = got.licence_faces.setdefault(look.label, [])
        for pair in pairs:
            tick(f"{pair.a.name} ~ {pair.b.name} ({look.label})")
            if pair.b not in licences:
                licences[pair.b] = licence_image(photo(pair.b).image, look)
            matches.append(
                (pair.same, pipeline.compare_faces(photo(pair.a).image, licences[pair.b], settings.thresholds))
            )
    return got


def cascaded(
    rows: Sequence[ManifestRow], baseline: Collected, mllm: Collected, settings: Settings
) -> tuple[Collected, CascadeShare]:
    """A cascade's answers from its two pipelines': the baseline's where it is sure, else the MLLM's,
    which then cost the baseline's time and its own."""
    got = Collected()
    unsure: dict[str, int] = {f: 0 for f in PHOTO_FIELDS}
    escalated = 0
    for row, ms_first, ms_second in zip(rows, baseline.ms, mllm.ms, strict=True):
        first = baseline.judgments[row.file]
        doubts = unsure_of(first, settings.thresholds, settings, PHOTO_FIELDS)
        for doubt in doubts:
            unsure[doubt] += 1
        escalated += bool(doubts)
        got.judgments[row.file] = mllm.judgments[row.file] if doubts else first
        got.ms.append(ms_first + ms_second if doubts else ms_first)

    def matches(
        firsts: list[tuple[bool, FaceMatch]], seconds: list[tuple[bool, FaceMatch]]
    ) -> list[tuple[bool, FaceMatch]]:
        return [
            (same, a if face_sureness(a, settings.thresholds, settings).sure else b)
            for (same, a), (_, b) in zip(firsts, seconds, strict=True)
        ]

    got.faces = matches(baseline.faces, mllm.faces)
    got.licence_faces = {look: matches(m, mllm.licence_faces[look]) for look, m in baseline.licence_faces.items()}
    pairs_escalated = sum(not face_sureness(m, settings.thresholds, settings).sure for _, m in baseline.faces)
    return got, CascadeShare(
        photos=len(rows),
        photos_escalated=escalated,
        escalated=rate(escalated, len(rows)),
        unsure=unsure,
        face_pairs=len(baseline.faces),
        face_pairs_escalated=pairs_escalated,
        face_escalated=rate(pairs_escalated, len(baseline.faces)),
    )


def agreement(rows: Sequence[ManifestRow], first: tuple[str, Collected], second: tuple[str, Collected]) -> Agreement:
    """Field-by-field agreement of two pipelines over the same rows and face pairs."""
    (a_name, a), (b_name, b) = first, second
    person = [
        (a.judgments[r.file].person.present, b.judgments[r.file].person.present, Answer.of(r.person_present))
        for r in rows
    ]
    vehicle = [
        (a.judgments[r.file].vehicle.present, b.judgments[r.file].vehicle.present, Answer.of(r.vehicle_present))
        for r in rows
    ]
    plate = [
        (
            a.judgments[r.file].plate.text,
            b.judgments[r.file].plate.text,
            plates.normalise(r.plate_text) if r.plate_text else None,
        )
        for r in rows
    ]
    face = [
        (ma.same_person, mb.same_person, Answer.of(same)) for (same, ma), (_, mb) in zip(a.faces, b.faces, strict=True)
    ]
    every = [p[0] == p[1] and v[0] == v[1] and t[0] == t[1] for p, v, t in zip(person, vehicle, plate, strict=True)]
    return Agreement(
        pipelines=(a_name, b_name),
        fields={
            "person": _agreement(person, labelled=lambda x: x is not Answer.UNKNOWN),
            "vehicle": _agreement(vehicle, labelled=lambda x: x is not Answer.UNKNOWN),
            "plate": _agreement(plate, labelled=lambda x: x is not None),
            "face": _agreement(face, labelled=lambda x: x is not Answer.UNKNOWN),
        },
        photos_all_agree=rate(sum(every), len(every)),
    )


def _agreement(triples: Sequence[tuple[object, object, object]], labelled: Callable[[object], bool]) -> FieldAgreement:
    agreed = [(x, truth) for x, y, truth in triples if x == y]
    scored = [x == truth for x, truth in agreed if labelled(truth)]
    return FieldAgreement(
        compared=len(triples),
        agree=len(agreed),
        rate=rate(len(agreed), len(triples)),
        agree_correct=rate(sum(scored), len(scored)),
    )


def score(rows: Sequence[ManifestRow], got: Collected, settings: Settings) -> PipelineReport:
    plate_rows = [r for r in rows if r.plate_text]
    outcomes = []
    for row in plate_rows:
        reading = got.judgments[row.file].plate
        outcomes.append(
            PlateOutcome(
                file=row.file,
                expected=row.plate_text or "",
                read=reading.text,
                expected_color=row.plate_color,
                read_color=reading.color.value,
                ok=reading.text == plates.normalise(row.plate_text or ""),
            )
        )
    colored = [o for o in outcomes if o.expected_color]

    person_rows = [r for r in rows if r.person_present is not None]
    vehicle_rows = [r for r in rows if r.vehicle_present is not None]
    person_hits = sum(got.judgments[r.file].person.present is Answer.of(r.person_present) for r in person_rows)
    vehicle_hits = sum(got.judgments[r.file].vehicle.present is Answer.of(r.vehicle_present) for r in vehicle_rows)

    genuine = [m for same, m in got.faces if same]
    impostor = [m for same, m in got.faces if not same]
    portrait = _face_figures(got.faces)
    stage_names = sorted({s for j in got.judgments.values() for s in j.provenance.latency_ms})
    stage_ms = {
        s: round(
            percentile([j.provenance.latency_ms[s] for j in got.judgments.values() if s in j.provenance.latency_ms], 50)
            or 0.0,
            2,
        )
        for s in stage_names
    }
    check_pairs = _plate_check_cases(plate_rows, got, settings)
    thresholds = {m.threshold for _, m in got.faces if m.threshold is not None}
    return PipelineReport(
        plate_exact=rate(sum(o.ok for o in outcomes), len(outcomes)),
        plate_exact_by_color=grouped_rate((o.expected_color or "unknown", o.ok) for o in outcomes),
        plate_exact_by_province=grouped_rate((o.expected[0], o.ok) for o in outcomes),
        plate_color_acc=rate(sum(o.read_color == o.expected_color for o in colored), len(colored)),
        plate_check_acc=rate(sum(e == g for e, g in check_pairs), len(check_pairs)),
        plate_check_confusion=confusion(check_pairs),
        face_tar=portrait.tar,
        face_far=portrait.far,
        face_unknown_rate=rate(sum(m.same_person is Answer.UNKNOWN for _, m in got.faces), len(got.faces)),
        face_unknown_same=portrait.unknown_same,
        face_unknown_diff=portrait.unknown_diff,
        face_tar_at_far_1pct=portrait.tar_at_far_1pct,
        face_tar_at_far_0_1pct=_tar_at(genuine, impostor, 0.001),
        face_threshold=thresholds.pop() if len(thresholds) == 1 else None,
        person_presence_acc=rate(person_hits, len(person_rows)),
        vehicle_presence_acc=rate(vehicle_hits, len(vehicle_rows)),
        median_ms=_round(percentile(got.ms, 50)),
        p90_ms=_round(percentile(got.ms, 90)),
        median_stage_ms=stage_ms,
        licence_faces={look: _face_figures(matches) for look, matches in got.licence_faces.items()},
        live_faces=_live_faces(rows, got, settings),
        n={
            "photos": len(rows),
            "plates": len(outcomes),
            "person": len(person_rows),
            "vehicle": len(vehicle_rows),
            "face_pairs_same": len(genuine),
            "face_pairs_diff": len(impostor),
            "plate_check_cases": len(check_pairs),
        },
        plates=outcomes,
    )


def _live_faces(rows: Sequence[ManifestRow], got: Collected, settings: Settings) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        face = got.judgments[row.file].face
        if face.scene_face is not Answer.YES:
            continue
        kind = counts.setdefault(row.kind, {"faces": 0, "judged": 0, "flagged": 0})
        kind["faces"] += 1
        kind["judged"] += face.live_score is not None
        kind["flagged"] += not_live(face, settings.thresholds)
    return counts


def _face_figures(faces: Sequence[tuple[bool, FaceMatch]]) -> FaceFigures:
    genuine = [m for same, m in faces if same]
    impostor = [m for same, m in faces if not same]
    return FaceFigures(
        tar=rate(sum(m.same_person is Answer.YES for m in genuine), len(genuine)),
        far=rate(sum(m.same_person is Answer.YES for m in impostor), len(impostor)),
        unknown_same=rate(sum(m.same_person is Answer.UNKNOWN for m in genuine), len(genuine)),
        unknown_diff=rate(sum(m.same_person is Answer.UNKNOWN for m in impostor), len(impostor)),
        tar_at_far_1pct=_tar_at(genuine, impostor, 0.01),
    )


def _tar_at(genuine: list[FaceMatch], impostor: list[FaceMatch], far: float) -> float | None:
    if any(m.similarity is not None for m in genuine + impostor):
        return tar_at_far([m.similarity for m in genuine], [m.similarity for m in impostor], far)
    return None  # a pipeline that gives no similarity (a yes/no model) has no curve


def _plate_check_cases(
    plate_rows: Sequence[ManifestRow], got: Collected, settings: Settings
) -> list[tuple[Outcome, Outcome]]:
    """Each labelled plate checked against its true plate (PASS), a look-alike (REVIEW) and another plate (FAIL)."""
    check = PlateMatchesRegistered()
    truths = [plates.normalise(r.plate_text or "") for r in plate_rows]
    cases: list[tuple[Outcome, Outcome]] = []
    now = datetime.now(timezone.utc)
    for i, row in enumerate(plate_rows):
        truth = truths[i]
        registered: list[tuple[str, Outcome]] = [(truth, Outcome.PASS)]
        variants = plates.confusable_variants(truth)
        if variants:
            registered.append((variants[0], Outcome.REVIEW))
        unrelated = next(
            (t for t in truths[i + 1 :] + truths[:i] if plates.compare(t, truth).match is plates.PlateMatch.MISMATCH),
            None,
        )
        if unrelated:
            registered.append((unrelated, Outcome.FAIL))
        for plate, expected in registered:
            ctx = CheckContext(
                judgments=got.judgments[row.file],
                thresholds=settings.thresholds,
                registered_plates=(plate,),
                submitted_at=now,
            )
            result = check.run(ctx)
            cases.append((expected, result.outcome))
    return cases


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
