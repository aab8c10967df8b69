"""Face matcher accuracy and speed on the dev face pairs.

    PYTHONPATH=. .venv/bin/python bench/faces.py [--repeat 3] [--licence-px 180 120 90] [--face-px 40 48]

Embeds every face once (timed ``--repeat`` times; the median is printed) and prints, for the
operating threshold in ``Thresholds``: TAR and FAR, the decisions with the uncertain band (same
and different pairs counted apart), the TAR at FAR 1% and 0.1%, and the similarity distributions.
``--licence-px`` repeats the pairs with the second photo made into a licence photo that many
pixels tall as the product meets it (``licence_jpeg``: head-and-shoulders, grey, JPEG q35 unless
``--colour`` / ``--jpeg-quality``); ``--face-px`` with the second photo merely shrunk until its
face is that many pixels tall. A summary table per size ends the output.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from compliance.evaluation.licence import LicenceLook, licence_image
from compliance.judgments import Answer
from compliance.multistage.faces import FaceEmbedding, SFaceMatcher
from compliance.settings import Thresholds


@dataclass(frozen=True)
class Pair:
    file_a: str
    file_b: str
    same: bool


def eval_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", default))


def read_pairs(folder: Path) -> list[Pair]:
    with (folder / "face_pairs.csv").open(encoding="utf-8") as handle:
        return [Pair(row["file_a"], row["file_b"], row["same"] == "1") for row in csv.DictReader(handle)]


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose FAR is at most ``far``."""
    allowed = int(np.floor(far * len(impostor)))
    ranked = np.sort(impostor)[::-1]
    # Just above the first impostor score that must be rejected.
    threshold = float(np.nextafter(ranked[allowed], np.inf)) if allowed < len(ranked) else -1.0
    return float(np.mean(genuine >= threshold)), threshold


def distribution(name: str, scores: np.ndarray) -> str:
    p5, p50, p95 = np.percentile(scores, [5, 50, 95])
    return (
        f"{name:<9} n={len(scores):<4} min={scores.min():.3f} p5={p5:.3f} median={p50:.3f} "
        f"p95={p95:.3f} max={scores.max():.3f}"
    )


def shrunk(image: np.ndarray, embedding: FaceEmbedding, face_px: int) -> np.ndarray:
    scale = face_px / embedding.box.height
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Row:
    title: str
    tar: float
    far: float
    same_undecided: float
    different_undecided: float
    same_no: int
    missing: int


def report(
    title: str,
    matcher: SFaceMatcher,
    pairs: list[Pair],
    first: dict[str, FaceEmbedding | None],
    second: dict[str, FaceEmbedding | None],
    thresholds: Thresholds,
) -> Row:
    print(f"\n## {title}")
    genuine, impostor, missing = [], [], 0
    decisions: dict[bool, Counter[Answer]] = {True: Counter(), False: Counter()}
    for pair in pairs:
        a, b = first[pair.file_a], second[pair.file_b]
        if a is None or b is None:
            # No face found is no decision: a person looks at it.
            missing += 1
            decisions[pair.same][Answer.UNKNOWN] += 1
            continue
        result = matcher.match_embeddings(a, b, thresholds)
        assert result.similarity is not None
        (genuine if pair.same else impostor).append(result.similarity)
        decisions[pair.same][result.same_person] += 1
    g, i = np.array(genuine), np.array(impostor)
    at = thresholds.face_same_min
    print(f"pairs scored: {len(g)} same, {len(i)} different; {missing} with a face not found")
    print(
        f"operating threshold {at:.3f}: TAR {np.mean(g >= at):.1%} ({int(np.sum(g >= at))}/{len(g)})  "
        f"FAR {np.mean(i >= at):.2%} ({int(np.sum(i >= at))}/{len(i)})"
    )
    for same, label in ((True, "same"), (False, "different")):
        counts = decisions[same]
        print(
            f"  decisions, {label:<9}: yes {counts[Answer.YES]}  unknown {counts[Answer.UNKNOWN]}  "
            f"no {counts[Answer.NO]}  (uncertain band {thresholds.face_uncertain_min:.3f}-{at:.3f})"
        )
    for far in (0.01, 0.001):
        tar, threshold = tar_at_far(g, i, far)
        print(
            f"TAR at FAR <= {far:.1%}: {tar:.1%} (threshold {threshold:.3f}; "
            f"{len(i)} impostor pairs resolve FAR to {1 / len(i):.2%})"
        )
    print(distribution("same", g))
    print(distribution("different", i))
    print(f"margin (lowest same - highest different): {g.min() - i.max():+.3f}")
    same, different = decisions[True], decisions[False]
    return Row(
        title=title,
        tar=same[Answer.YES] / max(1, same.total()),
        far=different[Answer.YES] / max(1, different.total()),
        same_undecided=same[Answer.UNKNOWN] / max(1, same.total()),
        different_undecided=different[Answer.UNKNOWN] / max(1, different.total()),
        same_no=same[Answer.NO],
        missing=missing,
    )


