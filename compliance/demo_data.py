"""``compliance demo-data``: SYNTHETIC history at scale, so the dashboard can be tried and timed.

Everything here is invented: carriers (codes start with ``SYN-``), drivers, vehicles, upload times
over months, the reason mix, reviewers' decisions and the two pipelines' disagreements. The photos
are the bundled samples, and the boxes drawn on them are what the real multistage pipeline finds
on those samples; the readings, similarities and verdicts are made up to fit each story.

Registry rows go through the store's own functions. The history goes in as bulk inserts (tens of
seconds for 100,000 submissions, not the hours one judged photo at a time would take), written
the way the store writes it: hash bands, one current verdict, the pipelines' agreement. What
making a verdict current writes (its copy on the submission, its reasons in ``submission_reasons``,
the plate review) and the verdict's audit event come from the store's own
``verdicts.current_verdict_rows`` and ``verdicts.verdict_event``, as rows to insert in bulk.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from compliance import agreement
from compliance.demo import samples_dir
from compliance.judgments import Judgments
from compliance.photos import read_photo_file
from compliance.pipelines import get_pipeline
from compliance.settings import Settings
from compliance.store import registry
from compliance.store.models import (
    HASH_BAND_BITS,
    HASH_BANDS,
    MACHINE,
    AuditEvent,
    Carrier,
    JudgmentRecord,
    PhotoHashBand,
    PlateReview,
    Submission,
    SubmissionReason,
    VerdictRecord,
    utcnow,
)
from compliance.store.verdicts import current_verdict_rows, models_version, verdict_event
from compliance.verdicts import ReasonCode

ACTOR = "demo-data"
POLICY = "policy-demo-synthetic"
CHUNK = 5000
REVIEWERS = ("reviewer.zhang", "reviewer.li", "reviewer.wang", "reviewer.chen")


@dataclass(frozen=True)
class SyntheticCarrier:
    code: str
    name: str
    share: float
    provinces: str
    sites: tuple[str, ...]


CARRIERS = (
    SyntheticCarrier(
        "SYN-EAST",
        "East China Freight (synthetic)",
        0.38,
        "皖苏沪浙",
        ("合肥仓", "南京江宁", "上海嘉定", "杭州下沙", "苏州园区"),
    ),
    SyntheticCarrier(
        "SYN-NORTH", "North Line Haulage (synthetic)", 0.26, "京津冀鲁", ("北京顺义", "天津港", "石家庄", "济南")
    ),
    SyntheticCarrier(
        "SYN-SOUTH", "Pearl River Express (synthetic)", 0.22, "粤闽桂", ("广州白云", "深圳宝安", "厦门", "南宁")
    ),
    SyntheticCarrier("SYN-WEST", "Western Routes (synthetic)", 0.14, "川渝陕", ("成都双流", "重庆两江", "西安")),
)
VEHICLES_PER_CARRIER = 140
DRIVERS_PER_CARRIER = 170
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "0123456789"
_FAMILY = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "平",
    "刚",
    "辉",
    "鹏",
    "华",
)
_CONFUSABLE = {"0": "D", "D": "0", "8": "B", "B": "8", "1": "7", "5": "S", "2": "Z"}


# The stories a submission can tell: (name, machine outcome, reasons, weight).
STORIES: tuple[tuple[str, str, tuple[str, ...], float], ...] = (
    ("pass", "PASS", (), 70.0),
    ("plate_mismatch", "FAIL", ("PLATE_MISMATCH",), 3.5),
    ("face_mismatch", "FAIL", ("FACE_MISMATCH",), 3.0),
    ("person_missing", "FAIL", ("PERSON_MISSING",), 2.0),
    ("vehicle_missing", "FAIL", ("VEHICLE_MISSING",), 0.8),
    ("duplicate", "FAIL", ("DUPLICATE_PHOTO",), 1.2),
    ("late", "FAIL", ("CAPTURE_TIME_OUTSIDE_WINDOW",), 1.0),
    ("plate_unreadable", "REVIEW", ("PLATE_UNREADABLE",), 4.0),
    ("plate_confusable", "REVIEW", ("PLATE_CONFUSABLE",), 1.5),
    ("plate_low_confidence", "REVIEW", ("PLATE_LOW_CONFIDENCE",), 2.0),
    ("face_uncertain", "REVIEW", ("FACE_UNCERTAIN",), 3.0),
    ("blur", "REVIEW", ("LOW_QUALITY_BLUR",), 2.0),
    ("dark", "REVIEW", ("LOW_QUALITY_DARK",), 1.2),
    ("no_face", "REVIEW", ("FACE_NOT_IN_SCENE",), 1.0),
    ("pending", "", (), 0.3),
    ("failed", "", (), 0.1),
)
# When the MLLM went live: submissions after this share of the period are judged by both pipelines.
BOTH_FROM = 0.55
BOTH_SHARE = 0.75
DISAGREE_SHARE = 0.07
# REVIEW verdicts older than this are mostly decided by a person; newer ones wait in the queue.
REVIEW_BACKLOG = timedelta(days=2)


@dataclass
class DemoDataSummary:
    carriers: int = 0
    vehicles: int = 0
    drivers: int = 0
    submissions: int = 0
    judgments: int = 0
    verdicts: int = 0
    reviews: int = 0
    in_queue: int = 0
    seconds: float = 0.0
    database: str = ""
    rows: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"SYNTHETIC demo history written to {self.database} in {self.seconds:.1f} s: "
            f"{self.carriers} carriers, {self.vehicles} vehicles, {self.drivers} drivers, "
            f"{self.submissions:,} submissions, {self.judgments:,} judgments, {self.verdicts:,} verdicts "
            f"({self.reviews:,} by reviewers; {self.in_queue:,} REVIEW verdicts still waiting in the queue)."
        )


@dataclass(frozen=True)
class _Photo:
    sha256: str
    judgments: dict[str, Any]  # the multistage pipeline's real judgments of the sample, as JSON


@dataclass(frozen=True)
class _Fleet:
    carrier_id: int
    carrier: SyntheticCarrier
    vehicles: list[tuple[int, str, str]]  # id, plate, colour
    drivers: list[int]


def generate(
    store: Any, settings: Settings, *, submissions: int, days: int = 180, seed: int = 7, console: Console | None = None
) -> DemoDataSummary:
    """Add the synthetic carriers and ``submissions`` submissions spread over ``days`` up to now."""
    started = time.perf_counter()
    rng = random.Random(seed)
    console = console or Console(stderr=True)
    summary = DemoDataSummary(database=settings.database_url)
    with store.sessions() as s:
        taken = set(s.scalars(sa.select(Carrier.code).where(Carrier.code.in_([c.code for c in CARRIERS]))))
    if taken:
        raise ValueError(
            f"this database already holds synthetic carriers ({', '.join(sorted(taken))}): use a fresh database"
        )

    with console.status("judging the sample photos with the multistage pipeline (for real boxes)"):
        photos = _sample_photos(store, settings)
    with console.status("registering the synthetic carriers, vehicles and drivers"):
        fleets = _register(store, rng, photos["licences"])
    summary.carriers = len(fleets)
    summary.vehicles = sum(len(f.vehicles) for f in fleets)
    summary.drivers = sum(len(f.drivers) for f in fleets)

    writer = _Writer(store, rng, photos, fleets, days=days, total=submissions)
    with console.status("") as status:
        for done in writer.run():
            status.update(f"writing synthetic history: {done:,} / {submissions:,} submissions")
    summary.submissions = submissions
    summary.judgments = writer.counts["judgments"]
    summary.verdicts = writer.counts["verdicts"]
    summary.reviews = writer.counts["reviews"]
    summary.in_queue = writer.counts["in_queue"]
    summary.seconds = time.perf_counter() - started
    return summary


def _sample_photos(store: Any, settings: Settings) -> dict[str, Any]:
    folder = samples_dir()
    pipeline = get_pipeline("multistage", settings)
    licence = read_photo_file(folder / "licence_a.jpg", **settings.photo_limits)
    licences = []
    for name in ("licence_a.jpg", "licence_b.jpg"):
        photo = read_photo_file(folder / name, **settings.photo_limits)
        licences.append(store.blobs.put(photo.data))
    scenes = {}
    for story_photo, name in (
        ("with_driver", "a_by_car_wanAUJ299.jpg"),
        ("no_person", "parked_car_wanA195K9.jpg"),
        ("street", "street_taxi.jpg"),
    ):
        photo = read_photo_file(folder / name, **settings.photo_limits)
        store.blobs.put(photo.data)
        judged = pipeline.judge(photo.image, licence.image, settings.thresholds)
        scenes[story_photo] = _Photo(photo.sha256, _rounded(judged.model_dump(mode="json")))
    return {"scenes": scenes, "licences": licences}


def _plate(rng: random.Random, province: str) -> tuple[str, str]:
    kind = rng.random()
    letter = rng.choice(_LETTERS)
    if kind < 0.12:  # new-energy: green, 8 characters
        return province + letter + rng.choice("DF") + "".join(rng.choice(_DIGITS) for _ in range(5)), "green"
    tail = "".join(rng.choice(_DIGITS if rng.random() < 0.7 else _LETTERS) for _ in range(5))
    return province + letter + tail, "yellow" if kind < 0.27 else "blue"


def _register(store: Any, rng: random.Random, licences: list[str]) -> list[_Fleet]:
    fleets = []
    with store.sessions() as s, s.begin():
        for spec in CARRIERS:
            carrier = registry.add_carrier(s, code=spec.code, name=spec.name, actor=ACTOR)
            vehicles, seen = [], set()
            while len(vehicles) < VEHICLES_PER_CARRIER:
                plate, colour = _plate(rng, rng.choice(spec.provinces))
                if plate in seen:
                    continue
                seen.add(plate)
                kind = "truck" if colour == "yellow" else rng.choice(("car", "van", "van", "car"))
                vehicle = registry.add_vehicle(
                    s, carrier_id=carrier.id, registered_plate=plate, plate_color=colour, kind=kind, actor=ACTOR
                )
                vehicles.append((vehicle.id, vehicle.registered_plate, colour))
            drivers = []
            for number in range(1, DRIVERS_PER_CARRIER + 1):
                name = rng.choice(_FAMILY) + rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.6 else "")
                driver = registry.add_driver(
                    s,
                    carrier_id=carrier.id,
                    name=name,
                    external_ref=f"{spec.code[4]}-{number:04d}",
                    licence_sha256=licences[number % len(licences)],
                    actor=ACTOR,
                )
                drivers.append(driver.id)
            fleets.append(_Fleet(carrier.id, spec, vehicles, drivers))
    return fleets


def _confusable(plate: str, rng: random.Random) -> str:
    spots = [i for i, ch in enumerate(plate) if i > 1 and ch in _CONFUSABLE]
    if not spots:
        return plate[:-1] + ("8" if plate[-1] != "8" else "B")
    i = rng.choice(spots)
    return plate[:i] + _CONFUSABLE[plate[i]] + plate[i + 1 :]


def _disagree_reason(field_name: str) -> str | None:
    # The "both" mode's reason codes, where this build has them.
    code = f"{agreement.DISAGREE_REASON_PREFIX}_{field_name.upper()}"
    return code if code in ReasonCode.__members__ else None


class _Writer:
    """Makes the submissions in chunks and writes each chunk in one transaction."""

    def __init__(
        self, store: Any, rng: random.Random, photos: dict[str, Any], fleets: list[_Fleet], *, days: int, total: int
    ) -> None:
        self.store = store
        self.rng = rng
        self.scenes: dict[str, _Photo] = photos["scenes"]
        self.fleets = fleets
        self.total = total
        self.now = utcnow()
        self.start = self.now - timedelta(days=days)
        self.span = (self.now - self.start).total_seconds()
        self.counts = {"judgments": 0, "verdicts": 0, "reviews": 0, "in_queue": 0}
        self.weights = [s[3] for s in STORIES]
        self.carrier_weights = [f.carrier.share for f in fleets]
        # A driver mostly drives one vehicle and works from one site.
        self.habits = {
            driver_id: (rng.choice(f.vehicles), rng.choice(f.carrier.sites)) for f in fleets for driver_id in f.drivers
        }
        self.models = {
            "multistage": {"demo-data": "synthetic", "yolox-nano": "c789161ed43c", "sface": "yunet+sface"},
            "mllm": {"demo-data": "synthetic", "qwen2-vl-2b-instruct": "synthetic"},
        }
        self.versions = {name: models_version(models) for name, models in self.models.items()}
        self.next_id: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        self.plate_reviews: list[dict[str, Any]] = []

    def _new_id(self, kind: str) -> int:
        self.next_id[kind] += 1
        return self.next_id[kind]

    def _event(
        self, at: datetime, actor: str, action: str, subject: str, before: Any, after: Any, why: str | None = None
    ) -> None:
        self.events.append(
            {
                "id": self._new_id("audit"),
                "at": at,
                "actor": actor,
                "action": action,
                "subject_type": "submission",
                "subject_id": subject,
                "before": before,
                "after": after,
                "reason": why,
            }
        )

    def _times(self) -> list[datetime]:
        """Upload times: more as the period goes on (the fleet grows), fewer on Sundays, mostly in
        working hours in China (UTC+8)."""
        times: list[datetime] = []
        local = timedelta(hours=8)
        while len(times) < self.total:
            moment = self.start + timedelta(seconds=(self.rng.random() ** 0.8) * self.span)
            day = (moment + local).date()
            if day.weekday() == 6 and self.rng.random() < 0.45:
                continue
            hour = min(23.9, max(0.0, self.rng.gauss(12.5, 3.6)))
            when = datetime(day.year, day.month, day.day, tzinfo=moment.tzinfo) - local + timedelta(hours=hour)
            if self.start <= when < self.now - timedelta(minutes=2):
                times.append(when)
        times.sort()
        return times

    def run(self) -> Iterator[int]:
        times = self._times()
        done = 0
        with self.store.engine.connect() as connection:
            dialect = connection.dialect.name
            if dialect == "sqlite":
                # Synthetic rows, made again at will: no need to wait for the disk at every commit.
                # (Set on the driver's connection: SQLite refuses it inside a transaction.)
                connection.connection.driver_connection.execute("PRAGMA synchronous = OFF")
            for begin in range(0, self.total, CHUNK):
                chunk = times[begin : begin + CHUNK]
                with connection.begin():
                    self.next_id = {
                        "judgments": _top(connection, JudgmentRecord.id),
                        "verdicts": _top(connection, VerdictRecord.id),
                        "audit": _top(connection, AuditEvent.id),
                    }
                    self.events = []
                    self.plate_reviews = []
                    for model, rows in self._chunk(chunk):
                        if not rows:
                            continue
                        if dialect == "postgresql":
                            _copy(connection, model.__table__, rows)
                        else:  # Core executemany: one statement per table, no ORM bookkeeping
                            connection.execute(model.__table__.insert(), rows)
                done += len(chunk)
                yield done
            if dialect == "postgresql":
                with connection.begin():
                    # Ids were given explicitly: move the sequences past them.
                    for table in ("judgments", "verdicts", "audit_events"):
                        connection.execute(
                            sa.text(
                                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                            )
                        )
            if dialect == "sqlite":
                connection.connection.driver_connection.execute("PRAGMA synchronous = FULL")

    def _chunk(self, times: list[datetime]) -> list[tuple[type, list[dict[str, Any]]]]:
        rng = self.rng
        subs: list[dict[str, Any]] = []
        bands: list[dict[str, Any]] = []
        judgments: list[dict[str, Any]] = []
        verdicts: list[dict[str, Any]] = []
        reasons: list[dict[str, Any]] = []
        for created in times:
            fleet = rng.choices(self.fleets, self.carrier_weights)[0]
            driver_id = rng.choice(fleet.drivers)
            (vehicle_id, plate, colour), site = self.habits[driver_id]
            if rng.random() < 0.1:  # now and then another vehicle of the fleet
                vehicle_id, plate, colour = rng.choice(fleet.vehicles)
            story, outcome, story_reasons, _ = rng.choices(STORIES, self.weights)[0]
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            phash = rng.getrandbits(64)
            status = "decided"
            if story == "pending":
                status = rng.choice(("received", "queued", "processing"))
            elif story == "failed":
                status = "failed"
            scene = self.scenes[
                "no_person" if story == "person_missing" else "street" if story == "vehicle_missing" else "with_driver"
            ]
            sub: dict[str, Any] = {
                "id": sid,
                "carrier_id": fleet.carrier_id,
                "driver_id": driver_id,
                "vehicle_id": vehicle_id,
                "claimed_plate": plate,
                "photo_sha256": scene.sha256,
                "photo_phash": f"{phash:016x}",
                # Camera time: local wall clock, no offset written, a little before the upload.
                "capture_time": (created + timedelta(hours=8, minutes=-rng.random() * 20)).replace(tzinfo=None),
                "capture_utc_offset_minutes": None,
                "job_id": f"JOB-{rng.randrange(10**7):07d}",
                "site": site,
                "job_start": None,
                "job_end": None,
                "source": "api" if rng.random() < 0.93 else "audit",
                "status": status,
                "outcome": None,
                "decided_at": None,
                "decided_by": None,
                "verdict_seconds": None,
                "pipelines_agree": None,
                "pipelines_disagree_on": None,
                "attempts": 0 if status == "received" else 1,
                "last_error": "TimeoutError: the model server did not answer in 60 s" if status == "failed" else None,
                "idempotency_key": None,
                "created_at": created,
                "updated_at": created,
            }
            subs.append(sub)
            for band in range(HASH_BANDS):
                value = (phash >> (64 - HASH_BAND_BITS * (band + 1))) & ((1 << HASH_BAND_BITS) - 1)
                bands.append({"submission_id": sid, "band": band, "value": value, "carrier_id": fleet.carrier_id})
            self._event(
                created,
                "api",
                "submission.create",
                sid,
                None,
                {"carrier_id": fleet.carrier_id, "driver_id": driver_id, "claimed_plate": plate, "site": site},
            )
            if not outcome:
                continue

            machine_at = created + timedelta(seconds=max(1.5, rng.lognormvariate(1.6, 0.6)))
            position = (created - self.start).total_seconds() / self.span
            both = position >= BOTH_FROM and rng.random() < BOTH_SHARE
            records = {"multistage": _judgments(scene, story, plate, colour, rng)}
            reasons_now = list(story_reasons)
            if both:
                mllm = _as_mllm(records["multistage"], rng)
                # Both read the same story, so they agree unless the MLLM is made to see a field otherwise.
                sub["pipelines_agree"] = True
                if rng.random() < DISAGREE_SHARE:
                    field_name = rng.choices(("plate", "face", "person", "vehicle"), (5, 3, 1, 1))[0]
                    _disagree(mllm, field_name, rng)
                    seen = [Judgments.model_validate(d) for d in (records["multistage"], mllm)]
                    compared = agreement.compare(*seen)
                    sub["pipelines_agree"] = compared.agree
                    sub["pipelines_disagree_on"] = ",".join(compared.disagreeing) or None
                    code = _disagree_reason(field_name)
                    if code:  # the "both" mode sends a disagreement to a person
                        outcome, reasons_now = "REVIEW", [*reasons_now, code]
                _mllm_answer(mllm)
                records["mllm"] = mllm
                machine_at += timedelta(seconds=rng.uniform(1, 6))
            judgment_ids = {}
            for pipeline, data in records.items():
                judgment_ids[pipeline] = jid = self._new_id("judgments")
                judgments.append(
                    {
                        "id": jid,
                        "submission_id": sid,
                        "pipeline": pipeline,
                        "model_version": self.versions[pipeline],
                        "data": data,
                        "created_at": machine_at,
                    }
                )
                self._event(
                    machine_at,
                    "worker",
                    "judgment.record",
                    sid,
                    None,
                    {"judgment_id": jid, "pipeline": pipeline, "model_version": self.versions[pipeline]},
                )
            decider = "mllm" if both else "multistage"
            machine: dict[str, Any] = {
                "id": self._new_id("verdicts"),
                "submission_id": sid,
                "judgment_id": judgment_ids[decider],
                "outcome": outcome,
                "reasons": reasons_now,
                "results": [
                    {"check": r.lower(), "outcome": outcome, "reason": r, "detail": "synthetic"} for r in reasons_now
                ]
                or [{"check": "all", "outcome": "PASS", "reason": None, "detail": "synthetic"}],
                "policy_version": POLICY,
                "pipeline": decider,
                "model_version": self.versions[decider],
                "decided_by": MACHINE,
                "note": None,
                "corrections": None,
                "is_current": True,
                "created_at": machine_at,
            }
            verdicts.append(machine)
            self._event(
                machine_at,
                "worker",
                "verdict.record",
                sid,
                *verdict_event(machine, status_before="processing", previous_id=None, previous_outcome=None),
            )
            current = machine
            needs_person = outcome == "REVIEW" or sub["pipelines_agree"] is False
            old_enough = self.now - created > REVIEW_BACKLOG
            if (needs_person and old_enough and rng.random() < 0.93) or (outcome == "FAIL" and rng.random() < 0.02):
                current = self._review(sub, machine, records[decider], plate, story)
                verdicts.append(current)
            elif needs_person:
                self.counts["in_queue"] += 1
            # What the store writes when a verdict becomes current, made by the store's own function.
            rows = current_verdict_rows(
                current,
                carrier_id=fleet.carrier_id,
                submitted_at=created,
                judged_plate=records[decider]["plate"],
                registered_plate=plate,
                registered_colour=colour,
            )
            sub.update(rows.submission, updated_at=current["created_at"])
            reasons += rows.reasons
            if rows.plate_review is not None:
                self.plate_reviews.append(rows.plate_review)
            self.counts["judgments"] += len(records)

        self.counts["verdicts"] += len(verdicts)
        return [
            (Submission, subs),
            (PhotoHashBand, bands),
            (JudgmentRecord, judgments),
            (VerdictRecord, verdicts),
            (SubmissionReason, reasons),
            (AuditEvent, self.events),
            (PlateReview, self.plate_reviews),
        ]

    def _review(
        self, sub: dict[str, Any], machine: dict[str, Any], seen: dict[str, Any], plate: str, story: str
    ) -> dict[str, Any]:
        """A reviewer's decision on the machine's verdict, with corrections where the machine was wrong."""
        rng = self.rng
        machine["is_current"] = False
        reviewer = rng.choice(REVIEWERS)
        at = min(sub["created_at"] + timedelta(minutes=rng.lognormvariate(5.0, 1.0)), self.now - timedelta(minutes=1))
        fail_odds = {"plate_confusable": 0.45, "face_uncertain": 0.35, "blur": 0.5, "dark": 0.5, "no_face": 0.4}
        passes = rng.random() < 0.3 if machine["outcome"] == "FAIL" else rng.random() >= fail_odds.get(story, 0.25)
        corrections: dict[str, Any] = {}
        reading = seen["plate"]["text"]
        truth = plate if passes else _confusable(plate, rng)
        # The reviewer types the plate where the reading was missing or wrong (mostly: not always).
        if reading != truth and rng.random() < 0.85:
            corrections["plate_text"] = truth
        if story in ("face_uncertain", "no_face", "face_mismatch") or "face" in (sub["pipelines_disagree_on"] or ""):
            corrections["same_person"] = "yes" if passes else "no"
        reasons: list[str] = []
        if not passes:
            if "plate_text" in corrections or story.startswith("plate"):
                reasons = ["PLATE_MISMATCH"]
            elif "same_person" in corrections:
                reasons = ["FACE_MISMATCH"]
            else:
                kept = [r for r in machine["reasons"] if not r.startswith(agreement.DISAGREE_REASON_PREFIX)]
                reasons = kept[:1] or ["PERSON_MISSING"]
        note = "approved in the review queue" if passes else f"rejected in the review queue: {reasons[0]}"
        verdict = {
            **machine,
            "id": self._new_id("verdicts"),
            "outcome": "PASS" if passes else "FAIL",
            "reasons": reasons,
            "decided_by": reviewer,
            "note": note,
            "corrections": corrections or None,
            "is_current": True,
            "created_at": at,
        }
        self._event(
            at,
            reviewer,
            "verdict.record",
            sub["id"],
            *verdict_event(
                verdict, status_before="decided", previous_id=machine["id"], previous_outcome=machine["outcome"]
            ),
            note,
        )
        self.counts["reviews"] += 1
        return verdict


def _copy(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL's COPY through psycopg, in the connection's transaction: several times faster
    than INSERTs. Every row of a table has the same keys; JSON goes as its text."""
    names = list(rows[0])
    as_json = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row[n]) if n in as_json and row[n] is not None else row[n] for n in names])


