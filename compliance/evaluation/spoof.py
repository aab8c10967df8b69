"""Faces shown on a screen or on paper: how many a pipeline flags, and how many live faces it flags.

A spoof manifest is a CSV in the format of ``shared/eval/dev/spoof/manifest.csv``: the columns
``file,label,has_face`` (paths relative to the CSV; ``label`` one of ``live``, ``print``, ``screen``,
``unknown-spoof``). Each photo is judged alone and decided with no licence and no registered plate
(``compliance.inspection.decide``): it is **flagged** when its verdict carries ``FACE_NOT_LIVE``.
Other reasons (no plate, no licence) do not matter here.

The ROC points sweep ``live_min`` over the live scores: per threshold, the share of spoofs (every
label but ``live``) and of live faces whose score is under it. A photo whose face was not judged (no
face, or a face too small) counts in its label's total and is never flagged.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from compliance.evaluation.manifest import ManifestError, has_columns
from compliance.evaluation.metrics import rate
from compliance.inspection import decide
from compliance.judgments import Answer, Judgments
from compliance.photos import PhotoRejected, read_photo_file
from compliance.pipeline import Pipeline
from compliance.settings import Settings
from compliance.verdicts import ReasonCode

SPOOF_COLUMNS = ("file", "label", "has_face")
LIVE = "live"
SPOOF_LABELS = ("print", "screen", "unknown-spoof")
LABELS = (LIVE, *SPOOF_LABELS)
# The live_min values the ROC is drawn at.
ROC_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
Progress = Callable[[str], None]


def is_spoof_manifest(path: Path) -> bool:
    """Told apart from the other manifests by its header."""
    return has_columns(path, SPOOF_COLUMNS)


@dataclass(frozen=True, slots=True)
class SpoofRow:
    path: Path
    file: str
    label: str
    has_face: bool


def read_spoof_manifest(path: Path) -> list[SpoofRow]:
    """Every row, checked; the first bad one stops the reading with a line that names it."""
    rows = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in SPOOF_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"{path}: missing columns {', '.join(missing)}")
            for line, record in enumerate(reader, start=2):
                label = (record["label"] or "").strip()
                if label not in LABELS:
                    raise ManifestError(f"{path}: row {line}: label {label!r} is not one of {', '.join(LABELS)}")
                photo = path.parent / (record["file"] or "").strip()
                if not photo.is_file():
                    raise ManifestError(f"{path}: row {line}: no such file {photo}")
                has_face = (record["has_face"] or "").strip().lower() in ("yes", "1", "true")
                rows.append(SpoofRow(path=photo, file=record["file"].strip(), label=label, has_face=has_face))
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    if not rows:
        raise ManifestError(f"{path}: no rows")
    return rows


class SpoofOutcome(BaseModel):
    file: str
    label: str
    live: str
    live_score: float | None
    flagged: bool


class RocPoint(BaseModel):
    live_min: float
    spoofs_flagged: float | None
    live_flagged: float | None


class SpoofReport(BaseModel):
    """One pipeline's figures; the keys are the agreed ``compliance eval --json`` shape."""

    live_min: float
    flagged_by_label: dict[str, float | None]
    live_flagged: float | None
    no_face: int
    n: dict[str, int]
    roc: list[RocPoint]
    photos: list[SpoofOutcome]


def judge_spoofs(
    pipelines: Mapping[str, Pipeline], rows: Sequence[SpoofRow], settings: Settings, progress: Progress | None = None
) -> dict[str, list[tuple[Judgments, bool]]]:
    """Each pipeline's judgments of every row, with whether its verdict carries FACE_NOT_LIVE."""
    tick = progress or (lambda _label: None)
    judged: dict[str, list[tuple[Judgments, bool]]] = {name: [] for name in pipelines}
    for row in rows:
        tick(row.file)
        try:
            scene = read_photo_file(row.path, **settings.photo_limits)
        except PhotoRejected as exc:
            raise ManifestError(f"{row.path}: {exc}") from None
        for name, pipeline in pipelines.items():
            judgments = pipeline.judge(scene.image, None, settings.thresholds)
            verdict = decide(judgments, thresholds=settings.thresholds, registered_plates=(), licence_given=False)
            judged[name].append((judgments, ReasonCode.FACE_NOT_LIVE in verdict.reasons))
    return judged


def score_spoofs(rows: Sequence[SpoofRow], judged: Sequence[tuple[Judgments, bool]], live_min: float) -> SpoofReport:
    outcomes = [
        SpoofOutcome(
            file=row.file,
            label=row.label,
            live=judgments.face.live.value,
            live_score=judgments.face.live_score,
            flagged=flagged,
        )
        for row, (judgments, flagged) in zip(rows, judged, strict=True)
    ]

    def share(label: str, flagged: Callable[[SpoofOutcome], bool]) -> float | None:
        of = [o for o in outcomes if o.label == label]
        return rate(sum(flagged(o) for o in of), len(of))

    spoofs = [o for o in outcomes if o.label != LIVE]
    lives = [o for o in outcomes if o.label == LIVE]

    def under(o: SpoofOutcome, t: float) -> bool:
        return o.live_score is not None and o.live_score < t

    roc = [
        RocPoint(
            live_min=t,
            spoofs_flagged=rate(sum(under(o, t) for o in spoofs), len(spoofs)),
            live_flagged=rate(sum(under(o, t) for o in lives), len(lives)),
        )
        for t in sorted({*ROC_THRESHOLDS, live_min})
    ]
    return SpoofReport(
        live_min=live_min,
        flagged_by_label={label: share(label, lambda o: o.flagged) for label in SPOOF_LABELS},
        live_flagged=share(LIVE, lambda o: o.flagged),
        no_face=sum(j.face.scene_face is not Answer.YES for j, _ in judged),
        n={label: sum(o.label == label for o in outcomes) for label in LABELS},
        roc=roc,
        photos=outcomes,
    )
