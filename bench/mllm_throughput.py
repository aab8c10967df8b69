"""MLLM pipeline throughput: photos per second and latency per photo, against batch size and max_pixels.

    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py                      # CPU: tiny model, under a minute
    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py --model qwen2-vl-2b  # GPU: Qwen2-VL-2B architecture
    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py --model /path/to/Qwen2-VL-2B-Instruct

Every submission is one prompt with two images (a dev scene photo and a dev face as the licence
photo) and runs through ``MllmPipeline.judge_batch`` and the production ``TransformersBackend``:
preprocessing, one ``generate`` per batch, parsing, quality. The answer length is fixed
(``--new-tokens``, about the length of a compact JSON answer) so that random weights, which never
stop on their own, cost what a real answer would.

Models: ``tiny`` is the test fixture's random-weight Qwen2-VL (2 layers, hidden size 64), loaded from
a checkpoint folder: on a CPU it measures the plumbing, NOT Qwen2-VL-2B's speed. ``qwen2-vl-2b`` is
Qwen/Qwen2-VL-2B-Instruct's published architecture (28 layers, hidden 1536, vision depth 32) with
random weights, built in memory: the same FLOPs and memory traffic as the real model, for a GPU
where the weights cannot be fetched. A folder runs real weights.

Photos/s = photos / wall time over ``--repeat`` runs (median); latency = median wall time of a
batch, which is what each photo in it waits.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from compliance.mllm.backends.transformers import TransformersBackend
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.tiny import build_tiny_checkpoint, random_qwen2_vl_2b
from compliance.photos import read_photo_file
from compliance.settings import Settings

PATCH = 28 * 28  # one merged vision token covers 28x28 pixels


def eval_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "eval" / "dev"
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", default))


def submissions(count: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    folder = eval_dir()
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with manifest.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        load = lambda f: read_photo_file(folder / f, max_bytes=20 << 20, max_pixels=50_000_000).image  # noqa: E731
        scenes = [load(r["file"]) for r in rows if r["kind"] in ("scene", "plate")][:count]
        faces = [load(r["file"]) for r in rows if r["kind"] == "face"][:count]
        items = [(scenes[i % len(scenes)], faces[i % len(faces)]) for i in range(count)]
        return items, f"dev photos from {folder}"
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    face = rng.integers(0, 255, (400, 300, 3), dtype=np.uint8)
    return [(scene, face)] * count, "synthetic noise photos (dev photos not found)"


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def build_backend(
    model: str, settings: Settings, new_tokens: int, cache: str | None, built: dict[str, Any]
) -> TransformersBackend:
    import torch

    kwargs = {"min_new_tokens": new_tokens, "cache_implementation": cache}
    if model != "qwen2-vl-2b":
        return TransformersBackend(settings, **kwargs)
    if "2b" not in built:
        cuda = torch.cuda.is_available()
        built["2b"] = random_qwen2_vl_2b(
            "cuda" if cuda else "cpu",
            torch.bfloat16 if cuda else torch.float32,
            settings.mllm_min_pixels,
            settings.mllm_max_pixels,
        )
    processor, net = built["2b"]
    return TransformersBackend.with_model(settings, processor, net, "random-weights", **kwargs)


def main() -> int:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", default="qwen2-vl-2b" if cuda else "tiny", help="tiny | qwen2-vl-2b | a checkpoint folder"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32] if cuda else [1, 4])
    parser.add_argument(
        "--max-pixels",
        type=int,
        nargs="+",
        default=[256, 640] if cuda else [64, 256],
        help="in units of 28x28 pixels (one vision token)",
    )
    parser.add_argument("--photos", type=int, default=64 if cuda else 4, help="submissions per run")
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=80 if cuda else 32,
        help="output tokens per answer (a compact JSON answer is ~75 Qwen tokens)",
    )
    parser.add_argument("--repeat", type=int, default=3 if cuda else 2)
    parser.add_argument("--cache", choices=["dynamic", "static"], default="dynamic")
    args = parser.parse_args()

    items, source = submissions(args.photos)
    print(f"device: {device_name()}")
    if args.model == "tiny":
        print("model: TINY random-weight Qwen2-VL (2 layers, hidden 64, vision depth 2) -- measures the pipeline's")
        print("       plumbing (preprocessing, generate loop, parsing), NOT the speed of Qwen2-VL-2B")
    elif args.model == "qwen2-vl-2b":
        print("model: Qwen2-VL-2B-Instruct architecture with RANDOM weights (same compute as the real model)")
    else:
        print(f"model: {args.model}")
    print(
        f"input: {len(items)} submissions x 2 images ({source}); "
        f"{args.new_tokens} output tokens each; cache {args.cache}"
    )

    tiny_dir = None
    if args.model == "tiny":
        tiny_dir = Path(tempfile.mkdtemp(prefix="tiny_qwen2_vl_"))
        build_tiny_checkpoint(tiny_dir)
    built: dict[str, Any] = {}
    print(f"{'max_pixels':>14} {'batch':>5} {'photos/s':>9} {'latency ms':>11} {'tokens in':>9}")
    for max_pixels in args.max_pixels:
        for batch_size in args.batch_sizes:
            settings = Settings(
                mllm_model=str(tiny_dir) if tiny_dir else args.model,
                mllm_min_pixels=min(64, max_pixels) * PATCH,
                mllm_max_pixels=max_pixels * PATCH,
                mllm_max_new_tokens=args.new_tokens,
                mllm_batch_size=batch_size,
            )
            backend = build_backend(
                args.model, settings, args.new_tokens, None if args.cache == "dynamic" else args.cache, built
            )
            pipeline = MllmPipeline(backend, settings)
            pipeline.judge_batch(items[:batch_size])  # load and warm up
            runs, batch_ms = [], []
            for _ in range(args.repeat):
                start = time.perf_counter()
                for first in range(0, len(items), batch_size):
                    batch_start = time.perf_counter()
                    pipeline.judge_batch(items[first : first + batch_size])
                    batch_ms.append((time.perf_counter() - batch_start) * 1000.0)
                runs.append(time.perf_counter() - start)
            if cuda:
                torch.cuda.synchronize()
            prompt_tokens = _prompt_tokens(backend, items[0])
            print(
                f"{max_pixels:>5}x28x28px {batch_size:>5} {len(items) / statistics.median(runs):>9.2f} "
                f"{statistics.median(batch_ms):>11.0f} {prompt_tokens:>9}"
            )
    return 0


def _prompt_tokens(backend: TransformersBackend, item: tuple[np.ndarray, np.ndarray]) -> int:
    """Input tokens of one submission's prompt (text plus both images' vision tokens)."""
    from compliance.mllm.backends.base import to_pil
    from compliance.mllm.backends.transformers import chat_messages
    from compliance.mllm.prompt import submission_request

    loaded = backend.load()
    request = submission_request(*item)[1]
    text = loaded.processor.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)
    inputs = loaded.processor(text=[text], images=[to_pil(i) for i in request.images], return_tensors="pt")
    return int(inputs["input_ids"].shape[1])


if __name__ == "__main__":
    sys.exit(main())
