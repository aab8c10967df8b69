"""The contract every pipeline keeps, and the names of the built-in ones.

A pipeline turns a scene photo (and the driver's licence photo) into ``Judgments``: the schema of
``compliance.judgments``, whatever the models behind it. The registry that builds them by name is
``compliance.pipelines``; adding a pipeline means one class that satisfies ``Pipeline`` and one
line there.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

import numpy as np

from compliance.judgments import FaceMatch, Judgments
from compliance.settings import Thresholds

Image = np.ndarray  # HxWx3 uint8, BGR


class PipelineName(StrEnum):
    """The built-in pipelines (the registry may hold more)."""

    MULTISTAGE = "multistage"  # detector + plate locator + OCR + face embedding, on CPUs
    MLLM = "mllm"  # one multimodal-LLM prompt per photo, on GPUs


# "both" runs these two: the first's values decide, the second's are compared field by field.
BOTH: tuple[str, str] = (PipelineName.MLLM.value, PipelineName.MULTISTAGE.value)
COMBINED = "both"
# "cascade" runs the baseline first and the MLLM only on what the baseline cannot settle
# (compliance.cascade); an escalated photo is then decided from the two as "both" decides.
CASCADE = "cascade"
CASCADE_STAGES: tuple[str, str] = (PipelineName.MULTISTAGE.value, PipelineName.MLLM.value)


class Pipeline(Protocol):
    name: str

    @property
    def models(self) -> dict[str, str]:
        """Each model's name and version: what produced a judgment, kept with it."""
        ...

    def load(self) -> None:
        """Load every model now (a worker, before its first task); judging loads lazily otherwise."""
        ...

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments: ...

    def judge_batch(
        self, items: Sequence[tuple[Image, Image | None]], thresholds: Thresholds | None = None
    ) -> list[Judgments]:
        """Several photos in one call (the MLLM: one ``generate``); one-by-one where a model cannot batch."""
        ...

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch: ...