def _rounded(value: Any) -> Any:
    """Pixel coordinates and scores to two decimals: 100,000 copies of 17 digits add up."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _top(connection: sa.Connection, column: Any) -> int:
    return connection.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar_one()


def _judgments(scene: _Photo, story: str, plate: str, colour: str, rng: random.Random) -> dict[str, Any]:
    """The baseline's judgments for the story: the sample photo's real boxes, and readings that
    tell the story."""
    # Copies of the parts that change; box lists are replaced, never changed, so they are shared.
    data = {key: dict(value) for key, value in scene.judgments.items() if key != "plates"}
    person, vehicle, plate_j, face, quality = (
        data["person"],
        data["vehicle"],
        data["plate"],
        data["face"],
        data["quality"],
    )
    text: str | None = plate
    confidence = rng.uniform(0.9, 0.999)
    if story == "plate_mismatch":
        text = plate[:2] + "".join(rng.choice(_DIGITS) for _ in range(len(plate) - 2))
    elif story == "plate_unreadable":
        text, confidence = None, None
    elif story == "plate_confusable":
        text, confidence = _confusable(plate, rng), rng.uniform(0.7, 0.9)
    elif story == "plate_low_confidence":
        confidence = rng.uniform(0.45, 0.79)
    plate_j.update(
        text=text,
        raw_text=text,
        color=colour if text else "unknown",
        rows=1 if text else None,
        confidence=round(confidence, 4) if confidence is not None else None,
        char_confidences=None,
        plate_type=("new_energy" if len(plate) == 8 else "standard") if text else None,
        known_format="yes" if text else "unknown",
    )
    similarity: float | None = rng.uniform(0.45, 0.85)
    same = "yes"
    if story == "face_mismatch":
        similarity, same = rng.uniform(0.02, 0.25), "no"
    elif story == "face_uncertain":
        similarity, same = rng.uniform(0.30, 0.362), "unknown"
    elif story in ("no_face", "person_missing"):
        similarity, same = None, "unknown"
        face.update(scene_face="no", scene_box=None)
    face.update(similarity=round(similarity, 4) if similarity is not None else None, same_person=same)
    if story == "person_missing":
        person.update(present="no", count=0, boxes=[])
        face.update(scene_face="no", scene_box=None)
    if story == "vehicle_missing":
        vehicle.update(present="no", kind="unknown", boxes=[])
        plate_j.update(box=None, corners=None)
    if story == "blur":
        quality["blur"] = round(rng.uniform(4, 28), 1)
    elif story == "dark":
        quality["brightness"] = round(rng.uniform(12, 38), 1)
    latency = {"detect": rng.uniform(10, 30), "plate": rng.uniform(25, 80), "face": rng.uniform(40, 110)}
    # The story's reading is the only plate in view.
    data["plates"] = [plate_j] if plate_j.get("text") else []
    data["provenance"] = {
        "pipeline": "multistage",
        "models": {"demo-data": "synthetic"},
        "latency_ms": {k: round(v, 1) for k, v in latency.items()},
        "raw_output": None,
        "output_errors": [],
    }
    return data


def _as_mllm(baseline: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The MLLM seeing what the baseline saw; it answers in words: no boxes, no similarity."""
    data = {key: dict(value) for key, value in baseline.items() if key != "plates"}
    data["person"]["boxes"], data["vehicle"]["boxes"] = [], []
    text = data["plate"]["text"]
    data["plate"].update(box=None, corners=None, confidence=round(rng.uniform(0.8, 0.99), 3) if text else None)
    data["plates"] = [data["plate"]] if text else []
    data["face"].update(scene_box=None, licence_box=None, similarity=None, threshold=None)
    data["provenance"].update(
        pipeline="mllm", latency_ms={"generate": round(rng.uniform(350, 900), 1)}, output_errors=[]
    )
    return data


