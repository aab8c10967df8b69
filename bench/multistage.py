"""Speed of the whole multistage pipeline on the dev photos: median and p90 per photo and per stage.

    .venv/bin/python bench/multistage.py [--manifest ../shared/eval/dev/manifest.csv] [--repeat 3]

Each photo is judged ``--repeat`` times after one warm-up pass (models load lazily on first use);
every timing goes into the distribution. Prints a rich table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from compliance.evaluation.manifest import read_manifest
from compliance.evaluation.metrics import percentile
from compliance.photos import read_photo_file
from compliance.pipelines import get_pipeline
from compliance.settings import get_settings

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    default = Path(os.environ.get("COMPLIANCE_EVAL_DIR", REPO.parent / "shared/eval/dev")) / "manifest.csv"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--licence", type=Path, default=None, help="a licence photo to match every scene against")
    args = parser.parse_args()

    settings = get_settings()
    rows = read_manifest(args.manifest)
    photos = [read_photo_file(r.path, **settings.photo_limits) for r in rows]
    licence = read_photo_file(args.licence, **settings.photo_limits).image if args.licence else None
    pipeline = get_pipeline("multistage", settings)
    start = time.perf_counter()
    pipeline.judge(photos[0].image, licence)
    load_s = time.perf_counter() - start

    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for photo in photos:
            t0 = time.perf_counter()
            judgments = pipeline.judge(photo.image, licence, settings.thresholds)
            totals.append((time.perf_counter() - t0) * 1000.0)
            for stage, ms in judgments.provenance.latency_ms.items():
                stages.setdefault(stage, []).append(ms)

    table = Table(title=f"multistage pipeline, {len(photos)} dev photos x {args.repeat}, {os.cpu_count()} CPU cores")
    for col in ("stage", "median ms", "p90 ms", "mean ms", "max ms"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for name, values in [("whole photo", totals), *sorted(stages.items())]:
        table.add_row(
            name,
            f"{percentile(values, 50):.1f}",
            f"{percentile(values, 90):.1f}",
            f"{statistics.fmean(values):.1f}",
            f"{max(values):.1f}",
        )
    console = Console()
    console.print(table)
    console.print(f"first call (model loading included): {load_s:.2f} s; licence photo: {args.licence or 'none'}")


if __name__ == "__main__":
    main()
