"""Whole submissions judged and scored as a compliance team counts them.

A submissions manifest is a CSV with the columns ``photo,licence,registered_plate,expected,case``
(optional ``job_start,job_end``, ISO times with an offset); paths are relative to the CSV, several
registered plates are separated by ``;``. Each row is decided as a stored submission with those
claims is (``compliance.inspection.decide``: the same checks, settings and policy). Rows are judged
each on its own: no row is a prior photo of another, so the duplicate check sees none.

Scores: automation (genuine rows that PASS), false_fail (genuine rows that FAIL), fraud_caught
(fraud rows that FAIL), false_pass (fraud rows that PASS). REVIEW is neither right nor wrong: it
costs a person's time. A cascade is scored beside each of its pipelines alone, with the share of
rows it escalated to the MLLM.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from compliance.evaluation.manifest import ManifestError, has_columns
from compliance.evaluation.metrics import rate
from compliance.inspection import BOTH, Facts, decide, decide_cascade
from compliance.judgments import ESCALATED, Judgments
from compliance.photos import Photo, PhotoRejected, read_photo_file
from compliance.pipeline import CASCADE, CASCADE_STAGES, Pipeline
from compliance.settings import Settings
from compliance.verdicts import Outcome, Verdict

SUBMISSION_COLUMNS = ("photo", "licence", "registered_plate", "expected", "case")
Progress = Callable[[str], None]


def is_submissions_manifest(path: Path) -> bool:
    """Told apart from a labelled manifest by its header."""
    return has_columns(path, SUBMISSION_COLUMNS)


@dataclass(frozen=True, slots=True)
class SubmissionRow:
    manifest: Path
    line: int  # in the CSV, the header being line 1
    photo: Path
    licence: Path | None
    registered_plates: tuple[str, ...]
    expected: Outcome
    case: str
    job_window: tuple[datetime, datetime] | None

    @property
    def where(self) -> str:
        return f"{self.manifest}: row {self.line} ({self.case}, {self.photo.name})"


def read_submissions(path: Path) -> list[SubmissionRow]:
    """Every row, checked; the first bad one stops the reading with a line that names it."""
    try:
        return _read_submissions(path)
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from None


def _read_submissions(path: Path) -> list[SubmissionRow]:
    base = path.parent
    rows: list[SubmissionRow] = []
    # utf-8-sig: Excel on a Chinese Windows saves a byte-order mark before the header.
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in SUBMISSION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing columns {', '.join(missing)}")
        for line, record in enumerate(reader, start=2):
            where = f"{path}: row {line}"
            expected = (record["expected"] or "").strip().upper()
            if expected not in (Outcome.PASS, Outcome.FAIL):
                raise ManifestError(f"{where}: expected is {record['expected']!r}, not PASS or FAIL")
            photo = base / (record["photo"] or "").strip()
            licence_cell = (record["licence"] or "").strip()
            licence = base / licence_cell if licence_cell else None
            for named in (photo, licence):
                if named is not None and not named.is_file():
                    raise ManifestError(f"{where}: no such file {named}")
            rows.append(
                SubmissionRow(
                    manifest=path,
                    line=line,
                    photo=photo,
                    licence=licence,
                    registered_plates=tuple(
                        p.strip() for p in (record["registered_plate"] or "").split(";") if p.strip()
                    ),
                    expected=Outcome(expected),
                    case=(record["case"] or "").strip() or "unlabelled",
                    job_window=_window(record.get("job_start"), record.get("job_end"), where),
                )
            )
    if not rows:
        raise ManifestError(f"{path}: no rows")
    return rows


def _window(start: str | None, end: str | None, where: str) -> tuple[datetime, datetime] | None:
    start, end = (start or "").strip(), (end or "").strip()
    if not start and not end:
        return None
    try:
        window = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError:
        raise ManifestError(f"{where}: job_start/job_end {start!r}, {end!r} are not ISO times") from None
    if any(t.tzinfo is None for t in window):
        raise ManifestError(f"{where}: job_start/job_end need an offset, e.g. 2026-11-02T08:00:00+08:00")
    if window[1] < window[0]:
        raise ManifestError(f"{where}: the job ends before it starts")
    return window


def judge_submissions(
    pipelines: Mapping[str, Pipeline],
    rows: Sequence[SubmissionRow],
    settings: Settings,
    progress: Progress | None = None,
    *,
    choice: str | None = None,
) -> dict[str, list[Verdict]]:
    """Each pipeline's verdict for every row; with two pipelines, also ``both``'s (the first decides,
    the second is compared field by field, as the service does), or with ``choice`` "cascade" the
    cascade's (the baseline's where it settles the row, else as ``both``). Every pipeline judges every
    row, so that each is also scored alone."""
    tick = progress or (lambda _label: None)
    verdicts: dict[str, list[Verdict]] = {name: [] for name in pipelines}
    combination = CASCADE if choice == CASCADE else BOTH if len(pipelines) == 2 else None
    if combination is not None:
        verdicts[combination] = []
    for row in rows:
        tick(row.where)
        scene = _photo(row.photo, row, settings)
        licence = _photo(row.licence, row, settings) if row.licence is not None else None
        judged: list[Judgments] = []
        for name, pipeline in pipelines.items():
            judgments = pipeline.judge(scene.image, licence.image if licence else None, settings.thresholds)
            judged.append(judgments)
            verdicts[name].append(_decided(row, scene, licence, judgments, settings))
        if combination == CASCADE:
            verdicts[CASCADE].append(
                _cascaded(row, scene, licence, dict(zip(pipelines, judged, strict=True)), settings)
            )
        elif combination == BOTH:
            verdicts[BOTH].append(_decided(row, scene, licence, judged[0], settings, second_opinion=judged[1]))
    return verdicts


def _photo(path: Path, row: SubmissionRow, settings: Settings) -> Photo:
    try:
        return read_photo_file(path, **settings.photo_limits)
    except PhotoRejected as exc:
        raise ManifestError(f"{row.where}: {exc}") from None


def _decided(
    row: SubmissionRow,
    scene: Photo,
    licence: Photo | None,
    judgments: Judgments,
    settings: Settings,
    second_opinion: Judgments | None = None,
) -> Verdict:
    return decide(judgments, second_opinion=second_opinion, **_facts(row, scene, licence, settings))


def _facts(row: SubmissionRow, scene: Photo, licence: Photo | None, settings: Settings) -> Facts:
    """What a manifest row's verdict is decided against, besides the judgments."""
    return Facts(
        thresholds=settings.thresholds,
        registered_plates=row.registered_plates,
        licence_given=licence is not None,
        submitted_at=row.job_window[1] if row.job_window else None,
        capture_time=scene.capture_time,
        exif=scene.exif,
        job_window=row.job_window,
    )


