"""The ``compliance`` command line (typer + rich). Errors end here as one line and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from compliance.settings import Settings, get_settings

app = typer.Typer(
    help="Checks drivers' photos by their vehicles (人车合照).", no_args_is_help=True, add_completion=False
)

out = Console()
err = Console(stderr=True)

T = TypeVar("T")

PIPELINES = ("multistage",)


class UserError(Exception):
    """Anything the user can fix: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the domain's boundary errors into one-line messages instead of tracebacks."""
    from compliance.evaluation.manifest import ManifestError
    from compliance.photos import PhotoRejected

    try:
        yield
    except (UserError, PhotoRejected, ManifestError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # domain errors from the store carry their own message
        if type(exc).__module__.startswith("compliance.store") and isinstance(exc, (LookupError, ValueError)):
            raise fail(str(exc)) from None
        raise


def spinner(label: str, work: Callable[[], T]) -> T:
    with err.status(label):
        return work()


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}", style="dim"),
        console=err,
        transient=False,
    )


def _settings() -> Settings:
    return get_settings()


def _pipelines(choice: str) -> list[str]:
    names = list(PIPELINES) if choice == "all" else [choice]
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        raise UserError(f"unknown pipeline {unknown[0]!r}; choose from {', '.join(PIPELINES)}")
    return names


@app.command()
def check(
    photo: Annotated[Path, typer.Argument(help="the scene photo: the driver by the vehicle")],
    licence: Annotated[Path | None, typer.Option("--licence", help="the driver's licence (ID) photo")] = None,
    plate: Annotated[list[str] | None, typer.Option("--plate", help="registered plate(s) to compare with")] = None,
    pipeline: Annotated[str, typer.Option(help="multistage")] = "multistage",
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict and judgments as JSON")] = False,
) -> None:
    """Judge one photo against a plate and a licence photo, without storing anything."""
    from compliance.inspection import decide
    from compliance.photos import read_photo_file
    from compliance.pipelines import get_pipeline

    settings = _settings()
    with user_errors():
        names = _pipelines(pipeline)
        scene = read_photo_file(photo, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
        face = (
            read_photo_file(licence, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
            if licence
            else None
        )
        plates = [p for p in (plate or []) if p.strip()]
        verdicts = {}
        for name in names:
            engine = spinner(f"loading {name} models", lambda n=name: get_pipeline(n, settings))
            judgments = spinner(
                f"judging with {name}",
                lambda e=engine: e.judge(scene.image, face.image if face else None, settings.thresholds),
            )
            verdicts[name] = decide(
                judgments,
                thresholds=settings.thresholds,
                registered_plates=plates,
                licence_given=face is not None,
                capture_time=scene.capture_time,
            )
    if as_json:
        print(json.dumps({n: v.model_dump(mode="json") for n, v in verdicts.items()}, ensure_ascii=False, indent=2))
        return
    from compliance.terminal import verdict_panel

    for name, verdict in verdicts.items():
        out.print(verdict_panel(verdict, f"{photo.name} — {name}"))


def _default_eval_dir() -> Path:
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", Path(__file__).resolve().parents[1].parent / "shared/eval/dev"))


@app.command("eval")
def evaluate(
    manifest: Annotated[Path, typer.Argument(help="labelled manifest.csv (format of shared/eval/dev)")],
    pairs: Annotated[
        Path | None, typer.Option(help="face pairs CSV; default: face_pairs.csv beside the manifest")
    ] = None,
    pipeline: Annotated[str, typer.Option(help="multistage or all")] = "multistage",
    as_json: Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")] = False,
) -> None:
    """Score every judgment against a labelled manifest: plates, faces, presence, latency."""
    from compliance.evaluation.manifest import read_face_pairs, read_manifest
    from compliance.evaluation.runner import evaluate as run_eval
    from compliance.pipelines import get_pipeline

    settings = _settings()
    with user_errors():
        names = _pipelines(pipeline)
        rows = read_manifest(manifest)
        pairs_path = pairs or manifest.parent / "face_pairs.csv"
        if pairs is not None and not pairs_path.is_file():
            raise UserError(f"{pairs_path}: no such face-pairs file")
        face_pairs = read_face_pairs(pairs_path) if pairs_path.is_file() else []
        missing = [r.file for r in rows if not r.path.is_file()]
        if missing:
            raise UserError(f"{len(missing)} file(s) named in {manifest} are missing, e.g. {missing[0]}")
        engines = {n: spinner(f"loading {n} models", lambda n=n: get_pipeline(n, settings)) for n in names}
        reports = {}
        with progress_bar() as bar:
            for name, engine in engines.items():
                task = bar.add_task(name, total=len(rows) + len(face_pairs), item="")
                reports[name] = run_eval(
                    engine,
                    rows,
                    face_pairs,
                    settings,
                    progress=lambda item, t=task: bar.update(t, advance=1, item=item),
                )
    if as_json:
        print(json.dumps({"pipelines": {n: r.as_json() for n, r in reports.items()}}, ensure_ascii=False))
        return
    from compliance.terminal import print_eval

    print_eval(out, reports)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
