"""MLLM pipeline throughput: photos per second and latency per photo, against batch size, max_pixels
and decoding (free or constrained to the answer's schema).

    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py                      # CPU: tiny model, a few minutes
    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py --model qwen2-vl-2b  # GPU: Qwen2-VL-2B architecture
    PYTHONPATH=. .venv/bin/python bench/mllm_throughput.py --model /path/to/Qwen2-VL-2B-Instruct

Every submission is one prompt with two images (a dev scene photo and a dev face as the licence
photo) and runs through ``MllmPipeline.judge_batch`` and the production ``TransformersBackend``:
preprocessing, one ``generate`` per batch, parsing, quality.

Decoding: ``free`` runs have a fixed answer length (``--new-tokens``, about a compact JSON answer)
so that random weights, which never stop on their own, cost what a real answer would.
``constrained`` runs are masked by the answer's grammar (xgrammar) and end where the grammar ends:
their tokens per answer are counted and reported. Grammar compilation is timed once, apart.

Models: ``tiny`` is the test fixture's random-weight Qwen2-VL (2 layers, hidden size 64), loaded from
a checkpoint folder: on a CPU it measures the plumbing, NOT Qwen2-VL-2B's speed. ``qwen2-vl-2b`` is
Qwen/Qwen2-VL-2B-Instruct's published architecture (28 layers, hidden 1536, vision depth 32) with
random weights, built in memory: the same FLOPs and memory traffic as the real model, for a GPU
where the weights cannot be fetched. A folder runs real weights.

Photos/s = photos / wall time over ``--repeat`` runs (median); latency p50/p90 = of the batches'
wall times, which is what each photo in a batch waits; ms/step = generate time per decoding step
(prefill included, spread over the steps). After a constrained run, the free run of the same batch
size writes as many tokens per answer as the constrained answers took, so their ratio is the cost of
the grammar alone.
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

from compliance.mllm.answer import decoding_schema
from compliance.mllm.backends.base import MllmOutput, MllmRequest
from compliance.mllm.backends.transformers import TransformersBackend, _Grammars
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.prompt import Task
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

    # Free runs write a fixed number of tokens; constrained ones stop where the grammar does.
    kwargs = {"min_new_tokens": 0 if settings.mllm_constrained else new_tokens, "cache_implementation": cache}
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


class Counting:
    """The backend, counting the tokens of every answer and the time spent generating."""

    def __init__(self, backend: TransformersBackend) -> None:
        self.backend = backend
        self.tokens: list[int] = []
        self.generate_s = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def generate(self, requests: list[MllmRequest]) -> list[MllmOutput]:
        start = time.perf_counter()
        outputs = self.backend.generate(requests)
        self.generate_s += time.perf_counter() - start
        self.tokens += [len(o.tokens or ()) for o in outputs]
        return outputs


def compile_ms(backend: TransformersBackend) -> float:
    """Compiling the submission schema's grammar for this tokenizer, from scratch (it is cached after)."""
    loaded = backend.load()
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    fresh = _Grammars(loaded.processor.tokenizer, vocab, loaded.stop_ids)
    start = time.perf_counter()
    fresh.compiled(decoding_schema(Task.SUBMISSION.fields))
    return (time.perf_counter() - start) * 1000.0


