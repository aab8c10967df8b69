"""Plate stage accuracy and speed on the dev photos that carry a legible plate.

    PYTHONPATH=. .venv/bin/python bench/plate_stage.py [--repeat 3] [--recogniser both|ppocr|clp]
                                                      [--threads 2] [--only NAME] [--crops DIR]

Runs ``PlateStage.default()`` over every manifest row of kind ``plate`` or ``plate_crop`` (and any
other row with a plate_text), skipping illegible labels (``?``). Prints one line per photo
(expected, read, colours, locators tried, milliseconds, ok) and the summary: exact-match rate
overall, by colour and by province character, colour accuracy, and median / p90 milliseconds
(each photo's time is the median of ``--repeat`` runs, after one warm-up pass). ``--crops DIR``
writes the rectified crop of every failure there, to look at.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from compliance import plates
from compliance.evaluation.manifest import ManifestRow, read_manifest
from compliance.judgments import PlateReading
from compliance.multistage.plate_locators import DEFAULT_THREADS, rectify
from compliance.multistage.plate_reader import OcrPlateReader, clp_recogniser, ppocr_recogniser
from compliance.multistage.plate_stage import PlateStage, StageTrace


def eval_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", default))


@dataclass(frozen=True)
class Outcome:
    row: ManifestRow
    trace: StageTrace
    ms: float

    @property
    def reading(self) -> PlateReading:
        return self.trace.reading

    @property
    def ok(self) -> bool:
        return self.row.plate_text is not None and self.reading.text == plates.normalise(self.row.plate_text)

    @property
    def color_ok(self) -> bool:
        return self.reading.color.value == self.row.plate_color


def plate_rows(folder: Path) -> list[ManifestRow]:
    """Every row with a legible plate label: kinds plate and plate_crop, and scenes that carry one
    (the manifest reader leaves ``plate_text`` None where the label holds a ``?``)."""
    return [r for r in read_manifest(folder / "manifest.csv") if r.plate_text]


def build_stage(recogniser: str, threads: int) -> PlateStage:
    stage = PlateStage.default(threads)
    if recogniser == "both":
        return stage
    assert isinstance(stage.reader, OcrPlateReader)
    reader = stage.reader
    primary = ppocr_recogniser(threads) if recogniser == "ppocr" else clp_recogniser(threads)
    stage.reader = OcrPlateReader(
        recogniser=primary, second_opinion=None, row_finder=reader.row_finder, colors=reader.colors
    )
    return stage


def run(stage: PlateStage, rows: list[ManifestRow], repeat: int) -> list[Outcome]:
    outcomes = []
    for row in rows:
        image = cv2.imread(str(row.path))
        stage.trace(image)  # warm-up: lazy loads and first-run allocations
        times, trace = [], None
        for _ in range(repeat):
            start = time.perf_counter()
            trace = stage.trace(image)
            times.append((time.perf_counter() - start) * 1000)
        assert trace is not None
        outcomes.append(Outcome(row, trace, statistics.median(times)))
    return outcomes


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / total:.1f}%" if total else "-"


def report(outcomes: list[Outcome], console: Console) -> None:
    table = Table(title="plate stage, per photo")
    for column in ("file", "expected", "read", "rows", "conf", "colour exp/read", "locators", "ms", "ok"):
        table.add_column(column)
    for o in outcomes:
        r = o.reading
        steps = " ".join(f"{s.locator}:{s.candidates}" for s in o.trace.steps)
        table.add_row(
            o.row.file,
            o.row.plate_text,
            r.text or "-",
            str(r.rows or "-"),
            f"{r.confidence:.2f}" if r.confidence is not None else "-",
            f"{o.row.plate_color}/{r.color.value}",
            steps,
            f"{o.ms:.0f}",
            "[green]ok[/]" if o.ok else "[red]FAIL[/]",
        )
    console.print(table)

    summary = Table(title="summary")
    summary.add_column("group")
    summary.add_column("exact text")
    summary.add_column("colour")
    summary.add_row(
        "all", rate(sum(o.ok for o in outcomes), len(outcomes)), rate(sum(o.color_ok for o in outcomes), len(outcomes))
    )
    for label, key in (
        ("colour", lambda o: o.row.plate_color),
        ("province", lambda o: o.row.province),
        ("kind", lambda o: o.row.kind),
    ):
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for o in outcomes:
            groups[f"{label}={key(o)}"].append(o)
        for name, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            summary.add_row(
                name,
                rate(sum(o.ok for o in members), len(members)),
                rate(sum(o.color_ok for o in members), len(members)),
            )
    console.print(summary)
    ms = np.array([o.ms for o in outcomes])
    wrong_color = sum(1 for o in outcomes if o.reading.color.value not in ("unknown", o.row.plate_color))
    console.print(
        f"time per photo: median {np.median(ms):.0f} ms, p90 {np.percentile(ms, 90):.0f} ms, max {ms.max():.0f} ms; "
        f"colour wrong (not unknown): {wrong_color}"
    )


def save_failures(outcomes: list[Outcome], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for o in outcomes:
        if o.ok or o.reading.corners is None:
            continue
        image = cv2.imread(str(o.row.path))
        crop = rectify(image, np.array(o.reading.corners, dtype=np.float32), 64)
        cv2.imwrite(str(folder / (Path(o.row.file).stem + ".png")), crop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--recogniser", choices=("both", "ppocr", "clp"), default="both")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="onnxruntime intra-op threads")
    parser.add_argument("--only", help="substring of the file names to run")
    parser.add_argument("--crops", type=Path, help="write failures' rectified crops here")
    args = parser.parse_args()

    folder = eval_dir()
    if not (folder / "manifest.csv").is_file():
        raise SystemExit(f"no eval photos at {folder} (set COMPLIANCE_EVAL_DIR)")
    rows = [r for r in plate_rows(folder) if not args.only or args.only in r.file]
    stage = build_stage(args.recogniser, args.threads)
    console = Console(width=200)
    console.print(f"models: {stage.models}")
    outcomes = run(stage, rows, args.repeat)
    report(outcomes, console)
    if args.crops:
        save_failures(outcomes, args.crops)


if __name__ == "__main__":
    main()
