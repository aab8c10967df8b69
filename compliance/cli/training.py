"""``compliance export sft|dpo`` and ``compliance train lora``: training data from reviewers'
corrections, and fine-tuning the MLLM on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compliance.cli.console import (
    MllmModel,
    UserError,
    err,
    open_store,
    out,
    parse_when,
    settings_for,
    user_errors,
)

export_app = typer.Typer(help="Training data from reviewers' corrections.", no_args_is_help=True)
train_app = typer.Typer(help="Fine-tune the MLLM on exported training data.", no_args_is_help=True)


Carrier = Annotated[str | None, typer.Option("--carrier", help="only this carrier's submissions (code)")]
Since = Annotated[str | None, typer.Option(help="only submissions from this time on (ISO 8601)")]
Until = Annotated[str | None, typer.Option(help="only submissions before this time (ISO 8601)")]
OutDir = Annotated[Path, typer.Argument(help="folder for the JSONL file and its images/")]


def _export(kind: str, out_dir: Path, carrier: str | None, since: str | None, until: str | None) -> None:
    from compliance.store import registry
    from compliance.training.export import export_dpo, export_sft

    with user_errors():
        start, end = parse_when(since), parse_when(until)
        if start and end and start >= end:
            raise UserError("--since is not before --until")
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir} is not a folder")
        store = open_store()
        with store.sessions() as s:
            carrier_id = registry.get_carrier(s, carrier).id if carrier else None
            export = export_sft if kind == "sft" else export_dpo
            summary = export(s, store.blobs, out_dir, carrier_id=carrier_id, since=start, until=end)
    what = "records" if kind == "sft" else "pairs"
    out.print(f"{summary.records} {what} and {summary.images} photos written to {summary.path}")
    if summary.records == 0:
        err.print("nothing to export: no reviewed submissions match" + (" with a wrong MLLM answer" * (kind == "dpo")))


@export_app.command("sft")
def export_sft_command(out_dir: OutDir, carrier: Carrier = None, since: Since = None, until: Until = None) -> None:
    """SFT records from reviewed submissions: the production prompt, both photos, the corrected answer."""
    _export("sft", out_dir, carrier, since, until)


@export_app.command("dpo")
def export_dpo_command(out_dir: OutDir, carrier: Carrier = None, since: Since = None, until: Until = None) -> None:
    """DPO pairs where the MLLM was wrong: the corrected answer chosen, the model's own answer rejected."""
    _export("dpo", out_dir, carrier, since, until)


@train_app.command("lora")
def train_lora_command(
    sft_file: Annotated[Path, typer.Argument(help="sft.jsonl written by `compliance export sft`")],
    adapter_dir: Annotated[Path, typer.Option("--out", help="folder to save the LoRA adapter in")],
    mllm_model: MllmModel = None,
    epochs: Annotated[float, typer.Option(help="passes over the data")] = 1.0,
    max_steps: Annotated[int | None, typer.Option(help="stop after this many optimiser steps")] = None,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate")] = 2e-4,
    rank: Annotated[int, typer.Option(help="LoRA rank")] = 16,
    batch_size: Annotated[int, typer.Option(help="records per device step")] = 1,
    gradient_accumulation: Annotated[int, typer.Option(help="device steps per optimiser step")] = 4,
) -> None:
    """LoRA fine-tune of the MLLM (peft + TRL) on an SFT file; set COMPLIANCE_MLLM_ADAPTER to the result."""
    from compliance.training.lora import LoraOptions, TrainingDataError, train_lora

    settings = settings_for(mllm_model)
    if min(epochs, learning_rate, rank, batch_size, gradient_accumulation) <= 0 or (max_steps or 1) <= 0:
        raise typer.BadParameter("epochs, steps, learning rate, rank and batch sizes must be positive")
    options = LoraOptions(
        rank=rank,
        alpha=2 * rank,
        learning_rate=learning_rate,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
    )
    with user_errors():
        try:
            summary = train_lora(sft_file, adapter_dir, settings, options)
        except TrainingDataError as exc:
            raise UserError(str(exc)) from None
    loss = f", last loss {summary.losses[-1]:.4f}" if summary.losses else ""
    out.print(f"adapter saved to {summary.adapter} ({summary.records} records, {summary.steps} steps{loss})")
    out.print(f"use it: COMPLIANCE_MLLM_MODEL={summary.base_model} COMPLIANCE_MLLM_ADAPTER={summary.adapter}")
