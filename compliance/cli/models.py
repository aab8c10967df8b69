"""``compliance models pull``: the one step that downloads weights; judging reads them from disk."""

from __future__ import annotations

from pathlib import Path

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
from compliance.settings import Settings

models_app = typer.Typer(help="Model weights: fetch them once, before judging.", no_args_is_help=True)


@models_app.command("pull")
def pull(mllm_model: MllmModel = None) -> None:
    """Download the MLLM (COMPLIANCE_MLLM_MODEL) into the Hugging Face cache, and the ultralytics
    YOLO weights when COMPLIANCE_DETECTOR=ultralytics. Needs the network; judging never does."""

    settings = settings_for(mllm_model)
    with user_errors():
        if settings.mllm_backend == "openai":
            err.print(f"mllm: served by {settings.mllm_base_url}; nothing to fetch here")
        else:
            path = spinner(f"fetching {settings.mllm_model}", lambda: _pull_mllm(settings.mllm_model))
            out.print(f"mllm: {settings.mllm_model} at {path}")
        if settings.detector == "ultralytics":
            path = spinner(f"fetching {settings.yolo_weights}", lambda: _pull_yolo(settings.yolo_weights))
            out.print(f"detector: {settings.yolo_weights} at {path}")


def _pull_mllm(model: str) -> Path:
    from huggingface_hub.errors import HfHubHTTPError

    from compliance.mllm.backends.transformers import pull as pull_weights

    try:
        return pull_weights(Settings(mllm_model=model))
    except (OSError, HfHubHTTPError, ValueError) as exc:
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {cause}" if cause is not None else f"{type(exc).__name__}"
        raise UserError(
            f"could not download {model} from the Hugging Face Hub ({why}); check the network (HF_ENDPOINT for a "
            "mirror), or copy the model folder to this machine and set COMPLIANCE_MLLM_MODEL to it"
        ) from None


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
