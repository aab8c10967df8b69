"""Training data from reviewers' corrections, loaded back the way trainers load it, and a LoRA
fine-tune of the tiny model on it whose adapter the production loader applies.

The reviewed submissions are real: photos accepted into the store, judged by the tiny MLLM, the
real baseline, or the fallback between them, then reviewed with ``record_review``. One is judged
by a constructed MLLM answer that was right, to show that a right answer makes no DPO pair.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from compliance.cli import app
from compliance.inspection import decide
from compliance.judgments import (
    Answer,
    FaceMatch,
    Judgments,
    PersonJudgment,
    PlateReading,
    Provenance,
    VehicleJudgment,
    VehicleKind,
)
from compliance.mllm.answer import MllmAnswer
from compliance.mllm.backends.transformers import TransformersBackend, chat_messages
from compliance.mllm.parse import parse_answer
from compliance.mllm.pipeline import MllmPipeline
from compliance.mllm.prompt import Task, submission_request
from compliance.pipeline import Pipeline
from compliance.pipelines import FallbackPipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import judge
from compliance.settings import Settings
from compliance.store import Store, registry, verdicts
from compliance.training.export import answer_json, export_dpo, export_sft
from compliance.verdicts import Corrections, Outcome
from tests.mllm.conftest import sample

runner = CliRunner()
FULL = Corrections(
    person_present=Answer.YES,
    vehicle_present=Answer.YES,
    vehicle_kind=VehicleKind.CAR,
    plate_text="皖AUJ299",
    plate_color="blue",
    plate_rows=1,
    same_person=Answer.YES,
)


@dataclass(frozen=True)
class Reviewed:
    mllm: str  # judged by the tiny MLLM, fully corrected: SFT and DPO
    baseline: str  # judged by the baseline, corrected to another person: SFT only
    right: str  # a right MLLM answer, confirmed without corrections: SFT only
    fallback: str  # the MLLM's invalid answer set aside for the baseline, corrected: SFT and DPO
    unreviewed: str  # machine verdict only: never exported
    other_carrier: str  # judged by the tiny MLLM for carrier OTHER, corrected
    raw: dict[str, str]  # the MLLM's raw answers, by submission


def review(store: Store, sid: str, corrections: Corrections | None, outcome: Outcome = Outcome.PASS) -> None:
    with store.sessions() as s, s.begin():
        verdicts.record_review(
            s, sid, reviewer="reviewer-1", outcome=outcome, note="looked at the photo", corrections=corrections
        )


@pytest.fixture()
def reviewed(store: Store, store_settings: Settings, tiny_mllm: MllmPipeline, multistage: Pipeline) -> Reviewed:
    def submit(photo: str, carrier: str = "ACME") -> str:
        return accept(store, sample(photo), Upload(carrier=carrier, driver="A-1")).submission_id

    raw: dict[str, str] = {}
    mllm = submit("a_by_car_wanAUJ299.jpg")
    raw[mllm] = judge(store, store_settings, mllm, tiny_mllm).judgments.provenance.raw_output or ""
    review(store, mllm, FULL)

    baseline = submit("parked_car_wanA195K9.jpg")
    judge(store, store_settings, baseline, multistage)
    review(store, baseline, Corrections(same_person=Answer.NO), Outcome.FAIL)

    right = submit("street_taxi.jpg")
    truth = Judgments(
        person=PersonJudgment(present=Answer.YES, count=2),
        vehicle=VehicleJudgment(present=Answer.YES, kind=VehicleKind.CAR),
        plate=PlateReading(text=None),
        face=FaceMatch(scene_face=Answer.YES, licence_face=Answer.YES, same_person=Answer.UNKNOWN),
        provenance=Provenance(pipeline="mllm", models=tiny_mllm.models),
    )
    said = answer_json(truth, Task.SUBMISSION)
    truth = truth.model_copy(update={"provenance": truth.provenance.model_copy(update={"raw_output": said})})
    with store.sessions() as s, s.begin():
        verdict = decide(
            truth, thresholds=store_settings.thresholds, registered_plates=["皖AUJ299"], licence_given=True
        )
        verdicts.record_verdict(s, right, verdict)
    review(store, right, None, Outcome.REVIEW)

    fallback = submit("a_by_car_wanAUJ299.jpg")
    fell_back = judge(store, store_settings, fallback, FallbackPipeline(tiny_mllm, multistage))
    raw[fallback] = fell_back.judgments.provenance.fallback.raw_output or ""
    review(store, fallback, Corrections(same_person=Answer.YES))

    unreviewed = submit("street_taxi.jpg")
    judge(store, store_settings, unreviewed, multistage)

    other = submit("a_by_car_wanAUJ299.jpg", "OTHER")
    raw[other] = judge(store, store_settings, other, tiny_mllm).judgments.provenance.raw_output or ""
    review(store, other, FULL)
    return Reviewed(mllm, baseline, right, fallback, unreviewed, other, raw)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def carrier_id(store: Store, code: str) -> int:
    with store.sessions() as s:
        return registry.get_carrier(s, code).id


def test_sft_records_hold_the_production_prompt_photos_and_corrected_answer(
    store: Store, reviewed: Reviewed, tmp_path: Path, tiny_mllm: MllmPipeline
) -> None:
    with store.sessions() as s:
        summary = export_sft(s, store.blobs, tmp_path / "out", carrier_id=carrier_id(store, "ACME"))
    assert summary.path == tmp_path / "out" / "sft.jsonl"
    records = {r["submission_id"]: r for r in lines(summary.path)}
    assert summary.records == len(records) == 4
    assert set(records) == {reviewed.mllm, reviewed.baseline, reviewed.right, reviewed.fallback}
    # Three scene photos and one licence photo, each written once.
    assert summary.images == 4 == len(list((tmp_path / "out" / "images").iterdir()))

    answers = {sid: json.loads(r["messages"][1]["content"][0]["text"]) for sid, r in records.items()}
    for answer in answers.values():
        MllmAnswer.model_validate(answer)
        assert list(answer) == list(MllmAnswer.model_fields)  # the schema's order: what the model learns to write
    assert answers[reviewed.mllm] == {
        "person": "yes",
        "people": None,  # the tiny model gave no count and the reviewer did not give one: not invented
        "vehicle": "yes",
        "kind": "car",
        "plate": "皖AUJ299",
        "color": "blue",
        "rows": 1,
        "plates": [{"plate": "皖AUJ299", "color": "blue", "rows": 1}],
        "face": "yes",
        "licence_face": "yes",
        "same": "yes",
    }
    assert answers[reviewed.baseline]["same"] == "no"
    assert answers[reviewed.baseline]["plate"] == "皖A195K9"  # the baseline's reading stands where uncorrected

    # Every answer parses back, by production's parser, to exactly what it says.
    for sid, record in records.items():
        parsed = parse_answer(record["messages"][1]["content"][0]["text"], Task.SUBMISSION, tokens=None)
        assert parsed.errors == ("no token log-probabilities: confidence unknown",)
        said = answers[sid]
        assert (parsed.person.present.value, parsed.person.count) == (said["person"], said["people"])
        assert (parsed.vehicle.present.value, parsed.vehicle.kind.value) == (said["vehicle"], said["kind"])
        assert (parsed.plate.text, parsed.plate.color.value, parsed.plate.rows) == (
            said["plate"],
            said["color"],
            said["rows"],
        )
        assert (parsed.face.scene_face.value, parsed.face.licence_face.value, parsed.face.same_person.value) == (
            said["face"],
            said["licence_face"],
            said["same"],
        )

    # The prompt renders exactly as production's does, after a round trip through JSONL and datasets.
    from datasets import load_dataset

    loaded = load_dataset("json", data_files=str(summary.path), split="train")
    record = next(r for r in loaded if r["submission_id"] == reviewed.mllm)
    processor = tiny_mllm.backend.load().processor
    scene, licence = (sample(n).image for n in ("a_by_car_wanAUJ299.jpg", "licence_a.jpg"))
    production = chat_messages(submission_request(scene, licence)[1])
    render = lambda messages: processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)  # noqa: E731
    assert render(record["messages"][:1]) == render(production)
    assert [Path(p).parent.name for p in record["images"]] == ["images", "images"]
    from PIL import Image

    with Image.open(tmp_path / "out" / record["images"][0]) as photo:
        assert photo.size == (scene.shape[1], scene.shape[0])

    # LLaMA-Factory's view of the same records.
    info = json.loads((tmp_path / "out" / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["compliance_sft"]["file_name"] == "sft.jsonl"
    human, gpt = records[reviewed.mllm]["conversations"]
    assert human["from"] == "human" and human["value"].count("<image>") == 2
    assert gpt == {"from": "gpt", "value": records[reviewed.mllm]["messages"][1]["content"][0]["text"]}


def test_dpo_pairs_only_where_the_mllm_was_wrong(store: Store, reviewed: Reviewed, tmp_path: Path) -> None:
    with store.sessions() as s:
        sft = {r["submission_id"]: r for r in lines(export_sft(s, store.blobs, tmp_path).path)}
        summary = export_dpo(s, store.blobs, tmp_path)
    pairs = {r["submission_id"]: r for r in lines(summary.path)}
    # No pair for the baseline's (the MLLM never answered) nor for the right answer.
    assert set(pairs) == {reviewed.mllm, reviewed.fallback, reviewed.other_carrier} and summary.records == 3
    for sid, pair in pairs.items():
        assert pair["rejected"] == [{"role": "assistant", "content": [{"type": "text", "text": reviewed.raw[sid]}]}]
        assert pair["chosen"] == sft[sid]["messages"][1:]
        assert pair["prompt"] == sft[sid]["messages"][:1] and pair["images"] == sft[sid]["images"]
        assert pair["chosen_reply"]["value"] != pair["rejected_reply"]["value"]

    from datasets import load_dataset
    from trl.data_utils import is_conversational, prepare_multimodal_messages

    loaded = load_dataset("json", data_files=str(summary.path), split="train")
    example = loaded[0]
    assert is_conversational(example)
    prompt = prepare_multimodal_messages(example["prompt"], images=example["images"])
    assert [c["image"] for c in prompt[0]["content"] if c["type"] == "image"] == example["images"]
    info = json.loads((tmp_path / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"compliance_sft", "compliance_dpo"} and info["compliance_dpo"]["ranking"] is True


def test_export_filters_by_time(store: Store, reviewed: Reviewed, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    with store.sessions() as s:
        assert export_sft(s, store.blobs, tmp_path / "a", until=now - timedelta(hours=1)).records == 0
        assert export_sft(s, store.blobs, tmp_path / "b", since=now - timedelta(hours=1)).records == 5
        assert export_sft(s, store.blobs, tmp_path / "c", since=now + timedelta(hours=1)).records == 0


def test_export_and_train_lora_from_the_command_line(
    store: Store,
    store_settings: Settings,
    reviewed: Reviewed,
    tmp_path: Path,
    tiny_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from compliance.settings import get_settings

    env = {
        "COMPLIANCE_DATABASE_URL": store_settings.database_url,
        "COMPLIANCE_BLOB_DIR": str(store_settings.blob_dir),
        "COMPLIANCE_MLLM_DEVICE": "cpu",
        "COMPLIANCE_MLLM_MIN_PIXELS": str(store_settings.mllm_min_pixels),
        "COMPLIANCE_MLLM_MAX_PIXELS": str(store_settings.mllm_max_pixels),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["export", "sft", str(tmp_path / "data"), "--carrier", "ACME"])
        assert result.exit_code == 0, result.output
        assert "4 records and 4 photos written" in result.stdout
        result = runner.invoke(app, ["export", "dpo", str(tmp_path / "data"), "--carrier", "NOPE"])
        assert result.exit_code == 2 and "NOPE" in result.stderr
        result = runner.invoke(app, ["export", "dpo", str(tmp_path / "data"), "--since", "yesterday"])
        assert result.exit_code == 2 and "ISO 8601" in result.stderr

        adapter = tmp_path / "adapter"
        result = runner.invoke(
            app,
            [
                "train", "lora", str(tmp_path / "data" / "sft.jsonl"), "--out", str(adapter),
                "--mllm-model", str(tiny_model_dir), "--max-steps", "2", "--gradient-accumulation", "1",
                "--rank", "4", "--learning-rate", "1e-3",
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "2 steps" in result.stdout
        result = runner.invoke(app, ["train", "lora", str(tmp_path / "nothing.jsonl"), "--out", str(adapter)])
        assert result.exit_code == 2 and "no such SFT file" in result.stderr
    finally:
        get_settings.cache_clear()
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter.iterdir()}
    trained = json.loads((adapter / "compliance_training.json").read_text(encoding="utf-8"))
    assert trained["steps"] == 2 and trained["records"] == 4 and len(trained["losses"]) == 2

    # The production loader applies the adapter, and it changes what the model computes.
    base = TransformersBackend(store_settings)
    tuned = TransformersBackend(store_settings.model_copy(update={"mllm_adapter": str(adapter)}))
    assert "+lora:" in tuned.load().version and base.load().version in tuned.version
    request = submission_request(sample("a_by_car_wanAUJ299.jpg").image, sample("licence_a.jpg").image)[1]

    def logits(backend: TransformersBackend) -> torch.Tensor:
        from compliance.mllm.backends.base import to_pil

        loaded = backend.load()
        text = loaded.processor.apply_chat_template(chat_messages(request), tokenize=False, add_generation_prompt=True)
        inputs = loaded.processor(text=[text], images=[to_pil(i) for i in request.images], return_tensors="pt")
        with torch.inference_mode():
            return loaded.model(**inputs).logits[0, -1]

    before, after = logits(base), logits(tuned)
    assert before.shape == after.shape
    assert (after - before).abs().max().item() > 1e-4
