"""``compliance eval`` (accuracy on a labelled set) and ``compliance compose`` (a set of whole
submissions made from portrait pairs)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from compliance.cli.console import (
    PIPELINE_HELP,
    MllmModel,
    UserError,
    out,
    pipeline_choice,
    progress_bar,
    settings_for,
    spinner,
    user_errors,
)
from compliance.settings import Settings


def _default_eval_dir() -> Path:
    return Path(os.environ.get("COMPLIANCE_EVAL_DIR", Path(__file__).resolve().parents[1].parent / "shared/eval/dev"))


def evaluate(
    manifest: Annotated[
        Path,
        typer.Argument(
            help="labelled manifest.csv (format of shared/eval/dev), a submissions manifest "
            "(columns photo,licence,registered_plate,expected,case; see `compliance compose`), or a spoof "
            "manifest (columns file,label,has_face; format of shared/eval/dev/spoof)"
        ),
    ],
    pairs: Annotated[
        Path | None, typer.Option(help="face pairs CSV; default: face_pairs.csv beside the manifest")
    ] = None,
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "multistage",
    mllm_model: MllmModel = None,
    licence_px: Annotated[
        list[int] | None,
        typer.Option(
            "--licence-px",
            help="labelled manifests: also score every face pair with its second photo "
            "made a licence photo this tall (repeatable; default 120; 0 turns it off)",
        ),
    ] = None,
    licence_grey: Annotated[bool, typer.Option("--licence-grey/--licence-colour")] = True,
    licence_quality: Annotated[int, typer.Option(help="JPEG quality of those licence photos")] = 35,
    as_json: Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")] = False,
) -> None:
    """Score every judgment against a labelled manifest (plates, faces, presence, latency), or whole
    verdicts against a submissions manifest (automation, false FAIL, fraud caught, false PASS)."""
    from compliance.evaluation.licence import LicenceLook
    from compliance.evaluation.manifest import read_face_pairs, read_manifest
    from compliance.evaluation.runner import agreement, cascaded, collect, score
    from compliance.evaluation.spoof import is_spoof_manifest
    from compliance.evaluation.submissions import is_submissions_manifest
    from compliance.pipeline import CASCADE, CASCADE_STAGES
    from compliance.pipelines import get_pipelines

    settings = settings_for(mllm_model)
    with user_errors():
        pipeline_choice(pipeline)
        if not manifest.is_file():
            raise UserError(f"{manifest}: no such manifest")
        if is_submissions_manifest(manifest):
            _evaluate_submissions(manifest, pipeline, settings, as_json)
            return
        if is_spoof_manifest(manifest):
            _evaluate_spoofs(manifest, pipeline, settings, as_json)
            return
        try:
            looks = [LicenceLook(px, licence_grey, licence_quality) for px in (licence_px or [120]) if px]
        except ValueError as exc:
            raise UserError(str(exc)) from None
        rows = read_manifest(manifest)
        pairs_path = pairs or manifest.parent / "face_pairs.csv"
        if pairs is not None and not pairs_path.is_file():
            raise UserError(f"{pairs_path}: no such face-pairs file")
        face_pairs = read_face_pairs(pairs_path) if pairs_path.is_file() else []
        missing = [r.file for r in rows if not r.path.is_file()]
        if missing:
            raise UserError(f"{len(missing)} file(s) named in {manifest} are missing, e.g. {missing[0]}")
        engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))
        collected = {}
        with progress_bar() as bar:
            for name, engine in engines.items():
                task = bar.add_task(name, total=len(rows) + len(face_pairs) * (1 + len(looks)), item="")
                collected[name] = collect(
                    engine,
                    rows,
                    face_pairs,
                    settings,
                    progress=lambda item, t=task: bar.update(t, advance=1, item=item),
                    licence_looks=looks,
                )
        reports = {name: score(rows, got, settings) for name, got in collected.items()}
        agreed = agreement(rows, *collected.items()) if len(collected) == 2 else None
        share = None
        if pipeline == CASCADE:
            # Each pipeline judged every photo, so each is scored alone beside the cascade.
            got, share = cascaded(rows, *(collected[name] for name in CASCADE_STAGES), settings)
            reports[CASCADE] = score(rows, got, settings)
    if as_json:
        report: dict[str, object] = {"pipelines": {n: r.as_json() for n, r in reports.items()}}
        if agreed is not None:
            report["agreement"] = agreed.as_json()
        if share is not None:
            report["cascade"] = share.as_json()
        print(json.dumps(report, ensure_ascii=False))
        return
    from compliance.terminal import print_agreement, print_cascade_share, print_eval

    print_eval(out, reports)
    if agreed is not None:
        print_agreement(out, agreed)
    if share is not None:
        print_cascade_share(out, share)


def _evaluate_submissions(manifest: Path, pipeline: str, settings: Settings, as_json: bool) -> None:
    from compliance.evaluation.submissions import judge_submissions, read_submissions, score_submissions
    from compliance.pipelines import get_pipelines

    rows = read_submissions(manifest)
    engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))
    with progress_bar() as bar:
        task = bar.add_task("submissions", total=len(rows), item="")
        verdicts = judge_submissions(
            engines, rows, settings, progress=lambda item: bar.update(task, advance=1, item=item), choice=pipeline
        )
    reports = {name: score_submissions(rows, got) for name, got in verdicts.items()}
    if as_json:
        print(
            json.dumps({"submissions": {n: r.model_dump(mode="json") for n, r in reports.items()}}, ensure_ascii=False)
        )
        return
    from compliance.terminal import print_submissions

    print_submissions(out, reports)


def _evaluate_spoofs(manifest: Path, pipeline: str, settings: Settings, as_json: bool) -> None:
    from compliance.evaluation.spoof import judge_spoofs, read_spoof_manifest, score_spoofs
    from compliance.pipelines import get_pipelines

    rows = read_spoof_manifest(manifest)
    engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))
    with progress_bar() as bar:
        task = bar.add_task("spoofs", total=len(rows), item="")
        judged = judge_spoofs(engines, rows, settings, progress=lambda item: bar.update(task, advance=1, item=item))
    live_min = settings.thresholds.live_min
    reports = {name: score_spoofs(rows, got, live_min) for name, got in judged.items()}
    if as_json:
        print(json.dumps({"spoof": {n: r.model_dump(mode="json") for n, r in reports.items()}}, ensure_ascii=False))
        return
    from compliance.terminal import print_spoofs

    print_spoofs(out, reports)


def compose(
    manifest: Annotated[Path, typer.Argument(help="labelled manifest.csv with identities (format of shared/eval/dev)")],
    out_dir: Annotated[Path, typer.Argument(help="folder for the composed photos and submissions.csv")],
    licence_px: Annotated[int, typer.Option(help="height of the licence photos, in pixels")] = 120,
    grey: Annotated[bool, typer.Option("--grey/--colour", help="licence photos in grey, or in colour")] = True,
    jpeg_quality: Annotated[int, typer.Option(help="JPEG quality of the licence photos")] = 35,
    seed: Annotated[int, typer.Option(help="draws which vehicle, impostor and plates each pair gets")] = 0,
) -> None:
    """Compose whole submissions (five cases per two portraits of one person) to score verdicts with `eval`."""
    from compliance.evaluation.compose import CASES
    from compliance.evaluation.compose import compose as compose_set
    from compliance.evaluation.licence import LicenceLook

    with user_errors():
        try:
            look = LicenceLook(licence_px, grey, jpeg_quality)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"{out_dir}: not a folder")
        written = spinner("composing", lambda: compose_set(manifest, out_dir, look, seed))
    out.print(
        f"{written.rows} submissions ({written.pairs} portrait pairs × {len(CASES)} cases: {', '.join(CASES)}), "
        f"licences {look.label}, in {written.manifest}"
    )
