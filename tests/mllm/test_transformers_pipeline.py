"""The MLLM pipeline end to end on the CPU: a tiny random-weight Qwen2-VL loaded through the
production loader, prompted with real dev photos.

Random weights write noise, which is the point here: noise must end as unknown fields and doubts
(constrained) or output errors (free), and the verdict as REVIEW, never PASS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compliance.inspection import decide
from compliance.judgments import Answer, PlateColor, VehicleKind
from compliance.mllm.backends.base import MllmError
from compliance.mllm.backends.transformers import TransformersBackend, chat_messages
from compliance.mllm.parse import char_probabilities
from compliance.mllm.pipeline import MllmPipeline, build_pipeline
from compliance.mllm.prompt import Task, build_request, submission_request
from compliance.photos import measure_quality
from compliance.settings import Settings
from compliance.verdicts import Outcome, ReasonCode


@pytest.fixture(scope="module")
def backend(tiny_settings: Settings) -> TransformersBackend:
    return TransformersBackend(tiny_settings)


@pytest.fixture(scope="module")
def pipeline(backend: TransformersBackend, tiny_settings: Settings) -> MllmPipeline:
    return MllmPipeline(backend, tiny_settings)


def test_tiny_checkpoint_is_a_small_ordinary_folder(tiny_model_dir: Path) -> None:
    size = sum(p.stat().st_size for p in tiny_model_dir.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in tiny_model_dir.iterdir()}


def test_one_prompt_end_to_end_ends_in_review(
    pipeline: MllmPipeline, scenes: list[np.ndarray], faces: list[np.ndarray]
) -> None:
    judgments = pipeline.judge(scenes[0], faces[0])

    provenance = judgments.provenance
    assert provenance.pipeline == "mllm"
    assert list(provenance.models.values()) == [pipeline.backend.version]
    assert pipeline.backend.version.startswith("sha256:")
    assert {"prompt", "generate", "parse", "quality"} <= set(provenance.latency_ms)
    assert provenance.raw_output is not None and provenance.raw_output != ""
    # Constrained, the noise parses; its values are all unsure.
    assert provenance.output_errors == ()
    assert provenance.output_doubts, "noise from random weights must be reported as unsure"
    # Quality is measured from the pixels, not asked of the model.
    assert judgments.quality == measure_quality(scenes[0])
    # Nothing invented from noise.
    assert judgments.person.present is Answer.UNKNOWN and judgments.person.count is None
    assert judgments.vehicle.present is Answer.UNKNOWN and judgments.vehicle.kind is VehicleKind.UNKNOWN
    assert judgments.plate.text is None and judgments.plate.confidence is None
    assert judgments.plate.color is PlateColor.UNKNOWN
    assert judgments.face.same_person is Answer.UNKNOWN and judgments.face.similarity is None

    verdict = decide(judgments, thresholds=Settings().thresholds, registered_plates=["京A12345"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW
    assert ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons


def test_tokens_spell_the_answer_and_carry_probabilities(free_settings: Settings, scenes: list[np.ndarray]) -> None:
    backend = TransformersBackend(free_settings)
    output = backend.generate([build_request(Task.SCENE_ONLY, scenes[1])])[0]
    assert output.tokens is not None and 0 < len(output.tokens) <= 24
    assert output.finished is False  # random weights never stop on their own within 24 tokens
    assert all(t.logprob <= 0.0 and t.top and t.top[0] == (t.bytes, t.logprob) for t in output.tokens)
    spelled = b"".join(t.bytes for t in output.tokens)
    assert spelled.decode("utf-8", errors="replace") == output.text
    probs = char_probabilities(output.text, output.tokens)
    if probs is not None:  # None only when the noise is not valid UTF-8
        assert len(probs) == len(output.text) and all(0.0 < p <= 1.0 for p in probs)


def test_prompt_shows_both_photos_or_only_the_scene(
    backend: TransformersBackend, scenes: list[np.ndarray], faces: list[np.ndarray]
) -> None:
    processor = backend.load().processor
    for licence, images in ((faces[0], 2), (None, 1)):
        task, request = submission_request(scenes[0], licence)
        prompt = processor.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)
        assert prompt.count("<|vision_start|>") == images == len(request.images)
        assert ('"same"' in prompt) is (licence is not None)
        assert task is (Task.SUBMISSION if licence is not None else Task.SCENE_ONLY)


def test_without_licence_same_person_is_unknown(pipeline: MllmPipeline, scenes: list[np.ndarray]) -> None:
    judgments = pipeline.judge(scenes[1], None)
    assert judgments.face.same_person is Answer.UNKNOWN
    assert judgments.face.licence_face is Answer.UNKNOWN
    verdict = decide(judgments, thresholds=Settings().thresholds, registered_plates=["京A12345"], licence_given=False)
    assert verdict.outcome is Outcome.REVIEW


def test_batched_equals_unbatched(
    tiny_settings: Settings, pipeline: MllmPipeline, scenes: list[np.ndarray], faces: list[np.ndarray]
) -> None:
    items = [(scenes[0], faces[0]), (scenes[1], None), (scenes[2], faces[1])]
    batched = pipeline.judge_batch(items)
    single = [pipeline.judge(scene, licence) for scene, licence in items]
    assert [j.provenance.raw_output for j in batched] == [j.provenance.raw_output for j in single]
    assert [j.provenance.output_errors for j in batched] == [j.provenance.output_errors for j in single]
    # Batches of two (the third prompt alone in a second generate call) agree too.
    pairs = MllmPipeline(TransformersBackend(tiny_settings.model_copy(update={"mllm_batch_size": 2})), tiny_settings)
    assert [j.provenance.raw_output for j in pairs.judge_batch(items)] == [j.provenance.raw_output for j in single]


def test_compare_faces_asks_the_model_and_invents_no_similarity(
    pipeline: MllmPipeline, faces: list[np.ndarray]
) -> None:
    match = pipeline.compare_faces(faces[0], faces[1])
    assert match.similarity is None and match.threshold is None
    assert match.same_person is Answer.UNKNOWN  # noise is not an answer


def test_missing_model_is_a_clear_error(tmp_path: Path, scenes: list[np.ndarray]) -> None:
    settings = Settings(mllm_model=str(tmp_path / "no-such-model"), mllm_device="cpu")
    with pytest.raises(MllmError, match="not on this machine"):
        build_pipeline(settings).judge(scenes[0], None)


def test_lora_adapter_is_loaded_at_load_time(
    tiny_settings: Settings, tiny_model_dir: Path, tmp_path: Path, scenes: list[np.ndarray]
) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, local_files_only=True)
    torch.manual_seed(1)
    # init_lora_weights=False: random A and B, so that the adapter visibly changes the answers.
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")

    adapted = TransformersBackend(tiny_settings.model_copy(update={"mllm_adapter": str(tmp_path / "adapter")}))
    plain = TransformersBackend(tiny_settings)
    request = build_request(Task.SCENE_ONLY, scenes[0])
    assert "+lora:" in (adapted.load().version)
    assert adapted.generate([request])[0].text != plain.generate([request])[0].text
