"""The ``compliance`` command line (typer + rich). Errors end here as one line and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from compliance.dashboard.commands import demo_data, users_app
from compliance.mllm.commands import MllmModel, export_app, models_app, train_app
from compliance.settings import Settings, get_settings

if TYPE_CHECKING:
    from compliance.judging import Store
    from compliance.judgments import Judgments
    from compliance.verdicts import Verdict

app = typer.Typer(
    help="Checks drivers' photos by their vehicles (人车合照).", no_args_is_help=True, add_completion=False
)

out = Console()
err = Console(stderr=True)

T = TypeVar("T")

PIPELINE_HELP = "multistage, mllm or both (each pipeline, and one verdict from the two compared)"


class UserError(Exception):
    """Anything the user can fix: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the domain's boundary errors into one-line messages instead of tracebacks."""
    from compliance.evaluation.manifest import ManifestError
    from compliance.mllm.backends.base import MllmError
    from compliance.photos import PhotoRejected

    try:
        yield
    except (UserError, PhotoRejected, ManifestError, FileNotFoundError, MllmError) as exc:
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


def _settings(mllm_model: str | None = None) -> Settings:
    settings = get_settings()
    if mllm_model is not None:
        settings = settings.model_copy(update={"mllm_model": mllm_model})
    return settings


def _pipelines(choice: str) -> tuple[str, ...]:
    from compliance.pipelines import pipeline_names

    try:
        return pipeline_names(choice)
    except ValueError as exc:
        raise UserError(str(exc)) from None


