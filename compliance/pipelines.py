"""The registry of pipelines: each one's name, how it is built from settings, which settings it
reads, and whether GPU workers judge it in batches. Built once per process and per those settings.

A submission is judged by a registered pipeline or by ``both`` (``COMBINED``), which runs the two
in ``BOTH``: the first's values decide, the second's are compared field by field (see
``compliance.inspection.decide``). ``both`` is a combination of registered pipelines, not an entry;
so is ``cascade`` (``CASCADE``), which runs the two of ``CASCADE_STAGES`` in turn: the baseline, then
the MLLM only where the baseline cannot settle the photo (``compliance.cascade``).
With ``mllm_fallback`` the ``mllm`` pipeline is a ``FallbackPipeline`` that hands an invalid or
failed MLLM answer to the baseline and says so.

Adding a pipeline: one class that satisfies ``compliance.pipeline.Pipeline``, and one line in
``REGISTRY`` (``register`` does the same at run time).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compliance.judgments import FaceMatch, Fallback, Judgments, Provenance
from compliance.mllm.backends.base import MllmError
from compliance.mllm.pipeline import build_pipeline as build_mllm
from compliance.multistage.pipeline import MultistagePipeline
from compliance.multistage.pipeline import build_pipeline as build_multistage
from compliance.multistage.precheck import Prechecker
from compliance.pipeline import BOTH, CASCADE, CASCADE_STAGES, COMBINED, Image, Pipeline, PipelineName
from compliance.settings import Settings, Thresholds


@dataclass(frozen=True, slots=True)
class Registered:
    build: Callable[[Settings], Pipeline]
    # The settings fields it reads: the cache key, so an unrelated change builds no second copy.
    reads: Callable[[Settings], frozenset[str]]
    batched: bool = False  # GPU workers gather its photos into one ``judge_batch`` call


def _fields(*prefixes: str) -> Callable[[Settings], frozenset[str]]:
    return lambda settings: frozenset(n for n in type(settings).model_fields if n.startswith(prefixes))


_MULTISTAGE_READS = _fields("detector", "yolo_", "thresholds")


def _mllm_reads(settings: Settings) -> frozenset[str]:
    own = _fields("mllm_", "model_source", "thresholds")(settings)
    return own | _MULTISTAGE_READS(settings) if settings.mllm_fallback else own


def _build_mllm(settings: Settings) -> Pipeline:
    mllm = build_mllm(settings)
    if settings.mllm_fallback:
        return FallbackPipeline(mllm, get_pipeline(PipelineName.MULTISTAGE, settings))
    return mllm


REGISTRY: dict[str, Registered] = {
    PipelineName.MULTISTAGE: Registered(build_multistage, _MULTISTAGE_READS),
    PipelineName.MLLM: Registered(_build_mllm, _mllm_reads, batched=True),
}


def register(name: str, entry: Registered) -> None:
    """Add a pipeline at run time (a plug-in; a test)."""
    if name in REGISTRY or name in (COMBINED, CASCADE, "all"):
        raise ValueError(f"a pipeline named {name!r} is registered already")
    REGISTRY[name] = entry


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)
    with _lock:
        for key in [k for k in _cache if k[0] == name]:
            del _cache[key]


def choices() -> tuple[str, ...]:
    """What a submission or an audit may ask for: every registered pipeline, ``both`` and ``cascade``."""
    return (*REGISTRY, COMBINED, CASCADE)


def pipeline_names(choice: str) -> tuple[str, ...]:
    """The pipelines a choice may run: ``both`` (or ``all``) is the two of ``BOTH``, in that order;
    ``cascade`` the two of ``CASCADE_STAGES``, in the order they judge (the second only if needed)."""
    if choice in (COMBINED, "all"):
        return BOTH
    if choice == CASCADE:
        return CASCADE_STAGES
    if choice not in REGISTRY:
        raise ValueError(f"unknown pipeline {choice!r}; choose from {', '.join(choices())}")
    return (choice,)


def is_batched(name: str) -> bool:
    return REGISTRY[name].batched


def get_pipelines(choice: str, settings: Settings) -> dict[str, Pipeline]:
    """The pipelines for a choice, by name, in order. With ``both`` or ``cascade`` the MLLM never
    falls back: its own judgments are what the baseline's are compared with."""
    names = pipeline_names(choice)
    if len(names) > 1:
        settings = settings.model_copy(update={"mllm_fallback": False})
    return {name: get_pipeline(name, settings) for name in names}


