"""A LoRA fine-tune of the MLLM on the SFT file that ``export_sft`` writes, with peft and TRL.

The base model and processor are loaded by the production loader (``TransformersBackend``), so
training sees the same checkpoint, pixel budget and chat template as judging. Each record's
conversation is split into its prompt (the user turn) and completion (the answer) so that TRL
computes the loss on the answer only. The adapter is saved with ``save_pretrained``: point
``COMPLIANCE_MLLM_ADAPTER`` at the folder and the transformers backend merges it at load time.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from compliance.mllm.backends.transformers import TransformersBackend
from compliance.settings import Settings


class TrainingDataError(ValueError):
    """An SFT file that cannot be trained on; one line for people."""


@dataclass(frozen=True)
class LoraOptions:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # The language model's attention projections; Qwen2-VL's vision tower names its own qkv/proj.
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs where given
    batch_size: int = 1
    gradient_accumulation: int = 4
    seed: int = 0


@dataclass(frozen=True)
class TrainSummary:
    adapter: Path
    base_model: str
    base_version: str
    records: int
    steps: int
    losses: tuple[float, ...] = field(default=())


def train_lora(sft_path: Path, out_dir: Path, settings: Settings, options: LoraOptions = LoraOptions()) -> TrainSummary:
    """Fine-tune ``settings.mllm_model`` on ``sft_path`` and save the adapter to ``out_dir``."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    dataset = load_sft(sft_path)
    # The base model alone, by the production loader (an adapter already set is not trained on).
    backend = TransformersBackend(settings.model_copy(update={"mllm_adapter": None}))
    loaded = backend.load()
    model, processor = loaded.model, loaded.processor
    model.train()
    cuda = loaded.device.type == "cuda"

    losses: list[float] = []

    class _Losses(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **_: Any) -> None:
            if logs and "loss" in logs:
                losses.append(float(logs["loss"]))

    with tempfile.TemporaryDirectory(prefix="lora-run-") as scratch:
        config = SFTConfig(
            output_dir=scratch,
            num_train_epochs=options.epochs,
            max_steps=options.max_steps if options.max_steps is not None else -1,
            per_device_train_batch_size=options.batch_size,
            gradient_accumulation_steps=options.gradient_accumulation,
            learning_rate=options.learning_rate,
            lr_scheduler_type="constant",
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            bf16=cuda,
            use_cpu=not cuda,
            seed=options.seed,
            # Photos become hundreds of vision tokens: never cut a prompt's image tokens off.
            max_length=None,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=dataset,
            processing_class=processor,
            peft_config=LoraConfig(
                r=options.rank,
                lora_alpha=options.alpha,
                lora_dropout=options.dropout,
                target_modules=list(options.target_modules),
                task_type="CAUSAL_LM",
            ),
            callbacks=[_Losses()],
        )
        result = trainer.train()
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir)
    summary = TrainSummary(
        adapter=out_dir,
        base_model=settings.mllm_model,
        base_version=loaded.version,
        records=len(dataset),
        steps=int(result.global_step),
        losses=tuple(losses),
    )
    (out_dir / "compliance_training.json").write_text(
        json.dumps(
            {**asdict(summary), "adapter": str(out_dir), "sft_file": str(sft_path), "options": asdict(options)},
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return summary


def load_sft(sft_path: Path) -> Any:
    """The SFT file as a ``datasets.Dataset`` of prompt / completion / images (decoded photos)."""
    from datasets import Image, Sequence, load_dataset

    if not sft_path.is_file():
        raise TrainingDataError(f"{sft_path}: no such SFT file (write one with `compliance export sft`)")
    try:
        dataset = load_dataset("json", data_files=str(sft_path), split="train")
    except Exception as exc:  # datasets wraps JSON and schema errors in several types
        raise TrainingDataError(f"{sft_path}: not an SFT JSONL file ({type(exc).__name__}: {exc})") from None
    if len(dataset) == 0:
        raise TrainingDataError(f"{sft_path}: no records to train on")
    missing = {"messages", "images"} - set(dataset.column_names)
    if missing:
        raise TrainingDataError(f"{sft_path}: records lack {', '.join(sorted(missing))}")
    folder = sft_path.parent.resolve()

    def split(record: dict[str, Any]) -> dict[str, Any]:
        messages = record["messages"]
        if not messages or messages[-1]["role"] != "assistant":
            raise TrainingDataError(f"{sft_path}: a record does not end with the assistant's answer")
        return {
            "prompt": messages[:-1],
            "completion": messages[-1:],
            "images": [str(folder / path) for path in record["images"]],
        }

    dataset = dataset.map(split, remove_columns=dataset.column_names)
    for path in {p for paths in dataset["images"] for p in paths}:
        if not Path(path).is_file():
            raise TrainingDataError(f"{sft_path}: image {path} is missing")
    return dataset.cast_column("images", Sequence(Image()))