def _cascaded(
    row: SubmissionRow, scene: Photo, licence: Photo | None, judged: Mapping[str, Judgments], settings: Settings
) -> Verdict:
    baseline, mllm = (judged[name] for name in CASCADE_STAGES)
    verdict = decide_cascade(baseline, mllm, settings=settings, **_facts(row, scene, licence, settings))
    assert verdict is not None, "with the MLLM's judgments given a cascade always decides"
    return verdict


class Miss(BaseModel):
    """A genuine row that did not PASS, or a fraud row that did not FAIL, with why."""

    row: int
    case: str
    photo: str
    expected: str
    got: str
    reasons: list[str]
    details: list[str]


class SubmissionReport(BaseModel):
    """One pipeline's whole-submission figures; the keys are the agreed ``--json`` shape."""

    automation: float | None
    false_fail: float | None
    fraud_caught: float | None
    false_pass: float | None
    n: int
    n_expected: dict[str, int]
    by_case: dict[str, dict[str, int]]
    blocking_reasons: dict[str, int]
    misses: list[Miss]
    # A cascade only: the share of rows (and how many) its baseline could not settle, judged by the MLLM too.
    escalated: float | None = None
    n_escalated: int | None = None
    # Why: rows escalated for each judgment the baseline was not sure of, or for its REVIEW.
    escalated_because: dict[str, int] | None = None


def score_submissions(rows: Sequence[SubmissionRow], verdicts: Sequence[Verdict]) -> SubmissionReport:
    genuine = [v.outcome for r, v in zip(rows, verdicts, strict=True) if r.expected is Outcome.PASS]
    fraud = [v.outcome for r, v in zip(rows, verdicts, strict=True) if r.expected is Outcome.FAIL]
    by_case: dict[str, dict[str, int]] = {}
    blocking: Counter[str] = Counter()
    misses: list[Miss] = []
    for row, verdict in zip(rows, verdicts, strict=True):
        cells = by_case.setdefault(row.case, {o.value: 0 for o in (Outcome.PASS, Outcome.REVIEW, Outcome.FAIL)})
        cells[verdict.outcome.value] += 1
        against = [r for r in verdict.results if r.outcome is not Outcome.PASS]
        if row.expected is Outcome.PASS and verdict.outcome is not Outcome.PASS:
            blocking.update({str(r.reason) for r in against if r.reason is not None})
        if verdict.outcome is not row.expected:
            misses.append(
                Miss(
                    row=row.line,
                    case=row.case,
                    photo=row.photo.name,
                    expected=row.expected.value,
                    got=verdict.outcome.value,
                    reasons=[str(r.reason) for r in against if r.reason is not None],
                    details=[f"{r.check}: {r.detail}" for r in against],
                )
            )
    steps = [v.judgments.provenance.cascade for v in verdicts]
    escalations = [step for step in steps if step is not None and step.path == ESCALATED]
    escalated = len(escalations)
    because = Counter(why for step in escalations for why in step.unsure or ("the baseline's REVIEW",))
    cascaded = all(step is not None for step in steps)
    return SubmissionReport(
        escalated=rate(escalated, len(steps)) if cascaded else None,
        n_escalated=escalated if cascaded else None,
        escalated_because=dict(because.most_common()) if cascaded else None,
        automation=rate(genuine.count(Outcome.PASS), len(genuine)),
        false_fail=rate(genuine.count(Outcome.FAIL), len(genuine)),
        fraud_caught=rate(fraud.count(Outcome.FAIL), len(fraud)),
        false_pass=rate(fraud.count(Outcome.PASS), len(fraud)),
        n=len(rows),
        n_expected={"PASS": len(genuine), "FAIL": len(fraud)},
        by_case=by_case,
        blocking_reasons=dict(blocking.most_common()),
        misses=misses,
    )