def summary(rows: list[Row]) -> None:
    print("\n## summary at the operating threshold (undecided = UNKNOWN, a person reviews)")
    print(
        f"{'second photo':<40} {'TAR':>7} {'FAR':>7} {'undec same':>11} {'undec diff':>11}"
        f" {'same NO':>8} {'no face':>8}"
    )
    for r in rows:
        print(
            f"{r.title:<40} {r.tar:>7.1%} {r.far:>7.2%} {r.same_undecided:>11.1%} "
            f"{r.different_undecided:>11.1%} {r.same_no:>8} {r.missing:>8}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--licence-px", type=int, nargs="*", default=[180, 120, 90])
    parser.add_argument("--colour", action="store_true", help="licence photos in colour, not grey")
    parser.add_argument("--jpeg-quality", type=int, default=35)
    parser.add_argument("--face-px", type=int, nargs="*", default=[])
    args = parser.parse_args()

    folder = eval_dir()
    if not (folder / "face_pairs.csv").is_file():
        print(f"no dev set at {folder}; set COMPLIANCE_EVAL_DIR", file=sys.stderr)
        return 2
    pairs = read_pairs(folder)
    files = sorted({p.file_a for p in pairs} | {p.file_b for p in pairs})
    images = {name: cv2.imread(str(folder / name)) for name in files}

    matcher = SFaceMatcher()
    thresholds = matcher.thresholds
    matcher.load()
    embeddings: dict[str, FaceEmbedding | None] = {}
    timings: dict[str, list[float]] = {name: [] for name in files}
    for _ in range(max(1, args.repeat)):
        for name in files:
            started = time.perf_counter()
            embeddings[name] = matcher.embed(images[name])
            timings[name].append((time.perf_counter() - started) * 1000)
    per_image = [statistics.median(t) for t in timings.values()]
    print(f"# SFace matcher {matcher.version} on {folder}")
    print(f"{len(files)} face photos, {sum(e is not None for e in embeddings.values())} with a face found")
    print(
        f"ms per embedding (detect + align + embed; median of {args.repeat} runs per photo): "
        f"median {statistics.median(per_image):.1f}, max {max(per_image):.1f}"
    )
    rows = [report("portrait (as is)", matcher, pairs, embeddings, embeddings, thresholds)]

    for px in args.licence_px:
        look = LicenceLook(px=px, grey=not args.colour, jpeg_quality=args.jpeg_quality)
        made = {name: licence_image(images[name], look) for name in files}
        started = time.perf_counter()
        licence = {name: matcher.embed(made[name]) for name in files}
        each = (time.perf_counter() - started) * 1000 / len(files)
        print(f"\nms per licence embedding at {look.label}: mean {each:.1f} (one run)")
        rows.append(report(f"licence {look.label}", matcher, pairs, embeddings, licence, thresholds))

    for face_px in args.face_px:
        small = {}
        for name in files:
            found = embeddings[name]
            small[name] = matcher.embed(shrunk(images[name], found, face_px)) if found else None
        rows.append(
            report(
                f"shrunk to a {face_px} px face",
                matcher,
                pairs,
                embeddings,
                small,
                thresholds,
            )
        )
    summary(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