def _disagree(data: dict[str, Any], field_name: str, rng: random.Random) -> None:
    """Make the MLLM see one decisive field differently from the baseline."""
    if field_name == "plate":
        text = data["plate"]["text"]
        data["plate"]["text"] = data["plate"]["raw_text"] = (
            _confusable(text, rng) if text else "皖A" + "".join(rng.choice(_DIGITS) for _ in range(5))
        )
    elif field_name == "face":
        data["face"]["same_person"] = "unknown" if data["face"]["same_person"] == "yes" else "yes"
    elif field_name == "person":
        data["person"]["present"] = "no" if data["person"]["present"] == "yes" else "yes"
    else:
        data["vehicle"]["present"] = "unknown"


def _mllm_answer(data: dict[str, Any]) -> None:
    """The answer the MLLM would have written for these judgments, kept as its raw output."""
    answer = {
        "person": data["person"]["present"],
        "people": data["person"]["count"],
        "vehicle": data["vehicle"]["present"],
        "kind": data["vehicle"]["kind"],
        "plate": data["plate"]["text"],
        "color": data["plate"]["color"],
        "rows": data["plate"]["rows"],
        "face": data["face"]["scene_face"],
        "licence_face": data["face"]["licence_face"],
        "same": data["face"]["same_person"],
    }
    data["provenance"]["raw_output"] = json.dumps(answer, ensure_ascii=False)
