"""`compliance demo`: a demo carrier, its vehicles and drivers, and the bundled photos judged offline."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from compliance.photos import Photo, read_photo_file
from compliance.pipelines import get_pipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import judge
from compliance.settings import Settings
from compliance.store import Store, registry
from compliance.store.models import SubmissionSource
from compliance.terminal import OUTCOME_STYLE, verdict_panel
from compliance.verdicts import Verdict

CARRIER = "DEMO"


@dataclass(frozen=True, slots=True)
class DemoSubmission:
    photo: str
    driver: str
    plate: str
    story: str


SUBMISSIONS = (
    DemoSubmission("a_by_car_wanAUJ299.jpg", "A-001", "皖AUJ299", "driver A beside his car"),
    DemoSubmission("a_by_car_wanAUJ299.jpg", "B-002", "皖AUJ299", "driver B sends driver A's photo"),
    DemoSubmission("parked_car_wanA195K9.jpg", "A-001", "皖A195K9", "the car alone, nobody beside it"),
    DemoSubmission("street_taxi.jpg", "B-002", "皖A195K9", "someone else, by a taxi with US plates"),
)


def samples_dir() -> Path:
    return Path(str(resources.files("compliance") / "samples"))


def run_demo(folder: Path, out: Console, err: Console) -> list[Verdict]:
    # A fresh demo each run, so that its output does not depend on earlier runs.
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    settings = Settings(database_url=f"sqlite:///{folder.resolve() / 'compliance.db'}", blob_dir=folder / "blobs")
    samples = samples_dir()

    def photo(name: str) -> Photo:
        return read_photo_file(samples / name, **settings.photo_limits)

    with err.status("setting up the demo carrier"):
        store = Store.open(settings)
        with store.sessions() as s, s.begin():
            carrier = registry.add_carrier(s, code=CARRIER, name="Demo Logistics", actor="demo")
            for plate in ("皖AUJ299", "皖A195K9"):
                registry.add_vehicle(
                    s, carrier_id=carrier.id, registered_plate=plate, plate_color="blue", kind="car", actor="demo"
                )
        for ref, name, licence in (("A-001", "Driver A", "licence_a.jpg"), ("B-002", "Driver B", "licence_b.jpg")):
            sha = store.blobs.put(photo(licence).data)
            with store.sessions() as s, s.begin():
                registry.add_driver(
                    s, carrier_id=carrier.id, name=name, external_ref=ref, licence_sha256=sha, actor="demo"
                )
    with err.status("loading the multistage models"):
        pipeline = get_pipeline("multistage", settings)

    verdicts: list[Verdict] = []
    summary = Table(title="demo verdicts", header_style="bold")
    for col in ("photo", "driver", "plate", "verdict", "reasons"):
        summary.add_column(col, overflow="fold")
    for item in SUBMISSIONS:
        with err.status(f"judging {item.photo} for {item.driver}"):
            accepted = accept(
                store,
                photo(item.photo),
                Upload(
                    carrier=CARRIER, driver=item.driver, plate=item.plate, source=SubmissionSource.DEMO, actor="demo"
                ),
            )
            verdict = judge(store, settings, accepted.submission_id, pipeline, actor="demo")
        verdicts.append(verdict)
        out.print(verdict_panel(verdict, f"{item.photo} — {item.driver}, {item.plate}: {item.story}"))
        summary.add_row(
            item.photo,
            item.driver,
            item.plate,
            Text(verdict.outcome.value, OUTCOME_STYLE[verdict.outcome]),
            ", ".join(verdict.reasons),
        )
    out.print(summary)
    db = settings.database_url
    out.print(
        f"\nThe demo database is kept in {folder}/. Look around with:\n"
        f"  COMPLIANCE_DATABASE_URL={db} COMPLIANCE_BLOB_DIR={folder}/blobs compliance registry list\n"
        f"  compliance check {samples}/a_by_car_wanAUJ299.jpg --licence {samples}/licence_a.jpg --plate 皖AUJ299"
    )
    return verdicts
