"""The pipelines a submission can be judged by, behind one Protocol, built once per process."""

from __future__ import annotations

import threading
from typing import Protocol

from compliance.judgments import FaceMatch, Judgments
from compliance.multistage.base import Image
from compliance.settings import Settings, Thresholds


class Pipeline(Protocol):
    name: str

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments: ...

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch: ...

    @property
    def models(self) -> dict[str, str]: ...


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

    return build_pipeline(settings)


BUILDERS = {"multistage": _build_multistage, "mllm": _build_mllm}

_cache: dict[tuple[str, str], Pipeline] = {}
_lock = threading.Lock()


def get_pipeline(name: str, settings: Settings) -> Pipeline:
    """One instance per pipeline and settings in this process, so models load once."""
    if name not in BUILDERS:
        raise ValueError(f"unknown pipeline {name!r}; choose from {', '.join(sorted(BUILDERS))}")
    key = (name, settings.model_dump_json())
    with _lock:
        if key not in _cache:
            _cache[key] = BUILDERS[name](settings)
        return _cache[key]
