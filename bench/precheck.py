"""The precheck (POST /v1/prechecks) against the full multistage pipeline, in one run: median latency
per photo of each and their ratio, and how often the precheck's findings agree with the pipeline's
judgments of the same things, per finding.

    PYTHONPATH=. .venv/bin/python bench/precheck.py [--manifest ../shared/eval/dev/manifest.csv] [--repeat 3]

Photos: the dev manifest's kinds ``scene`` and ``plate`` (the issue's measure), and, apart, each dev
portrait composed beside a dev vehicle photo (a driver by a vehicle, as ``compliance compose`` makes
them): the dev photos seldom show a person, and a driver's photo always does. Both are timed on the
photo as decoded (decoding is the same for both and not counted), after one warm-up pass, the two
alternating photo by photo so that the machine's load falls on both alike. "Agree" means the
precheck raises a problem exactly where the pipeline's judgments of the same photo imply it
(``compliance.prechecks.findings_of``), under the same thresholds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from compliance.evaluation.manifest import read_manifest
from compliance.evaluation.metrics import percentile
from compliance.photos import read_photo_file
from compliance.pipelines import get_pipeline, get_prechecker
from compliance.prechecks import PrecheckCode, findings_of, problems
from compliance.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.composites import beside  # noqa: E402 - a helper of the tests, as the other benches use

FINDINGS = [c for c in PrecheckCode if c is not PrecheckCode.NO_POSITION]  # no dev photo's site has a position


def _measure(images: list[np.ndarray], repeat: int) -> dict[str, object]:
    settings = get_settings()
    thresholds = settings.thresholds
    pipeline = get_pipeline("multistage", settings)
    prechecker = get_prechecker(settings)
    for image in images:  # warm-up: models load, caches fill
        pipeline.judge(image, None, thresholds)
        prechecker.check(image)
    full_ms: list[float] = []
    pre_ms: list[float] = []
    agree = dict.fromkeys(FINDINGS, 0)
    raised = {code: [0, 0] for code in FINDINGS}  # by the pipeline's judgments, by the precheck
    disagreements: list[str] = []
    for round_ in range(repeat):
        for i, image in enumerate(images):
            # Alternate which runs first, so that neither always finds the caches warm.
            order = ("full", "pre") if (i + round_) % 2 == 0 else ("pre", "full")
            for which in order:
                t0 = time.perf_counter()
                if which == "full":
                    judged = pipeline.judge(image, None, thresholds)
                    full_ms.append((time.perf_counter() - t0) * 1000.0)
                else:
                    found = prechecker.check(image)
                    pre_ms.append((time.perf_counter() - t0) * 1000.0)
            if round_ == 0:
                expected = set(problems(findings_of(judged), thresholds))
                got = set(problems(found, thresholds))
                for code in FINDINGS:
                    agree[code] += (code in expected) == (code in got)
                    raised[code][0] += code in expected
                    raised[code][1] += code in got
                if expected != got:
                    disagreements.append(f"#{i}: pipeline {sorted(expected)} precheck {sorted(got)}")
    return {
        "n": len(images),
        "full": statistics.median(full_ms),
        "pre": statistics.median(pre_ms),
        "full_p90": percentile(full_ms, 90),
        "pre_p90": percentile(pre_ms, 90),
        "agree": agree,
        "raised": raised,
        "disagreements": disagreements,
    }


def main() -> None:
    default = Path(os.environ.get("COMPLIANCE_EVAL_DIR", REPO.parent / "shared/eval/dev")) / "manifest.csv"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    settings = get_settings()
    rows = read_manifest(args.manifest)
    limits = {**settings.photo_limits, "max_bytes": 1 << 26}
    dev = [read_photo_file(r.path, **limits).image for r in rows if r.kind in ("scene", "plate")]
    vehicles = [read_photo_file(r.path, **limits).image for r in rows if r.kind == "plate"]
    portraits = [read_photo_file(r.path, **limits).image for r in rows if r.kind == "face"]
    composed = [beside(p, vehicles[i % len(vehicles)]) for i, p in enumerate(portraits)]

    console = Console()
    sets = {
        "dev scene+plate": _measure(dev, args.repeat),
        "driver by vehicle (composed)": _measure(composed, args.repeat),
    }
    speed = Table(title=f"precheck vs full multistage pipeline, x{args.repeat}, {os.cpu_count()} CPU cores")
    for col in ("photos", "n", "full median ms", "precheck median ms", "ratio", "full p90", "precheck p90"):
        speed.add_column(col, justify="left" if col == "photos" else "right")
    for name, r in sets.items():
        speed.add_row(
            name,
            str(r["n"]),
            f"{r['full']:.1f}",
            f"{r['pre']:.1f}",
            f"{r['pre'] / r['full']:.2f}",  # type: ignore[operator]
            f"{r['full_p90']:.1f}",
            f"{r['pre_p90']:.1f}",
        )
    console.print(speed)
    for name, r in sets.items():
        table = Table(title=f"agreement with the pipeline's judgments: {name} ({r['n']} photos)")
        for col in ("finding", "agree", "raised by pipeline", "raised by precheck"):
            table.add_column(col, justify="left" if col == "finding" else "right")
        n = r["n"]
        for code in FINDINGS:
            agreed = r["agree"][code]  # type: ignore[index]
            by_full, by_pre = r["raised"][code]  # type: ignore[index]
            table.add_row(code.value, f"{agreed / n:.1%} ({agreed}/{n})", str(by_full), str(by_pre))  # type: ignore[operator]
        console.print(table)
        for line in r["disagreements"]:  # type: ignore[attr-defined]
            console.print(f"  {name} {line}")


if __name__ == "__main__":
    main()
