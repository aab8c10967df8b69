"""The multimodal-LLM pipeline: one prompt per submission fills the whole judgments schema.

Person, vehicle, plate and face come from the model's answer (see ``parse``); image quality is
measured, not asked, since it is not a judgment a model should make. A backend failure raises
``MllmError`` so that a caller can fall back to the multistage baseline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from compliance.judgments import FaceMatch, Judgments, Provenance
from compliance.mllm.backends.base import Image, MllmBackend, MllmError, MllmOutput, MllmRequest
from compliance.mllm.parse import ParsedAnswer, parse_answer
from compliance.mllm.prompt import Task, build_request, submission_request
from compliance.photos import measure_quality
from compliance.settings import Settings, Thresholds

__all__ = ["MllmError", "MllmPipeline", "build_backend", "build_pipeline"]


class MllmPipeline:
    name = "mllm"

    def __init__(self, backend: MllmBackend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings

    def judge(self, scene: Image, licence: Image | None, thresholds: Thresholds | None = None) -> Judgments:
        return self.judge_batch([(scene, licence)], thresholds)[0]

    def judge_batch(
        self, items: Sequence[tuple[Image, Image | None]], thresholds: Thresholds | None = None
    ) -> list[Judgments]:
        """Many submissions through the backend at once (one ``generate`` per ``mllm_batch_size``).

        ``thresholds`` is accepted for the Pipeline protocol; the model's decisions do not depend on
        it (the checks apply the carrier's thresholds afterwards). Latency per photo: ``prompt`` and
        ``generate`` are the batch's time divided by its size, ``parse`` and ``quality`` the photo's own.
        """
        if not items:
            return []
        load_ms = self._load()
        start = time.perf_counter()
        prompts = [submission_request(scene, licence) for scene, licence in items]
        prompt_ms = _ms_since(start) / len(items)
        start = time.perf_counter()
        outputs = self._generate([request for _, request in prompts])
        generate_ms = _ms_since(start) / len(items)
        judgments = []
        for (scene, _), (task, _), output in zip(items, prompts, outputs, strict=True):
            start = time.perf_counter()
            parsed = self._parse(output, task)
            parse_ms = _ms_since(start)
            start = time.perf_counter()
            quality = measure_quality(scene)
            latency = {
                **({"load": round(load_ms, 2)} if load_ms else {}),
                "prompt": round(prompt_ms, 2),
                "generate": round(generate_ms, 2),
                "parse": round(parse_ms, 2),
                "quality": round(_ms_since(start), 2),
            }
            judgments.append(
                Judgments(
                    person=parsed.person,
                    vehicle=parsed.vehicle,
                    plate=parsed.plate,
                    plates=parsed.plates,
                    face=parsed.face,
                    quality=quality,
                    provenance=Provenance(
                        pipeline=self.name,
                        models=self.models,
                        latency_ms=latency,
                        raw_output=output.text,
                        output_errors=parsed.errors,
                        output_doubts=parsed.doubts,
                    ),
                )
            )
        return judgments

    def compare_faces(self, a: Image, b: Image, thresholds: Thresholds | None = None) -> FaceMatch:
        """A prompt with the two photos: a face in each, and the same person? (a as scene, b as licence)."""
        self._load()
        output = self._generate([build_request(Task.FACES, a, b)])[0]
        return self._parse(output, Task.FACES).face

    @property
    def models(self) -> dict[str, str]:
        return {f"mllm:{self.backend.name}:{self.backend.model_name}": self.backend.version}

    def _load(self) -> float:
        """Load an in-process model before timing, so that the first photo's generate time is honest;
        the load itself is reported as its own stage."""
        if self.backend.loaded:
            return 0.0
        start = time.perf_counter()
        self.backend.load()
        return _ms_since(start)

    def load(self) -> None:
        self._load()

    def _generate(self, requests: list[MllmRequest]) -> list[MllmOutput]:
        outputs = self.backend.generate(requests)
        if len(outputs) != len(requests):
            raise MllmError(f"the backend answered {len(outputs)} of {len(requests)} prompts")
        return outputs

    def _parse(self, output: MllmOutput, task: Task) -> ParsedAnswer:
        return parse_answer(
            output.text,
            task,
            tokens=output.tokens,
            finished=output.finished,
            confidence_min=self.settings.mllm_confidence_min,
        )


def build_backend(settings: Settings) -> MllmBackend:
    if settings.mllm_backend == "openai":
        from compliance.mllm.backends.openai import OpenAIBackend

        return OpenAIBackend(settings)
    from compliance.mllm.backends.transformers import TransformersBackend

    return TransformersBackend(settings)


def build_pipeline(settings: Settings) -> MllmPipeline:
    """For the registry, ``compliance.pipelines``."""
    return MllmPipeline(build_backend(settings), settings)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
