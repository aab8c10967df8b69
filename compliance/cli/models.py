"""``compliance models pull``: the one step that downloads weights; judging reads them from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from compliance.cli.console import (
    MllmModel,
    UserError,
    err,
    out,
    settings_for,
    spinner,
    user_errors,
)
from compliance.settings import ModelSource

models_app = typer.Typer(help="Model weights: fetch them once, before judging.", no_args_is_help=True)


@models_app.command("pull")
def pull(
    mllm_model: MllmModel = None,
    source: Annotated[
        ModelSource | None,
        typer.Option("--source", help="where to fetch a model id from (overrides COMPLIANCE_MODEL_SOURCE)"),
    ] = None,
) -> None:
    """Download the MLLM (COMPLIANCE_MLLM_MODEL) into the Hugging Face or the ModelScope cache, and the
    ultralytics YOLO weights when COMPLIANCE_DETECTOR=ultralytics. Needs the network; judging never does."""

    settings = settings_for(mllm_model)
    chosen = source or settings.model_source
    with user_errors():
        if settings.mllm_backend == "openai":
            err.print(f"mllm: served by {settings.mllm_base_url}; nothing to fetch here")
        else:
            from compliance.mllm.backends.weights import SOURCE_NAMES
            from compliance.mllm.backends.weights import pull as pull_weights

            label = f"fetching {settings.mllm_model} from {SOURCE_NAMES[chosen]}"
            path = spinner(label, lambda: pull_weights(settings.mllm_model, chosen))
            out.print(f"mllm: {settings.mllm_model} at {path}")
            if chosen != settings.model_source and path != Path(settings.mllm_model).expanduser():
                # Judging looks in the cache of COMPLIANCE_MODEL_SOURCE only.
                err.print(f"judging finds it with COMPLIANCE_MODEL_SOURCE={chosen}")
        if settings.detector == "ultralytics":
            path = spinner(f"fetching {settings.yolo_weights}", lambda: _pull_yolo(settings.yolo_weights))
            out.print(f"detector: {settings.yolo_weights} at {path}")


def _pull_yolo(weights: str) -> Path:
    path = Path(weights)
    if path.is_file():
        return path
    from ultralytics.utils.downloads import attempt_download_asset

    try:
        fetched = Path(attempt_download_asset(path))
    except Exception as exc:  # ultralytics raises several kinds on a failed download
        raise UserError(f"could not download {weights} ({type(exc).__name__}: {exc})") from None
    if not fetched.is_file():
        raise UserError(f"could not download {weights}: not a file ultralytics publishes, or no network")
    return fetched