def main() -> int:
    import torch

    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", default="qwen2-vl-2b" if cuda else "tiny", help="tiny | qwen2-vl-2b | a checkpoint folder"
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 64] if cuda else [1, 4])
    parser.add_argument(
        "--max-pixels",
        type=int,
        nargs="+",
        default=[256, 640] if cuda else [64],
        help="in units of 28x28 pixels (one vision token)",
    )
    parser.add_argument("--batches", type=int, default=3 if cuda else 2, help="batches per run (photos = batch x this)")
    parser.add_argument(
        "--new-tokens",
        type=int,
        default=80 if cuda else 32,
        help="output tokens per free answer (a compact JSON answer is ~75 Qwen tokens)",
    )
    parser.add_argument(
        "--decoding",
        nargs="+",
        choices=["free", "constrained"],
        default=["constrained", "free"],
        help="after a constrained run, a free one writes as many tokens per answer (a like-for-like cost ratio)",
    )
    parser.add_argument("--repeat", type=int, default=2 if cuda else 3)
    parser.add_argument("--cache", choices=["dynamic", "static"], default="dynamic")
    args = parser.parse_args()

    items, source = submissions(max(args.batch_sizes) * args.batches)
    print(f"device: {device_name()}")
    if args.model == "tiny":
        print("model: TINY random-weight Qwen2-VL (2 layers, hidden 64, vision depth 2) -- measures the pipeline's")
        print("       plumbing (preprocessing, generate loop, grammar, parsing), NOT the speed of Qwen2-VL-2B")
    elif args.model == "qwen2-vl-2b":
        print("model: Qwen2-VL-2B-Instruct architecture with RANDOM weights (same compute as the real model)")
    else:
        print(f"model: {args.model}")
    print(f"input: {args.batches} batches a run of submissions x 2 images ({source}); cache {args.cache}")

    tiny_dir = None
    if args.model == "tiny":
        tiny_dir = Path(tempfile.mkdtemp(prefix="tiny_qwen2_vl_"))
        build_tiny_checkpoint(tiny_dir)
    built: dict[str, Any] = {}
    compiled = False
    print(
        f"{'decoding':>11} {'max_pixels':>12} {'batch':>5} {'photos/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
        f"{'tokens/answer':>13} {'ms/step':>8} {'tokens in':>9}"
    )
    for max_pixels in args.max_pixels:
        for batch_size in args.batch_sizes:
            matched: int | None = None  # the constrained run's tokens per answer, for the free run after it
            speeds: dict[str, float] = {}
            run_items = items[: batch_size * args.batches]
            for decoding in args.decoding:
                new_tokens = matched if decoding == "free" and matched else args.new_tokens
                settings = Settings(
                    mllm_model=str(tiny_dir) if tiny_dir else args.model,
                    mllm_min_pixels=min(64, max_pixels) * PATCH,
                    mllm_max_pixels=max_pixels * PATCH,
                    mllm_max_new_tokens=new_tokens,
                    mllm_batch_size=batch_size,
                    mllm_constrained=decoding == "constrained",
                )
                backend = build_backend(
                    args.model, settings, new_tokens, None if args.cache == "dynamic" else args.cache, built
                )
                counting = Counting(backend)
                pipeline = MllmPipeline(counting, settings)  # type: ignore[arg-type]
                pipeline.judge_batch(run_items[:batch_size])  # load, compile the grammar and warm up
                if decoding == "constrained" and not compiled:
                    print(f"grammar compilation (once per tokenizer and schema): {compile_ms(backend):.1f} ms")
                    compiled = True
                counting.tokens.clear()
                counting.generate_s = 0.0
                runs, batch_ms = [], []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    for first in range(0, len(run_items), batch_size):
                        batch_start = time.perf_counter()
                        pipeline.judge_batch(run_items[first : first + batch_size])
                        if cuda:
                            torch.cuda.synchronize()
                        batch_ms.append((time.perf_counter() - batch_start) * 1000.0)
                    runs.append(time.perf_counter() - start)
                per_answer = statistics.mean(counting.tokens)
                if decoding == "constrained":
                    matched = max(1, round(per_answer))
                step_ms = counting.generate_s * 1000.0 / max(1, sum(counting.tokens)) * batch_size
                deciles = statistics.quantiles(batch_ms, n=10) if len(batch_ms) > 1 else batch_ms * 9
                speeds[decoding] = len(run_items) / statistics.median(runs)
                print(
                    f"{decoding:>11} {max_pixels:>4}x28x28px {batch_size:>5} {speeds[decoding]:>9.2f} "
                    f"{deciles[4]:>8.0f} {deciles[8]:>8.0f} {per_answer:>13.1f} {step_ms:>8.2f} "
                    f"{_prompt_tokens(backend, items[0]):>9}"
                )
            if {"free", "constrained"} <= speeds.keys():
                print(
                    f"{'':>11} cost of constrained decoding per answer: {speeds['free'] / speeds['constrained']:.3f}x"
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
