"""How MiniFASNet's live score holds up as faces get smaller, and what it says of real photos' faces.

    python bench/liveness.py [--eval-dir ../shared/eval/dev]

For every photo of the spoof set, the face YuNet finds is scored at its own size and with the photo
shrunk (area averaging) until the face is each of ``--sizes`` px tall: where live and spoof scores
stop being told apart is the smallest face worth judging (``liveness.MIN_FACE_PX``). Then every face
of the dev set's real photos (kinds scene and face) is scored at its own size: they are live faces,
so their lowest scores bound ``live_min`` from above.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2

from compliance.judgments import Box
from compliance.multistage.faces import SFaceMatcher
from compliance.multistage.liveness import MiniFASNetChecker
from compliance.photos import read_photo_file

LIMITS = {"max_bytes": 50_000_000, "max_pixels": 60_000_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/eval/dev")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 48, 64, 80, 96, 128, 160, 224])
    args = parser.parse_args()
    faces, live = SFaceMatcher(), MiniFASNetChecker()

    print("spoof set: live score by face height (px); * = the face at its own size")
    print(f"{'photo':28} {'label':14} {'own px':>6} {'own':>6} " + " ".join(f"{s:>6}" for s in args.sizes))
    with (args.eval_dir / "spoof" / "manifest.csv").open(encoding="utf-8") as fh:
        spoofs = list(csv.DictReader(fh))
    for row in spoofs:
        image = read_photo_file(args.eval_dir / "spoof" / row["file"], **LIMITS).image
        found = faces.embed(image)
        if found is None:
            print(f"{row['file']:28} {row['label']:14} no face")
            continue
        own = live.score(image, found.box)
        cells = []
        for size in args.sizes:
            scale = size / found.box.height
            if scale >= 1.0:
                cells.append("")
                continue
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            box = Box(
                x1=found.box.x1 * scale, y1=found.box.y1 * scale, x2=found.box.x2 * scale, y2=found.box.y2 * scale
            )
            cells.append(f"{live.score(small, box):.3f}")
        print(
            f"{row['file']:28} {row['label']:14} {found.box.height:6.0f} {own:6.3f} "
            + " ".join(f"{c:>6}" for c in cells)
        )

    print("\ndev photos' faces (all live): score at their own size")
    with (args.eval_dir / "manifest.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] in ("scene", "face")]
    for row in rows:
        image = read_photo_file(args.eval_dir / row["file"], **LIMITS).image
        found = faces.embed(image)
        if found is None:
            print(f"{row['file']:40} {row['kind']:6} no face")
            continue
        print(f"{row['file']:40} {row['kind']:6} {found.box.height:6.0f} px  {live.score(image, found.box):.3f}")


if __name__ == "__main__":
    main()
