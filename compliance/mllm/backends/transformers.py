"""Qwen2-VL family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, or a local folder of one) run in-process by
transformers: batched greedy generation with each chosen token's log-probability.

Weights are read from disk only (``local_files_only``): ``pull`` is the one explicit step that
fetches them, so that judging a photo never starts a download.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compliance.lazy import LazyModel
from compliance.mllm.backends.base import MllmError, MllmOutput, MllmRequest, TokenLogprob, to_pil
from compliance.mllm.backends.weights import folder_version, resolve_local
from compliance.settings import Settings

if TYPE_CHECKING:
    import torch

# Alternatives kept per generated token: enough to look up a character the plate grammar repaired.
TOP_K = 5


@dataclass
class _Loaded:
    processor: Any
    model: Any
    device: torch.device
    token_bytes: dict[int, bytes]
    stop_ids: frozenset[int]
    pad_id: int
    version: str


class TransformersBackend(LazyModel[_Loaded]):
    """``AutoProcessor`` + ``AutoModelForImageTextToText``: bf16 on a GPU, float32 on the CPU, left
    padding so that a batch of prompts generates in one ``generate`` call."""

    name = "transformers"

    def __init__(self, settings: Settings, *, min_new_tokens: int = 0, cache_implementation: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        # Only the throughput bench sets these: a fixed answer length, a static KV cache.
        self.min_new_tokens = min_new_tokens
        self.cache_implementation = cache_implementation
        self._generate_lock = threading.Lock()

    @classmethod
    def with_model(
        cls, settings: Settings, processor: Any, model: Any, version: str, **kwargs: Any
    ) -> TransformersBackend:
        """A backend around a model already in memory (the bench's random-weight Qwen2-VL-2B)."""
        backend = cls(settings, **kwargs)
        backend._model = _assemble(processor, model, model.device, version, settings)
        return backend

    @property
    def model_name(self) -> str:
        return self.settings.mllm_model

    @property
    def version(self) -> str:
        return self._model.version if self._model is not None else "not loaded"

    def _load(self) -> _Loaded:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        folder = resolve_local(self.settings.mllm_model, self.settings.model_source)
        device = _device(self.settings.mllm_device)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        try:
            processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
            model = AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise MllmError(f"cannot load the multimodal model from {folder}: {exc}") from exc
        version = folder_version(folder)
        if self.settings.mllm_adapter:
            model, adapter_version = _with_adapter(model, Path(self.settings.mllm_adapter))
            version = f"{version}+lora:{adapter_version}"
        model.to(device).eval()
        return _assemble(processor, model, device, version, self.settings)

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmOutput]:
        loaded = self.load()
        size = max(1, self.settings.mllm_batch_size)
        outputs: list[MllmOutput] = []
        for start in range(0, len(requests), size):
            outputs.extend(self._generate_splitting(loaded, list(requests[start : start + size])))
        return outputs

    def _generate_splitting(self, loaded: _Loaded, batch: list[MllmRequest]) -> list[MllmOutput]:
        """On running out of GPU memory, halve the batch: greedy answers do not depend on batching."""
        import torch

        try:
            with self._generate_lock:  # one generate at a time per model; the GPU would serialise them anyway
                return self._generate_batch(loaded, batch)
        except torch.OutOfMemoryError as exc:
            if loaded.device.type == "cuda":
                torch.cuda.empty_cache()
            if len(batch) == 1:
                raise MllmError(
                    "out of GPU memory on a single prompt; "
                    "lower COMPLIANCE_MLLM_MAX_PIXELS or COMPLIANCE_MLLM_MAX_NEW_TOKENS"
                ) from exc
            half = len(batch) // 2
            return self._generate_splitting(loaded, batch[:half]) + self._generate_splitting(loaded, batch[half:])
        except RuntimeError as exc:
            if isinstance(exc, MllmError):
                raise
            raise MllmError(f"generation failed: {exc}") from exc

    def _generate_batch(self, loaded: _Loaded, batch: list[MllmRequest]) -> list[MllmOutput]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        texts = [
            loaded.processor.apply_chat_template(chat_messages(r), tokenize=False, add_generation_prompt=True)
            for r in batch
        ]
        images = [to_pil(image) for r in batch for image in r.images]
        inputs = loaded.processor(text=texts, images=images or None, padding=True, return_tensors="pt").to(
            loaded.device
        )
        recorder = _TopLogprobs(TOP_K)
        config = GenerationConfig(
            max_new_tokens=self.settings.mllm_max_new_tokens,
            min_new_tokens=self.min_new_tokens or None,
            do_sample=False,
            num_beams=1,
            eos_token_id=sorted(loaded.stop_ids),
            pad_token_id=loaded.pad_id,
            return_dict_in_generate=True,
            cache_implementation=self.cache_implementation,
        )
        with torch.inference_mode():
            result = loaded.model.generate(
                **inputs, generation_config=config, logits_processor=LogitsProcessorList([recorder])
            )
        new_ids = result.sequences[:, inputs["input_ids"].shape[1] :].tolist()
        return [recorder.output(row, ids, loaded) for row, ids in enumerate(new_ids)]


