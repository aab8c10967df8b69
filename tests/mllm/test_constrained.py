"""Grammar-constrained decoding on the tiny random-weight Qwen2-VL, loaded through the production
loader and prompted with real dev photos.

Random weights write noise. Free, that noise is invalid output (no JSON, cut off, broken UTF-8).
Constrained to the answer's schema, every answer parses and validates, so the only thing left
between noise and a PASS is the confidence read from the model's own token probabilities: these
tests hold that gate to the whole verdict.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from compliance import plates
from compliance.inspection import decide
from compliance.judgments import Judgments
from compliance.mllm.answer import decoding_schema, field_adapter, seen_plate_adapter
from compliance.mllm.backends.base import TokenLogprob, to_pil
from compliance.mllm.backends.transformers import TransformersBackend, chat_messages
from compliance.mllm.parse import parse_answer
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.prompt import Task, build_request
from compliance.settings import Settings
from compliance.verdicts import Outcome, ReasonCode, Verdict

Items = list[tuple[np.ndarray, np.ndarray | None]]


@pytest.fixture(scope="module")
def items(scenes: list[np.ndarray], faces: list[np.ndarray]) -> Items:
    """Submissions with a licence photo and one without, in one batch: one grammar per sequence."""
    return [
        (scenes[0], faces[0]),
        (scenes[1], None),
        (scenes[2], faces[1]),
        (scenes[0], faces[1]),
        (scenes[1], faces[0]),
    ]


@pytest.fixture(scope="module")
def constrained(tiny_settings: Settings) -> MllmPipeline:
    settings = tiny_settings.model_copy(update={"mllm_constrained": True})
    return MllmPipeline(TransformersBackend(settings), settings)


@pytest.fixture(scope="module")
def free(tiny_settings: Settings) -> MllmPipeline:
    settings = tiny_settings.model_copy(update={"mllm_constrained": False})
    return MllmPipeline(TransformersBackend(settings), settings)


def verdict_of(judgments: Judgments, licence_given: bool) -> Verdict:
    # The plate the model wrote is registered: with the gate gone, nothing but confidence would stop a PASS.
    registered = [judgments.plate.text] if judgments.plate.text else ["京A12345"]
    return decide(
        judgments, thresholds=Settings().thresholds, registered_plates=registered, licence_given=licence_given
    )


def _task(licence: np.ndarray | None) -> Task:
    return Task.SUBMISSION if licence is not None else Task.SCENE_ONLY


def _validates(raw: str, task: Task) -> None:
    """The answer is one JSON object with exactly the task's fields, each valid, every plate well formed."""
    answer: dict[str, Any] = json.loads(raw)
    assert list(answer) == list(task.fields)
    for name in task.fields:
        if name != "plates":
            field_adapter(name).validate_python(answer[name])
    for listed in answer["plates"]:
        for name, value in listed.items():
            seen_plate_adapter(name).validate_python(value)
    for text in [answer["plate"], *(p["plate"] for p in answer["plates"])]:
        assert text is None or re.fullmatch(plates.PATTERN, text), text


def test_constrained_answers_all_parse_and_noise_still_ends_in_review(constrained: MllmPipeline, items: Items) -> None:
    judged = constrained.judge_batch(items)

    for judgments, (_, licence) in zip(judged, items, strict=True):
        provenance = judgments.provenance
        assert provenance.raw_output is not None
        # 100% parse and validate: no "no JSON object", no cut-off (the token limit is 24 here), no broken UTF-8.
        assert provenance.output_errors == ()
        _validates(provenance.raw_output, _task(licence))
        # The noise is well formed, and unsure: the values the model wrote are taken as unknown.
        assert provenance.output_doubts
        verdict = verdict_of(judgments, licence is not None)
        assert verdict.outcome is Outcome.REVIEW
        assert ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons
        assert ReasonCode.INVALID_MODEL_OUTPUT not in verdict.reasons
        # A plate the grammar let through is a well-formed plate, and no surer than the model was.
        if judgments.plate.text:
            assert plates.parse(judgments.plate.text).valid
            assert judgments.plate.confidence is not None
            assert judgments.plate.confidence < Settings().thresholds.plate_confidence_min


