"""Per-character confidence of the plate reader: right characters against wrong ones.

    PYTHONPATH=. .venv/bin/python bench/plate_chars.py [--scales 1 0.5 0.35] [--quality 90 40]

Reads every labelled plate photo of the dev set, as is and degraded (shrunk, JPEG-compressed), and
prints, per degradation, how many plates were read exactly, wrongly or not at all; then the
confidence the reader gave each character it read right and each it read wrong, for readings of
the right length. ``plate_char_confidence_min`` is set from this: a one-character
difference read above it is a FAIL (another plate), below it a REVIEW (perhaps a misread). Wrong
characters read above the threshold are false FAILs in waiting; right characters below it send
a near-miss fraud (one character changed) to REVIEW instead of FAIL.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

from compliance import plates
from compliance.evaluation.manifest import read_manifest
from compliance.multistage.plate_stage import PlateStage
from compliance.photos import read_photo_file


def eval_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", default))


def degraded(image: np.ndarray, scale: float, quality: int) -> np.ndarray:
    if scale != 1.0:
        h, w = image.shape[:2]
        image = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else image


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.35])
    parser.add_argument("--quality", type=int, nargs="+", default=[90, 40])
    args = parser.parse_args()
    rows = [r for r in read_manifest(eval_dir() / "manifest.csv") if r.plate_text and r.kind in ("plate", "scene")]
    stage = PlateStage.default()
    right: list[float] = []
    wrong: list[tuple[float, str]] = []
    one_off_sure: list[tuple[str, str, float, float]] = []
    # Per degradation: plates read exactly (sure / unsure), read wrong, or not read at all.
    outcomes: dict[tuple[float, int], Counter[str]] = defaultdict(Counter)
    for row in rows:
        image = read_photo_file(row.path, max_bytes=1 << 26, max_pixels=80_000_000).image
        truth = plates.normalise(row.plate_text or "")
        for scale in args.scales:
            for quality in args.quality:
                reading = stage.read(degraded(image, scale, quality))
                text, confidences = reading.text or "", reading.char_confidences or ()
                sure = (reading.confidence or 0.0) >= 0.8
                outcome = "none" if not text else ("exact" if text == truth else "wrong")
                how = "" if outcome == "none" else (" sure" if sure else " unsure")
                outcomes[(scale, quality)][outcome + how] += 1
                if outcome == "wrong" and sure:
                    print(f"  sure but wrong: {row.file} at {scale}/q{quality}: read {text} for {truth}")
                if len(text) != len(truth) or len(confidences) != len(text):
                    continue
                for i, (got, want, p) in enumerate(zip(text, truth, confidences, strict=True)):
                    if got == want:
                        right.append(p)
                    else:
                        wrong.append((p, f"{row.file}@{scale}/q{quality} pos {i + 1}: {got} for {want}"))
                differ = [i for i in range(len(text)) if text[i] != truth[i]]
                if len(differ) == 1 and (reading.confidence or 0.0) >= 0.8:
                    one_off_sure.append((row.file, text, reading.confidence or 0.0, confidences[differ[0]]))
    print(f"plates by degradation ({len(rows)} photos; sure = confidence >= 0.80):")
    for (scale, quality), counts in sorted(outcomes.items(), reverse=True):
        print(f"  scale {scale:.2f}, JPEG q{quality}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    r = np.array(right)
    print(
        f"right characters: n={len(r)}  p1={np.percentile(r, 1):.3f} p5={np.percentile(r, 5):.3f} "
        f"median={np.median(r):.3f}"
    )
    for threshold in (0.8, 0.85, 0.9, 0.95, 0.97, 0.99):
        print(f"  below {threshold:.2f}: {np.mean(r < threshold):.1%} of right characters")
    print(f"wrong characters: n={len(wrong)}")
    for p, where in sorted(wrong, reverse=True):
        print(f"  {p:.3f}  {where}")
    print(
        f"one wrong character in a reading of overall confidence >= 0.80 (a FAIL before the rule): {len(one_off_sure)}"
    )
    for file, text, overall, char in one_off_sure:
        print(f"  {file}: read {text}, overall {overall:.2f}, the wrong character {char:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