@app.command()
def check(
    photo: Annotated[Path, typer.Argument(help="the scene photo: the driver by the vehicle")],
    licence: Annotated[Path | None, typer.Option("--licence", help="the driver's licence (ID) photo")] = None,
    plate: Annotated[list[str] | None, typer.Option("--plate", help="registered plate(s) to compare with")] = None,
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "multistage",
    mllm_model: MllmModel = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict and judgments as JSON")] = False,
) -> None:
    """Judge one photo against a plate and a licence photo, without storing anything."""
    from compliance.inspection import decide
    from compliance.photos import read_photo_file
    from compliance.pipelines import get_pipelines

    settings = _settings(mllm_model)
    with user_errors():
        _pipelines(pipeline)
        scene = read_photo_file(photo, **settings.photo_limits)
        face = read_photo_file(licence, **settings.photo_limits) if licence else None
        plates = [p for p in (plate or []) if p.strip()]
        engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))

        def decided(judgments: Judgments, second_opinion: Judgments | None = None) -> Verdict:
            return decide(
                judgments,
                thresholds=settings.thresholds,
                registered_plates=plates,
                licence_given=face is not None,
                capture_time=scene.capture_time,
                second_opinion=second_opinion,
            )

        judged = {
            name: spinner(
                f"judging with {name}",
                lambda e=engine: e.judge(scene.image, face.image if face else None, settings.thresholds),
            )
            for name, engine in engines.items()
        }
        verdicts = {name: decided(j) for name, j in judged.items()}
        if len(judged) == 2:
            first, second = judged.values()
            verdicts["both"] = decided(first, second)
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
    manifest: Annotated[
        Path,
        typer.Argument(
            help="labelled manifest.csv (format of shared/eval/dev), or a submissions manifest "
            "(columns photo,licence,registered_plate,expected,case; see `compliance compose`)"
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
    from compliance.evaluation.runner import agreement, collect, score
    from compliance.evaluation.submissions import is_submissions_manifest
    from compliance.pipelines import get_pipelines

    settings = _settings(mllm_model)
    with user_errors():
        _pipelines(pipeline)
        if not manifest.is_file():
            raise UserError(f"{manifest}: no such manifest")
        if is_submissions_manifest(manifest):
            _evaluate_submissions(manifest, pipeline, settings, as_json)
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
    if as_json:
        report: dict[str, object] = {"pipelines": {n: r.as_json() for n, r in reports.items()}}
        if agreed is not None:
            report["agreement"] = agreed.as_json()
        print(json.dumps(report, ensure_ascii=False))
        return
    from compliance.terminal import print_agreement, print_eval

    print_eval(out, reports)
    if agreed is not None:
        print_agreement(out, agreed)


def _evaluate_submissions(manifest: Path, pipeline: str, settings: Settings, as_json: bool) -> None:
    from compliance.evaluation.submissions import judge_submissions, read_submissions, score_submissions
    from compliance.pipelines import get_pipelines

    rows = read_submissions(manifest)
    engines = spinner("loading models", lambda: get_pipelines(pipeline, settings))
    with progress_bar() as bar:
        task = bar.add_task("submissions", total=len(rows), item="")
        verdicts = judge_submissions(
            engines, rows, settings, progress=lambda item: bar.update(task, advance=1, item=item)
        )
    reports = {name: score_submissions(rows, got) for name, got in verdicts.items()}
    if as_json:
        print(
            json.dumps({"submissions": {n: r.model_dump(mode="json") for n, r in reports.items()}}, ensure_ascii=False)
        )
        return
    from compliance.terminal import print_submissions

    print_submissions(out, reports)


@app.command()
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


db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
registry_app = typer.Typer(help="Carriers, their vehicles and drivers.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(registry_app, name="registry")
app.add_typer(models_app, name="models")
app.add_typer(export_app, name="export")
app.add_typer(train_app, name="train")
app.add_typer(users_app, name="users")
app.command("demo-data")(demo_data)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations up to head (every command that needs the database does this too)."""
    from compliance.store.db import upgrade

    settings = _settings()
    with user_errors():
        upgrade(settings.database_url)
    err.print(f"database at head: {settings.database_url}")


def _store() -> Store:
    from compliance.judging import Store

    return Store.open(_settings())


@registry_app.command("add-carrier")
def add_carrier(
    code: Annotated[str, typer.Argument(help="short unique code, e.g. ACME")],
    name: Annotated[str, typer.Option(help="display name")] = "",
) -> None:
    """Register a carrier."""
    from compliance.store import registry

    with user_errors():
        store = _store()
        with store.sessions() as s, s.begin():
            carrier = registry.add_carrier(s, code=code, name=name or code, actor="cli")
            out.print(f"carrier {carrier.code} (id {carrier.id})")


@registry_app.command("add-vehicle")
def add_vehicle(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    plate: Annotated[str, typer.Argument(help="registered plate, e.g. 京A12345")],
    color: Annotated[str | None, typer.Option(help="blue, yellow, green, white or black")] = None,
    kind: Annotated[str | None, typer.Option(help="car, van, truck, bus, motorcycle or trailer")] = None,
) -> None:
    """Register a vehicle by its plate."""
    from compliance.store import registry

    with user_errors():
        store = _store()
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            vehicle = registry.add_vehicle(
                s, carrier_id=found.id, registered_plate=plate, plate_color=color, kind=kind, actor="cli"
            )
            out.print(f"vehicle {vehicle.registered_plate} (id {vehicle.id}) for {found.code}")


@registry_app.command("add-driver")
def add_driver(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    name: Annotated[str, typer.Argument(help="the driver's name")],
    licence: Annotated[Path, typer.Option("--licence", help="the driver's licence (ID) photo")],
    ref: Annotated[str | None, typer.Option(help="the carrier's own reference for the driver")] = None,
) -> None:
    """Register a driver with his licence photo."""
    from compliance.photos import read_photo_file
    from compliance.store import registry

    settings = _settings()
    with user_errors():
        photo = read_photo_file(licence, **settings.photo_limits)
        store = _store()
        sha = store.blobs.put(photo.data)
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            driver = registry.add_driver(
                s, carrier_id=found.id, name=name, external_ref=ref, licence_sha256=sha, actor="cli"
            )
            out.print(f"driver {driver.name} (id {driver.id}, ref {driver.external_ref or '-'}) for {found.code}")


@registry_app.command("set-thresholds")
def set_thresholds(
    carrier: Annotated[str, typer.Argument(help="carrier code")],
    values: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs, e.g. blur_min=40 face_same_min=0.4")],
    reason: Annotated[str, typer.Option(help="why, for the audit trail")] = "set from the CLI",
) -> None:
    """Override decision thresholds for one carrier."""
    from compliance.store import registry

    overrides: dict[str, str] = {}
    for pair in values:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"expected NAME=VALUE, got {pair!r}")
        overrides[key.strip()] = value.strip()
    with user_errors():
        store = _store()
        with store.sessions() as s, s.begin():
            found = registry.get_carrier(s, carrier)
            registry.set_carrier_thresholds(s, found.id, overrides, actor="cli", reason=reason)
            out.print(f"{found.code}: {registry.effective_thresholds(found, _settings().thresholds).model_dump()}")


@registry_app.command("list")
def list_registry(
    carrier: Annotated[str | None, typer.Argument(help="carrier code; all when left out")] = None,
) -> None:
    """List carriers with their vehicles and drivers."""
    from rich.table import Table

    from compliance.store import registry

    with user_errors():
        store = _store()
        with store.sessions() as s:
            carriers = [registry.get_carrier(s, carrier)] if carrier else registry.list_carriers(s)
            if not carriers:
                raise UserError("the registry is empty: add a carrier with `compliance registry add-carrier CODE`")
            for c in carriers:
                table = Table(title=f"{c.code} — {c.name}", header_style="bold")
                for col in ("kind", "id", "plate / name", "colour / ref", "licence photo"):
                    table.add_column(col)
                for v in registry.list_vehicles(s, c.id):
                    table.add_row("vehicle", str(v.id), v.registered_plate, v.plate_color or "", "")
                for d in registry.list_drivers(s, c.id):
                    table.add_row(
                        "driver", str(d.id), d.name, d.external_ref or "", "yes" if d.licence_sha256 else "no"
                    )
                out.print(table)


def parse_when(text: str | None) -> datetime | None:
    """ISO 8601; a time without an offset is read in the configured local time zone."""
    if text is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not an ISO 8601 time such as 2026-11-25T08:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(_settings().thresholds.local_timezone))
    return value


@app.command()
def submit(
    photo: Annotated[Path, typer.Argument(help="the scene photo: the driver by the vehicle")],
    carrier: Annotated[str, typer.Option(help="carrier code")],
    driver: Annotated[str, typer.Option(help="the driver's reference (or id)")],
    plate: Annotated[str | None, typer.Option(help="the registered plate of the vehicle in the photo")] = None,
    job_id: Annotated[str | None, typer.Option(help="the job this photo is for")] = None,
    job_start: Annotated[str | None, typer.Option(help="job window start, ISO 8601")] = None,
    job_end: Annotated[str | None, typer.Option(help="job window end, ISO 8601")] = None,
    pipeline: Annotated[str, typer.Option(help=PIPELINE_HELP)] = "multistage",
    mllm_model: MllmModel = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the verdict as JSON")] = False,
) -> None:
    """Store a photo as a submission, judge it against the registry, and keep the verdict."""
    from compliance.judging import accept, judge, judge_both
    from compliance.photos import read_photo_file
    from compliance.pipelines import get_pipelines

    settings = _settings(mllm_model)
    with user_errors():
        _pipelines(pipeline)
        window = (parse_when(job_start), parse_when(job_end))
        if (window[0] is None) != (window[1] is None):
            raise UserError("give both --job-start and --job-end, or neither")
        if window[0] and window[1] and window[0] > window[1]:
            raise UserError("--job-start is after --job-end")
        scene = read_photo_file(photo, **settings.photo_limits)
        store = _store()
        _require_vehicles(store, carrier)
        accepted = accept(
            store,
            scene,
            carrier=carrier,
            driver=int(driver) if driver.isdigit() else driver,
            plate=plate,
            job_id=job_id,
            job_start=window[0],
            job_end=window[1],
        )
        engines = list(spinner("loading models", lambda: get_pipelines(pipeline, settings)).values())
        if len(engines) == 2:
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


@app.command()
def demo(
    folder: Annotated[Path, typer.Option(help="where the demo keeps its database and photos")] = Path("data/demo"),
) -> None:
    """Judge the bundled sample photos offline, against a demo carrier, and keep the results."""
    from compliance.demo import run_demo

    with user_errors():
        run_demo(folder, out, err)


# The service: keys, api, worker, sweeper, serve, audit (compliance/api/commands.py).
from compliance.api import commands as _service  # noqa: E402

app.add_typer(_service.keys_app, name="keys")
app.add_typer(_service.audit_app, name="audit")
for _command in (_service.api, _service.worker, _service.sweeper, _service.serve):
    app.command()(_command)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
