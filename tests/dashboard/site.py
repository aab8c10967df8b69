"""A dashboard to test against: the real app served by uvicorn on a free port, over a database
filled by the real store functions, with photos judged by the real multistage pipeline."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from compliance.api.app import create_app
from compliance.demo import samples_dir
from compliance.judgments import Judgments, Provenance
from compliance.mllm.parse import parse_answer
from compliance.mllm.prompt import Task
from compliance.photos import Photo, read_photo_file
from compliance.pipelines import get_pipeline
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import judge
from compliance.settings import Settings
from compliance.store import Store, registry, users, verdicts
from compliance.store.models import Role

SAMPLES = samples_dir()
PASSWORD = "correct horse battery"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"


class LiveServer:
    """uvicorn in a thread, on a port the OS picked (the socket is bound before the thread starts)."""

    def __init__(self, app: FastAPI) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def photo(name: str) -> Photo:
    return read_photo_file(SAMPLES / name, max_bytes=20_000_000, max_pixels=50_000_000)


@dataclass
class Site:
    url: str
    settings: Settings
    store: Store
    # Submission ids by what they show.
    passed: str = ""  # ACME, driver A by his car, plate 皖AUJ299: PASS, every box found; the MLLM misreads it
    review_taxi: str = ""  # ACME, the street photo, plate unreadable: REVIEW
    review_confusable: str = ""  # ACME, driver A's photo against 皖AUJZ99: REVIEW (confusable plate)
    other_review: str = ""  # OTHER carrier, the same photo against its own plate: REVIEW
    carriers: dict[str, int] = field(default_factory=dict)


# Who signs in: (username, role, carrier code or None for every carrier)
PEOPLE = (
    ("admin", Role.ADMIN, None),
    ("acme.reviewer", Role.REVIEWER, "ACME"),
    ("acme.viewer", Role.VIEWER, "ACME"),
    ("other.reviewer", Role.REVIEWER, "OTHER"),
)


def seed(settings: Settings) -> tuple[Store, dict[str, str], dict[str, int]]:
    """Two carriers with drivers, vehicles and people; four photos judged by the multistage pipeline."""
    store = Store.open(settings)
    carriers: dict[str, int] = {}
    with store.sessions() as s, s.begin():
        for code, plates in (("ACME", ("皖AUJ299", "皖A195K9", "皖AUJZ99")), ("OTHER", ("皖AUJZ99",))):
            carrier = registry.add_carrier(s, code=code, name=f"{code} Logistics")
            carriers[code] = carrier.id
            for plate in plates:
                registry.add_vehicle(s, carrier_id=carrier.id, registered_plate=plate, plate_color="blue", kind="car")
    for code, ref, licence in (("ACME", "A-001", "licence_a.jpg"), ("ACME", "B-002", "licence_b.jpg"),
                               ("OTHER", "C-001", "licence_a.jpg")):  # fmt: skip
        sha = store.blobs.put(photo(licence).data)
        with store.sessions() as s, s.begin():
            registry.add_driver(
                s, carrier_id=carriers[code], name=f"Driver {ref}", external_ref=ref, licence_sha256=sha
            )
    with store.sessions() as s, s.begin():
        for username, role, code in PEOPLE:
            users.add_user(
                s, username=username, password=PASSWORD, role=role, carrier_id=carriers[code] if code else None
            )

    pipeline = get_pipeline("multistage", settings)
    ids: dict[str, str] = {}
    for name, code, driver, plate, picture in (
        ("passed", "ACME", "A-001", "皖AUJ299", "a_by_car_wanAUJ299.jpg"),
        ("review_taxi", "ACME", "B-002", "皖A195K9", "street_taxi.jpg"),
        ("review_confusable", "ACME", "A-001", "皖AUJZ99", "a_by_car_wanAUJ299.jpg"),
        ("other_review", "OTHER", "C-001", "皖AUJZ99", "a_by_car_wanAUJ299.jpg"),
    ):
        accepted = accept(store, photo(picture), Upload(carrier=code, driver=driver, plate=plate, site="Hefei depot"))
        judge(store, settings, accepted.submission_id, pipeline)
        ids[name] = accepted.submission_id
    with store.sessions() as s, s.begin():
        # A second opinion on the PASS: what an MLLM wrote, read by the MLLM pipeline's own parser.
        verdicts.record_judgment(s, ids["passed"], mllm_judgments(MLLM_ANSWER))
    return store, ids, carriers


# It misreads the last character of the plate: the pipelines disagree on the plate, on a PASS.
MLLM_ANSWER = (
    '{"person": "yes", "people": 1, "vehicle": "yes", "kind": "car", "plate": "皖AUJ298", "color": "blue", '
    '"rows": 1, "face": "yes", "licence_face": "yes", "same": "yes"}'
)


def mllm_judgments(answer: str) -> Judgments:
    """Judgments as compliance.mllm.pipeline builds them from an answer (no token log-probabilities)."""
    parsed = parse_answer(answer, Task.SUBMISSION)
    return Judgments(
        person=parsed.person,
        vehicle=parsed.vehicle,
        plate=parsed.plate,
        face=parsed.face,
        provenance=Provenance(
            pipeline="mllm",
            models={"mllm:openai:Qwen/Qwen2-VL-2B-Instruct": "served"},
            raw_output=answer,
            output_errors=parsed.errors,
        ),
    )


def serve(database_url: str, folder: Path, **overrides: object) -> tuple[LiveServer, Site]:
    """``overrides``: more settings (a private broker's ``broker_url``, say)."""
    settings = Settings(
        database_url=database_url,
        blob_dir=folder / "blobs",
        session_secret_file=folder / "session-secret",
        **overrides,  # type: ignore[arg-type]
    )
    store, ids, carriers = seed(settings)
    server = LiveServer(create_app(settings))
    return server, Site(url="", settings=settings, store=store, carriers=carriers, **ids)