class _TopLogprobs:
    """A logits processor that records, per step and row, the log-probabilities of the most likely
    tokens, and changes nothing. ``output_scores`` would keep the whole vocabulary per step
    (151 936 floats x steps x batch, gigabytes on a large batch); the top few are all we read."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.steps: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logprobs = torch.log_softmax(scores.float(), dim=-1)
        values, ids = logprobs.topk(self.k, dim=-1)
        self.steps.append((values, ids))
        return scores

    def output(self, row: int, generated: list[int], loaded: _Loaded) -> MllmOutput:
        tokens: list[TokenLogprob] = []
        finished = False
        aligned = len(self.steps) >= len(generated)
        for step, token_id in enumerate(generated):
            if token_id in loaded.stop_ids:
                finished = True
                break
            if not aligned:
                break
            values, ids = self.steps[step]
            top_ids, top_values = ids[row].tolist(), values[row].tolist()
            if top_ids[0] != token_id:
                # Greedy picks the most likely token; anything else means the recording is off.
                aligned = False
                break
            tokens.append(
                TokenLogprob(
                    bytes=loaded.token_bytes.get(token_id, b""),
                    logprob=top_values[0],
                    top=tuple((loaded.token_bytes.get(i, b""), v) for i, v in zip(top_ids, top_values, strict=True)),
                )
            )
        if not aligned:
            ids = [i for i in generated if i not in loaded.stop_ids]
            text = loaded.processor.tokenizer.decode(ids, skip_special_tokens=True)
            return MllmOutput(text=text, tokens=None, finished=finished)
        text = b"".join(t.bytes for t in tokens).decode("utf-8", errors="replace")
        return MllmOutput(text=text, tokens=tuple(tokens), finished=finished)


def chat_messages(request: MllmRequest) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": p} if isinstance(p, str) else {"type": "image"} for p in request.parts
    ]
    return [{"role": "user", "content": content}]


def _assemble(processor: Any, model: Any, device: Any, version: str, settings: Settings) -> _Loaded:
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"  # generation continues from the right end of every row
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None and hasattr(image_processor, "size"):
        # Resolution bounds from the settings, whatever the checkpoint's preprocessor_config says.
        image_processor.size = {"shortest_edge": settings.mllm_min_pixels, "longest_edge": settings.mllm_max_pixels}
    stop = model.generation_config.eos_token_id if model.generation_config is not None else None
    stop_ids = set(stop if isinstance(stop, list) else [stop] if stop is not None else [])
    for token in ("<|im_end|>", "<|endoftext|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            stop_ids.add(token_id)
    if tokenizer.eos_token_id is not None:
        stop_ids.add(tokenizer.eos_token_id)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop_ids)
    return _Loaded(processor, model, device, token_bytes(tokenizer), frozenset(stop_ids), pad_id, version)


def token_bytes(tokenizer: Any) -> dict[int, bytes]:
    """Each token id's bytes, so that a character split over tokens can be traced to all of them.

    Qwen tokenizers are byte-level BPE: a token's string spells its bytes in GPT-2's printable
    alphabet. Special tokens map to no bytes (they are never part of the answer text).
    """
    decoder = _byte_decoder()
    special = set(tokenizer.all_special_ids)
    table: dict[int, bytes] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in special:
            table[token_id] = b""
        elif all(c in decoder for c in token):
            table[token_id] = bytes(decoder[c] for c in token)
        else:  # an added plain-text token
            table[token_id] = token.encode("utf-8")
    return table


@cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte <-> printable-character table, inverted."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _device(setting: str) -> torch.device:
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _with_adapter(model: Any, adapter: Path) -> tuple[Any, str]:
    """Load a LoRA adapter and merge it, so that generation runs at the base model's speed."""
    if not adapter.is_dir():
        raise MllmError(f"LoRA adapter folder not found: {adapter}")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise MllmError("a LoRA adapter is configured but peft is not installed (pip install '.[mllm]')") from exc
    merged = PeftModel.from_pretrained(model, str(adapter), is_trainable=False).merge_and_unload()
    digest = hashlib.sha256()
    for weights in sorted(adapter.glob("adapter_model.*")):
        digest.update(weights.read_bytes())
    return merged, digest.hexdigest()[:16]
