"""What the MLLM's answers are worth as answers, constrained and free: how many parse and validate,
why the others do not, how many are unsure, and what verdicts and reasons they end in.

    PYTHONPATH=. .venv/bin/python bench/mllm_answers.py                      # the tiny random-weight checkpoint
    PYTHONPATH=. .venv/bin/python bench/mllm_answers.py --model /path/to/Qwen2-VL-2B-Instruct

Every dev scene and plate photo is one submission, with a dev face as the licence photo; the
carrier's registered plate is the photo's labelled plate (a genuine driver's case). Verdicts are
decided by the production policy from the MLLM's judgments alone. On the tiny checkpoint the
answers are noise: the table shows what the pipeline makes of noise (it must never PASS).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

from compliance.evaluation.manifest import read_manifest
from compliance.inspection import decide
from compliance.mllm.backends.transformers import TransformersBackend
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.tiny import build_tiny_checkpoint
from compliance.photos import read_photo_file
from compliance.settings import Settings
from compliance.verdicts import Outcome

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mllm_throughput import eval_dir

_WHY = {
    "no JSON object": "no JSON object",
    "cut off": "cut off",
    "invalid UTF-8": "broken UTF-8",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="tiny | a checkpoint folder")
    parser.add_argument("--decoding", nargs="+", choices=["constrained", "free"], default=["constrained", "free"])
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--limit", type=int, default=0, help="at most this many photos (0: all)")
    args = parser.parse_args()

    folder = eval_dir()
    rows = read_manifest(folder / "manifest.csv")
    load = lambda p: read_photo_file(p, max_bytes=20 << 20, max_pixels=50_000_000).image  # noqa: E731
    scenes = [r for r in rows if r.kind in ("scene", "plate")]
    faces = [load(r.path) for r in rows if r.kind == "face"]
    if args.limit:
        scenes = scenes[: args.limit]
    items = [(load(r.path), faces[i % len(faces)]) for i, r in enumerate(scenes)]
    model = args.model
    if model == "tiny":
        model = str(build_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="tiny_qwen2_vl_"))))
        print("model: TINY random-weight Qwen2-VL: its answers are noise")
    print(f"photos: {len(items)} dev scene and plate photos from {folder}, each with a dev face as the licence photo")
    print(
        f"{'decoding':>11} {'answers':>7} {'parse+valid':>11} {'no JSON':>7} {'cut off':>7} {'bad UTF-8':>9} "
        f"{'unsure':>6} {'PASS':>4} {'FAIL':>4} {'REVIEW':>6}  top reasons"
    )
    for decoding in args.decoding:
        settings = Settings(
            mllm_model=model,
            mllm_device="auto",
            mllm_max_new_tokens=args.max_new_tokens,
            mllm_batch_size=4,
            mllm_constrained=decoding == "constrained",
        )
        pipeline = MllmPipeline(TransformersBackend(settings), settings)
        judged = pipeline.judge_batch(items)
        why: Counter[str] = Counter()
        outcomes: Counter[Outcome] = Counter()
        reasons: Counter[str] = Counter()
        parsed = unsure = 0
        for judgments, row in zip(judged, scenes, strict=True):
            errors = judgments.provenance.output_errors
            parsed += not errors
            unsure += bool(judgments.provenance.output_doubts)
            for needle, label in _WHY.items():
                why[label] += any(needle in e for e in errors)
            verdict = decide(
                judgments,
                thresholds=settings.thresholds,
                registered_plates=[row.plate_text or "京A12345"],
                licence_given=True,
            )
            outcomes[verdict.outcome] += 1
            reasons.update(r.value for r in verdict.reasons)
        n = len(judged)
        top = ", ".join(f"{code} {count}" for code, count in reasons.most_common(4))
        print(
            f"{decoding:>11} {n:>7} {parsed / n:>11.0%} {why['no JSON object']:>7} {why['cut off']:>7} "
            f"{why['broken UTF-8']:>9} {unsure:>6} {outcomes[Outcome.PASS]:>4} {outcomes[Outcome.FAIL]:>4} "
            f"{outcomes[Outcome.REVIEW]:>6}  {top}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