class FallbackPipeline:
    """The MLLM first; where it fails (``MllmError``) or answers invalidly or unsurely (output errors
    or doubts), the baseline judges instead. The result says so: ``provenance.fallback`` holds the reason and the
    MLLM's raw answer, ``provenance.models`` both pipelines' models, and the policy's
    ``FallbackDeclared`` check puts it in the verdict."""

    name = PipelineName.MLLM.value

    def __init__(self, primary: Pipeline, fallback: Pipeline) -> None:
        self.primary = primary
        self.fallback = fallback

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        try:
            first = self.primary.judge(scene, licence, thresholds)
        except MllmError as exc:
            return self._instead(scene, licence, thresholds, f"{type(exc).__name__}: {exc}", None)
        return self._checked(first, scene, licence, thresholds)

    def _checked(
        self, first: Judgments, scene: Image, licence: Image | None, thresholds: Thresholds | None
    ) -> Judgments:
        errors, doubts = first.provenance.output_errors, first.provenance.output_doubts
        if not errors and not doubts:
            return first
        why = "; ".join(
            ([f"invalid answer: {'; '.join(errors)}"] if errors else [])
            + ([f"unsure answer: {'; '.join(doubts)}"] if doubts else [])
        )
        return self._instead(scene, licence, thresholds, why, first.provenance.raw_output)

    def judge_batch(
        self, items: Sequence[tuple[Image, Image | None]], thresholds: Thresholds | None = None
    ) -> list[Judgments]:
        """The MLLM's batch; each invalid answer (or all, if the batch failed) judged by the baseline."""
        try:
            firsts = self.primary.judge_batch(items, thresholds)
        except MllmError as exc:
            why = f"{type(exc).__name__}: {exc}"
            return [self._instead(scene, licence, thresholds, why, None) for scene, licence in items]
        return [
            self._checked(first, scene, licence, thresholds)
            for first, (scene, licence) in zip(firsts, items, strict=True)
        ]

    def load(self) -> None:
        self.primary.load()
        self.fallback.load()

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        try:
            return self.primary.compare_faces(a, b, thresholds)
        except MllmError:
            return self.fallback.compare_faces(a, b, thresholds)

    @property
    def models(self) -> dict[str, str]:
        return {**self.fallback.models, **self.primary.models}

    def _instead(
        self, scene: Image, licence: Image | None, thresholds: Thresholds | None, why: str, raw: str | None
    ) -> Judgments:
        judged = self.fallback.judge(scene, licence, thresholds)
        own = judged.provenance
        provenance: Provenance = own.model_copy(
            update={
                # The failed model's version is part of what produced this judgment.
                "models": {**own.models, **self.primary.models},
                "fallback": Fallback(pipeline=self.primary.name, reason=why, raw_output=raw),
            }
        )
        return judged.model_copy(update={"provenance": provenance})


_cache: dict[tuple[str, str], Pipeline] = {}
# Re-entrant: the mllm builder asks for the (shared) multistage pipeline as its fallback.
_lock = threading.RLock()


def get_pipeline(name: str, settings: Settings) -> Pipeline:
    """One instance per pipeline and per the settings it reads, in this process: models load once."""
    if name not in REGISTRY:
        raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    key = (str(name), settings.model_dump_json(include=set(entry.reads(settings))))
    with _lock:
        if key not in _cache:
            _cache[key] = entry.build(settings)
        return _cache[key]


_prechecks: dict[int, Prechecker] = {}


def get_prechecker(settings: Settings) -> Prechecker:
    """The precheck on this process's multistage pipeline for ``settings``: its models, loaded once."""
    pipeline = get_pipeline(PipelineName.MULTISTAGE, settings)
    if not isinstance(pipeline, MultistagePipeline):
        raise TypeError(f"a precheck runs on the multistage pipeline, not {type(pipeline).__name__}")
    with _lock:
        found = _prechecks.get(id(pipeline))
        if found is None or found.detector is not pipeline.detector:
            found = _prechecks[id(pipeline)] = Prechecker.sharing(pipeline)
        return found