def test_without_the_confidence_gate_the_same_answers_would_be_acted_on(
    constrained: MllmPipeline, items: Items
) -> None:
    """The gate is what stops the noise: read with no threshold, the same answers give decided
    values and no MODEL_LOW_CONFIDENCE (so the test above fails if the gate is removed)."""
    judged = constrained.judge_batch(items)
    for judgments, (_, licence) in zip(judged, items, strict=True):
        output_text = judgments.provenance.raw_output
        assert output_text is not None
        ungated = parse_answer(output_text, _task(licence), tokens=None, confidence_min=0.0)
        decided = [ungated.person.present, ungated.vehicle.present, ungated.face.scene_face]
        assert any(v.value != "unknown" for v in decided)
        assert not judgments.provenance.output_errors


def test_the_same_checkpoint_decoding_freely_gives_invalid_output(free: MllmPipeline, items: Items) -> None:
    for judgments, (_, licence) in zip(free.judge_batch(items), items, strict=True):
        errors = " ".join(judgments.provenance.output_errors)
        assert "no JSON object" in errors or "cut off" in errors
        verdict = verdict_of(judgments, licence is not None)
        assert verdict.outcome is Outcome.REVIEW and ReasonCode.INVALID_MODEL_OUTPUT in verdict.reasons


def test_confidence_is_the_models_own_probability_before_the_mask(
    constrained: MllmPipeline, scenes: list[np.ndarray]
) -> None:
    """Each token's recorded probability is what the unconstrained model gave it, recomputed here by
    one teacher-forced forward pass: where the grammar forced a token the model did not prefer, the
    low probability is kept (read after the mask it would be near 1)."""
    import torch

    backend = constrained.backend
    assert isinstance(backend, TransformersBackend)
    request = build_request(Task.SCENE_ONLY, scenes[0])
    output = backend.generate([request])[0]
    assert output.finished and output.tokens is not None
    loaded = backend.load()

    ids_of = {b: i for i, b in loaded.token_bytes.items() if b}
    generated = [ids_of[t.bytes] for t in output.tokens]
    text = loaded.processor.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)
    inputs = loaded.processor(text=[text], images=[to_pil(i) for i in request.images], return_tensors="pt")
    prompt_length = inputs["input_ids"].shape[1]
    ids = torch.cat([inputs["input_ids"], torch.tensor([generated])], dim=1)
    with torch.inference_mode():
        logits = loaded.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            # Text tokens (type 0) after the prompt's; M-RoPE places the image tokens by these.
            mm_token_type_ids=torch.cat(
                [inputs["mm_token_type_ids"], torch.zeros((1, len(generated)), dtype=torch.long)], dim=1
            ),
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
        ).logits[0]
    own = torch.log_softmax(logits.float(), dim=-1)
    recorded = [t.logprob for t in output.tokens]
    expected = [float(own[prompt_length - 1 + step, token]) for step, token in enumerate(generated)]
    assert recorded == pytest.approx(expected, abs=1e-3)

    forced = [t for t in output.tokens if t.top[0][0] != t.bytes]
    assert forced, "the grammar overrode the model's own choice somewhere"
    assert all(t.logprob < t.top[0][1] for t in forced)
    # A value spelled by such a token keeps that low probability, and is not acted on.
    parsed = parse_answer(output.text, Task.SCENE_ONLY, tokens=output.tokens, confidence_min=0.6)
    assert parsed.errors == () and parsed.doubts
    assert all(_probability(t) < 0.6 for t in forced)


def _probability(token: TokenLogprob) -> float:
    return token.probability


def test_grammars_are_compiled_once_per_tokenizer_and_schema(constrained: MllmPipeline, items: Items) -> None:
    backend = constrained.backend
    assert isinstance(backend, TransformersBackend)
    constrained.judge_batch(items[:2])
    grammars = backend.load().grammars
    assert grammars is not None
    for task in (Task.SUBMISSION, Task.SCENE_ONLY):
        schema = decoding_schema(task.fields)
        assert grammars.compiled(schema) is grammars.compiled(json.loads(json.dumps(schema)))
    assert grammars.compiled(decoding_schema(Task.SUBMISSION.fields)) is not grammars.compiled(
        decoding_schema(Task.SCENE_ONLY.fields)
    )
    free_settings = backend.settings.model_copy(update={"mllm_constrained": False})
    assert TransformersBackend(free_settings).load().grammars is None


def test_a_constrained_batch_answers_as_its_prompts_do_alone(constrained: MllmPipeline, items: Items) -> None:
    batched = constrained.judge_batch(items)
    single = [constrained.judge(scene, licence) for scene, licence in items]
    assert [j.provenance.raw_output for j in batched] == [j.provenance.raw_output for j in single]
    assert [j.provenance.output_doubts for j in batched] == [j.provenance.output_doubts for j in single]
