"""Qwen2-VL family (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, or a local folder of one) run in-process by
transformers: batched greedy generation with each chosen token's log-probability.

With ``mllm_constrained`` (the default) generation is constrained to the request's JSON schema by
xgrammar, the engine vLLM and SGLang use: one grammar matcher per sequence masks the tokens the
schema does not allow at each step, so the answer always parses and validates. The probability
recorded for each token is the one the model gave it *before* the mask: a mask makes whatever it
allows look sure, and confidence must be the model's own.

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
from compliance.mllm.answer import compact_json, longest_answer_bytes
from compliance.mllm.backends.base import MllmError, MllmOutput, MllmRequest, TokenLogprob, to_pil
from compliance.mllm.backends.weights import folder_version, resolve_local
from compliance.settings import Settings

if TYPE_CHECKING:
    import torch
    import xgrammar

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
    grammars: _Grammars | None = None  # None: generation is free


class _Grammars:
    """The model's tokenizer as xgrammar sees it, and each schema's grammar compiled once: a
    grammar is compiled per tokenizer and schema, and a service asks for two or three schemas."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_ids: frozenset[int]) -> None:
        import xgrammar as xgr

        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_ids))
        self.vocab_size = vocab_size
        self._compiler = xgr.GrammarCompiler(info)
        self._compiled: dict[str, xgrammar.CompiledGrammar] = {}
        self._lock = threading.Lock()

    def compiled(self, schema: dict[str, Any]) -> xgrammar.CompiledGrammar:
        key = compact_json(schema)
        with self._lock:
            if key not in self._compiled:
                # Compact and without free whitespace: a model cannot pad an answer past its bound.
                self._compiled[key] = self._compiler.compile_json_schema(
                    key, any_whitespace=False, separators=(",", ":"), strict_mode=True
                )
            return self._compiled[key]


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
        grammars = loaded.grammars
        schemas = [r.schema for r in batch] if grammars is not None else [None] * len(batch)
        recorder = _Recorder(
            TOP_K, [grammars.compiled(s) if grammars and s is not None else None for s in schemas], grammars
        )
        config = GenerationConfig(
            max_new_tokens=self._token_limit(schemas),
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
        return recorder.outputs(new_ids, loaded)

    def _token_limit(self, schemas: list[dict[str, Any] | None]) -> int:
        """The setting; where every answer is constrained, at least the longest answer its schema
        allows (a token holds one byte or more), so that no constrained answer is ever cut off."""
        limit = self.settings.mllm_max_new_tokens
        if schemas and all(s is not None for s in schemas):
            limit = max(limit, 1 + max(longest_answer_bytes(s) for s in schemas if s is not None))
        return limit


class _Recorder:
    """A logits processor that masks each sequence's next token to its grammar (if it has one)
    and records, per step and row, the token greedy decoding will pick, the log-probability the
    model gave it before the mask, and the model's own most likely tokens.

    ``output_scores`` would keep the whole vocabulary per step (151 936 floats x steps x batch,
    gigabytes on a large batch); these few numbers are all we read. It must be the last logits
    processor, so that the argmax it sees is the token ``generate`` picks.
    """

    def __init__(self, k: int, grammars: Sequence[xgrammar.CompiledGrammar | None], table: _Grammars | None) -> None:
        self.k = k
        self.matchers: list[xgrammar.GrammarMatcher | None] = []
        self.bitmask: torch.Tensor | None = None
        if table is not None and any(g is not None for g in grammars):
            import xgrammar as xgr

            self.matchers = [xgr.GrammarMatcher(g) if g is not None else None for g in grammars]
            self.bitmask = xgr.allocate_token_bitmask(len(grammars), table.vocab_size)
            self.filler = xgr.BatchGrammarMatcher()
        self.steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.broken: set[int] = set()  # rows whose grammar refused a token: their answers are not constrained

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logprobs = torch.log_softmax(scores.float(), dim=-1)
        if self.matchers:
            scores = self._masked(input_ids, scores)
        chosen = scores.argmax(dim=-1)
        top_values, top_ids = logprobs.topk(self.k, dim=-1)
        self.steps.append((chosen, logprobs.gather(-1, chosen[:, None])[:, 0], top_values, top_ids))
        return scores

    def _masked(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import xgrammar as xgr

        assert self.bitmask is not None
        last = input_ids[:, -1].tolist() if self.steps else None  # one transfer, not one per row
        live: list[int] = []
        for row, matcher in enumerate(self.matchers):
            if matcher is None or row in self.broken or matcher.is_terminated():
                continue
            if last is not None and not matcher.accept_token(last[row]):
                self.broken.add(row)  # cannot happen under greedy decoding; if it does, the parser judges
                continue
            if not matcher.is_terminated():
                live.append(row)
        if not live:
            return scores
        # The rows' masks in parallel threads: a large batch would otherwise wait on them one by one.
        self.filler.batch_fill_next_token_bitmask([self.matchers[r] for r in live], self.bitmask, indices=live)
        on_cpu = scores.device.type != "cuda"
        target = scores.cpu() if on_cpu else scores
        xgr.apply_token_bitmask_inplace(target, self.bitmask.to(target.device, non_blocking=True), indices=live)
        return target.to(scores.device) if on_cpu else target

    def outputs(self, generated: list[list[int]], loaded: _Loaded) -> list[MllmOutput]:
        if not self.steps:
            return [self._output(ids, [], loaded) for ids in generated]
        chosen, chosen_lp, top_values, top_ids = (_steps_on_cpu([s[i] for s in self.steps]) for i in range(4))
        return [
            self._output(
                ids,
                list(
                    zip(
                        chosen[:, row].tolist(),
                        chosen_lp[:, row].tolist(),
                        top_ids[:, row].tolist(),
                        top_values[:, row].tolist(),
                        strict=True,
                    )
                ),
                loaded,
            )
            for row, ids in enumerate(generated)
        ]

    @staticmethod
    def _output(
        generated: list[int], steps: list[tuple[int, float, list[int], list[float]]], loaded: _Loaded
    ) -> MllmOutput:
        tokens: list[TokenLogprob] = []
        finished = False
        aligned = len(steps) >= len(generated)
        for step, token_id in enumerate(generated):
            if token_id in loaded.stop_ids:
                finished = True
                break
            if not aligned or steps[step][0] != token_id:
                aligned = False  # the recording is off: no confidence rather than the wrong one
                break
            _, logprob, top_ids, top_values = steps[step]
            tokens.append(
                TokenLogprob(
                    bytes=loaded.token_bytes.get(token_id, b""),
                    logprob=logprob,
                    top=tuple((loaded.token_bytes.get(i, b""), v) for i, v in zip(top_ids, top_values, strict=True)),
                )
            )
        if not aligned:
            ids = [i for i in generated if i not in loaded.stop_ids]
            text = loaded.processor.tokenizer.decode(ids, skip_special_tokens=True)
            return MllmOutput(text=text, tokens=None, finished=finished)
        text = b"".join(t.bytes for t in tokens).decode("utf-8", errors="replace")
        return MllmOutput(text=text, tokens=tuple(tokens), finished=finished)


def _steps_on_cpu(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Steps x rows, on the CPU: one transfer for the whole answer instead of one per step."""
    import torch

    return torch.stack(tensors).cpu()


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
    grammars = None
    if settings.mllm_constrained:
        # The logits' width, which a checkpoint pads beyond the tokenizer's vocabulary.
        vocab_size = model.get_output_embeddings().weight.shape[0]
        grammars = _Grammars(tokenizer, vocab_size, frozenset(stop_ids))
    return _Loaded(processor, model, device, token_bytes(tokenizer), frozenset(stop_ids), pad_id, version, grammars)


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
