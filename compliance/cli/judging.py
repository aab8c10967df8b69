"""Judging photos from the command line: ``check`` (nothing stored), ``submit`` (stored, judged,
kept) and ``demo`` (the bundled samples)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from compliance.cli.console import (
    PIPELINE_HELP,
    MllmModel,
    UserError,
    err,
    open_store,
    out,
    parse_when,
    pipeline_choice,
    settings_for,
    spinner,
    user_errors,
)

if TYPE_CHECKING:
    from compliance.judgments import Judgments
    from compliance.store import Store
    from compliance.verdicts import Verdict


def check(
    photo: Annotated[Path, typer.Argument(help="the scene photo: the driver by the vehicle")],
    licence: Annotated[Path | None, typer.Option("--licence", help="the driver's licence (ID) photo")] = None,
    plate: Annotated[list[str] | None, typer.Option("--plate", help="registered plate(s) to compare with")] = None,
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "multistage",
    mllm_model: MllmModel = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict and judgments as JSON")] = False,
) -> None:
    """Judge one photo against a plate and a licence photo, without storing anything."""
    from compliance.inspection import Facts, decide, decide_cascade
    from compliance.photos import read_photo_file
    from compliance.pipeline import CASCADE, CASCADE_STAGES
    from compliance.pipelines import get_pipelines

    settings = settings_for(mllm_model)
    with user_errors():
        pipeline_choice(pipeline)
        scene = read_photo_file(photo, **settings.photo_limits)
        face = read_photo_file(licence, **settings.photo_limits) if licence else None
        plates = [p for p in (plate or []) if p.strip()]
        engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))

        facts = Facts(
            thresholds=settings.thresholds,
            registered_plates=plates,
            licence_given=face is not None,
            capture_time=scene.capture_time,
            exif=scene.exif,
        )

        def decided(judgments: Judgments, second_opinion: Judgments | None = None) -> Verdict:
            return decide(judgments, second_opinion=second_opinion, **facts)

        def cascade_of(baseline: Judgments, mllm: Judgments | None) -> Verdict | None:
            return decide_cascade(baseline, mllm, settings=settings, **facts)

        def judged_by(name: str) -> Judgments:
            engine = engines[name]
            return spinner(
                f"judging with {name}",
                lambda: engine.judge(scene.image, face.image if face else None, settings.thresholds),
            )

        judged: dict[str, Judgments] = {}
        cascaded: Verdict | None = None
        for name in engines:
            judged[name] = judged_by(name)
            if pipeline == CASCADE:
                # The second stage (the MLLM) judges only if the baseline did not settle the photo.
                baseline, mllm = CASCADE_STAGES
                cascaded = cascade_of(judged[baseline], judged.get(mllm))
                if cascaded is not None:
                    break
        verdicts = {name: decided(j) for name, j in judged.items()}
        if cascaded is not None:
            verdicts[CASCADE] = cascaded
        elif len(judged) == 2:
            first, second = judged.values()
            verdicts["both"] = decided(first, second)
    if as_json:
        print(json.dumps({n: v.model_dump(mode="json") for n, v in verdicts.items()}, ensure_ascii=False, indent=2))
        return
    from compliance.terminal import verdict_panel

    for name, verdict in verdicts.items():
        out.print(verdict_panel(verdict, f"{photo.name} — {name}"))


def submit(
    photo: Annotated[Path, typer.Argument(help="the scene photo: the driver by the vehicle")],
    carrier: Annotated[str, typer.Option(help="carrier code")],
    driver: Annotated[str, typer.Option(help="the driver's reference (or id)")],
    plate: Annotated[str | None, typer.Option(help="the registered plate of the vehicle in the photo")] = None,
    job_id: Annotated[str | None, typer.Option(help="the job this photo is for")] = None,
    site: Annotated[
        str | None, typer.Option(help="the site's code (a registered site's, once the carrier has any)")
    ] = None,
    job_start: Annotated[str | None, typer.Option(help="job window start, ISO 8601")] = None,
    job_end: Annotated[str | None, typer.Option(help="job window end, ISO 8601")] = None,
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "multistage",
    mllm_model: MllmModel = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """Store a photo as a submission, judge it against the registry, and keep the verdict."""
    from compliance.photos import read_photo_file
    from compliance.pipeline import CASCADE
    from compliance.pipelines import get_pipelines
    from compliance.service.intake import Upload, accept, check_upload
    from compliance.service.verdicts import judge, judge_both, judge_cascade

    settings = settings_for(mllm_model)
    with user_errors():
        upload = Upload(
            carrier=carrier,
            driver=int(driver) if driver.isdigit() else driver,
            plate=plate,
            job_id=job_id,
            site=site,
            job_start=parse_when(job_start),
            job_end=parse_when(job_end),
            pipeline=pipeline,
        )
        check_upload(upload)
        scene = read_photo_file(photo, **settings.photo_limits)
        store = open_store()
        _require_vehicles(store, carrier)
        accepted = accept(store, scene, upload)
        engines = list(spinner("loading models", lambda: get_pipelines(pipeline, settings)).values())
        if pipeline == CASCADE:
            verdict = spinner("judging", lambda: judge_cascade(store, settings, accepted.submission_id, *engines))
        elif len(engines) == 2:
            verdict = spinner("judging", lambda: judge_both(store, settings, accepted.submission_id, *engines))
        else:
            verdict = spinner("judging", lambda: judge(store, settings, accepted.submission_id, engines[0]))
    if as_json:
        print(json.dumps({"submission": accepted.submission_id, **verdict.model_dump(mode="json")}, ensure_ascii=False))
        return
    from compliance.terminal import verdict_panel

    out.print(verdict_panel(verdict, f"submission {accepted.submission_id} — {photo.name}"))


def _require_vehicles(store: Store, carrier: str) -> None:
    from compliance.store import registry

    with store.sessions() as s:
        found = registry.get_carrier(s, carrier)
        if not registry.list_vehicles(s, found.id):
            raise UserError(
                f"carrier {found.code} has no registered vehicles: add one with `compliance registry add-vehicle`"
            )


def demo(
    folder: Annotated[Path, typer.Option(help="where the demo keeps its database and photos")] = Path("data/demo"),
) -> None:
    """Judge the bundled sample photos offline, against a demo carrier, and keep the results."""
    from compliance.demo import run_demo

    with user_errors():
        run_demo(folder, out, err)
