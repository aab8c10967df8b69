"""The pipelines a submission can be judged by, behind one Protocol, built once per process.

A submission is judged by ``multistage``, ``mllm`` or ``both`` (``CHOICES``). ``both`` is not a
pipeline: it runs the two in ``BOTH`` (the first's values decide, the second is compared field by
field; see ``compliance.inspection.decide``). With ``mllm_fallback`` the ``mllm`` pipeline is a
``FallbackPipeline`` that hands an invalid or failed MLLM answer to the baseline and says so.
"""

from __future__ import annotations

import threading
from typing import Protocol

from compliance.judgments import FaceMatch, Fallback, Judgments, Provenance
from compliance.multistage.base import Image
from compliance.settings import Settings, Thresholds


class Pipeline(Protocol):
    name: str

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments: ...

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch: ...

    @property
    def models(self) -> dict[str, str]: ...


# With "both", the first pipeline's values are the verdict's; the second is the second opinion.
BOTH = ("mllm", "multistage")
CHOICES = ("multistage", "mllm", "both")


def pipeline_names(choice: str) -> tuple[str, ...]:
    """The pipelines a choice runs: ``both`` (or ``all``) is every pipeline, in ``BOTH`` order."""
    if choice in ("both", "all"):
        return BOTH
    if choice not in BUILDERS:
        raise ValueError(f"unknown pipeline {choice!r}; choose from {', '.join(CHOICES)}")
    return (choice,)


def get_pipelines(choice: str, settings: Settings) -> dict[str, Pipeline]:
    """The pipelines for a choice, by name, in order. With ``both`` the MLLM never falls back: its
    own judgments are what the baseline's are compared with."""
    names = pipeline_names(choice)
    if len(names) > 1:
        settings = settings.model_copy(update={"mllm_fallback": False})
    return {name: get_pipeline(name, settings) for name in names}


class FallbackPipeline:
    """The MLLM first; where it fails (``MllmError``) or answers invalidly (output errors), the
    baseline judges instead. The result says so: ``provenance.fallback`` holds the reason and the
    MLLM's raw answer, ``provenance.models`` both pipelines' models, and the policy's
    ``FallbackDeclared`` check puts it in the verdict."""

    name = "mllm"

    def __init__(self, primary: Pipeline, fallback: Pipeline) -> None:
        self.primary = primary
        self.fallback = fallback

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        from compliance.mllm.backends.base import MllmError

        try:
            first = self.primary.judge(scene, licence, thresholds)
        except MllmError as exc:
            return self._instead(scene, licence, thresholds, f"{type(exc).__name__}: {exc}", None)
        errors = first.provenance.output_errors
        if not errors:
            return first
        why = "invalid answer: " + "; ".join(errors)
        return self._instead(scene, licence, thresholds, why, first.provenance.raw_output)

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        from compliance.mllm.backends.base import MllmError

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


def _build_multistage(settings: Settings) -> Pipeline:
    from compliance.multistage.detectors import build_detector
    from compliance.multistage.faces import SFaceMatcher
    from compliance.multistage.pipeline import MultistagePipeline
    from compliance.multistage.plate_stage import PlateStage

    return MultistagePipeline(
        detector=build_detector(settings),
        plates=PlateStage.default(),
        faces=SFaceMatcher(thresholds=settings.thresholds),
        score_min=settings.detector_score_min,
    )


def _build_mllm(settings: Settings) -> Pipeline:
    from compliance.mllm.pipeline import build_pipeline

    mllm = build_pipeline(settings)
    if settings.mllm_fallback:
        return FallbackPipeline(mllm, get_pipeline("multistage", settings))
    return mllm


BUILDERS = {"multistage": _build_multistage, "mllm": _build_mllm}

_cache: dict[tuple[str, str], Pipeline] = {}
# Re-entrant: the mllm builder asks for the (shared) multistage pipeline as its fallback.
_lock = threading.RLock()


def get_pipeline(name: str, settings: Settings) -> Pipeline:
    """One instance per pipeline and settings in this process, so models load once."""
    if name not in BUILDERS:
        raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(sorted(BUILDERS))}")
    key = (name, settings.model_dump_json())
    with _lock:
        if key not in _cache:
            _cache[key] = BUILDERS[name](settings)
        return _cache[key]
