"""``compliance demo-data``: SYNTHETIC history at scale, so the dashboard can be tried and timed.

What is invented is the **claims**: carriers (codes start with ``SYN-``), drivers, vehicles, which
driver and which registered vehicle each upload names, its site and job, the upload times over
months, and the reviewers' decisions. What the machine saw is **never** invented: each photo is
one of the bundled samples, or a copy of one made blurred, dark, small or cropped for a story the
samples lack (stored as a blob like any photo), and it is judged once per licence photo by the real
multistage pipeline. Every submission over that photo carries exactly those judgments (readings,
boxes, colours, similarities), and its verdict is what the product's policy decides from them
against the submission's claims: a claimed plate or driver that differs from what the photo shows
gets the verdict the product gives that difference. A reviewer's decision says what the photo
really shows (``Scene.truth``), never a made-up reading.

Left out, because a few re-used photos cannot show them honestly (``LEFT_OUT``): duplicate photos
(every photo is re-used by construction; each submission's perceptual hash is random, so the store
finds no near-duplicates), liveness, the EXIF checks (capture time against a job window, position
against a site, editing software, camera make: the samples carry no EXIF, and no job window or
site position is claimed), and the MLLM (no multimodal model runs offline on a laptop, so no
second opinion and no pipeline agreement). The overview names them.

Registry rows go through the store's own functions. The history goes in as bulk inserts (tens of
seconds for 100,000 submissions, not the hours one judged photo at a time would take), written
the way the store writes it: hash bands, one current verdict. What making a verdict current writes
(its copy on the submission, its reasons in ``submission_reasons``, the plate review) and the
verdict's audit event come from the store's own ``verdicts.current_verdict_rows`` and
``verdicts.verdict_event``, as rows to insert in bulk.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from PIL import Image, ImageEnhance, ImageFilter
from rich.console import Console

from compliance import plates
from compliance.checks.liveness import FaceIsLive
from compliance.checks.origin import FromCamera, NotEdited, PositionRecorded, TakenAtSite
from compliance.checks.policy import DEFAULT_CHECKS, Policy
from compliance.checks.provenance import NotReused, TakenDuringJob
from compliance.demo import samples_dir
from compliance.inspection import decide
from compliance.judgments import Judgments
from compliance.photos import load_photo
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
CHUNK = 5000
REVIEWERS = ("reviewer.zhang", "reviewer.li", "reviewer.wang", "reviewer.chen")
SYNTHETIC_PREFIX = "SYN-"

# What the synthetic history leaves out, and the policy it decides with: the product's, less those checks.
LEFT_OUT = (
    "duplicate photos",
    "liveness",
    "EXIF (capture time, position, editing app, camera)",
    "the MLLM and the pipelines' agreement",
)
_LEFT_OUT_CHECKS = (NotReused, FaceIsLive, TakenDuringJob, TakenAtSite, PositionRecorded, NotEdited, FromCamera)


class SyntheticPolicy(Policy):
    """The product's policy without the checks the synthetic history leaves out (``LEFT_OUT``)."""

    version = f"{Policy.version}-synthetic"


POLICY = SyntheticPolicy(tuple(c for c in DEFAULT_CHECKS if not isinstance(c, _LEFT_OUT_CHECKS)))

# The overview's banner, in both languages (the dashboard's catalogue holds the same text).
NOTE_EN = (
    "SYNTHETIC history (compliance demo-data): carriers, drivers, vehicles, times and reviews are invented; "
    "every reading, box and similarity is what the multistage pipeline finds on the bundled photos (some "
    "blurred, darkened, shrunk or cropped from them). Left out: duplicate photos, liveness, EXIF (capture "
    "time, position, editing app, camera) and the MLLM."
)
NOTE_ZH = (
    "合成数据（compliance demo-data）：承运商、司机、车辆、时间和人工审核均为虚构；照片上的每个识别结果、"
    "框和相似度都是多阶段流水线在内置样例照片（部分为其模糊、调暗、缩小或裁剪后的副本）上的真实结果。"
    "未包含：重复照片、活体检测、EXIF（拍摄时间、位置、修图软件、相机）和多模态大模型。"
)


@dataclass(frozen=True, slots=True)
class Truth:
    """What a photo really shows, as a reviewer sees it: whose face (``"a"``: the person of
    licence_a.jpg; ``"other"``: someone on neither licence; None: nobody), a vehicle, its plate."""

    person: Literal["a", "other"] | None
    vehicle: bool
    plate: str | None


def _blurred(radius: float) -> Callable[[Image.Image], Image.Image]:
    return lambda image: image.filter(ImageFilter.GaussianBlur(radius))


def _darkened(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda image: ImageEnhance.Brightness(image).enhance(factor)


def _shrunk(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda image: image.resize((round(image.width * factor), round(image.height * factor)), Image.LANCZOS)


def _left(width: int) -> Callable[[Image.Image], Image.Image]:
    return lambda image: image.crop((0, 0, width, image.height))


@dataclass(frozen=True, slots=True)
class Scene:
    """A photo the history shows: a bundled sample, or a copy of one made by ``derive``."""

    key: str
    sample: str
    truth: Truth
    derive: Callable[[Image.Image], Image.Image] | None = None

    def photo(self) -> bytes:
        """The photo's bytes: the sample's, or its derived copy as a JPEG (the same bytes every run)."""
        data = (samples_dir() / self.sample).read_bytes()
        if self.derive is None:
            return data
        with Image.open(io.BytesIO(data)) as image:
            made = self.derive(image.convert("RGB"))
        out = io.BytesIO()
        made.save(out, "JPEG", quality=90)
        return out.getvalue()


COMPOSITE = "a_by_car_wanAUJ299.jpg"
A_BY_CAR = Truth("a", True, "皖AUJ299")
SCENES = (
    Scene("a_by_car", COMPOSITE, A_BY_CAR),
    Scene("parked_car", "parked_car_wanA195K9.jpg", Truth(None, True, "皖A195K9")),
    Scene("street_taxi", "street_taxi.jpg", Truth("other", True, None)),  # US plates: no Chinese plate
    # Stories the samples lack, made from the composite; what they show is still driver A by 皖AUJ299.
    Scene("blurred", COMPOSITE, A_BY_CAR, _blurred(3)),
    Scene("shaken", COMPOSITE, A_BY_CAR, _blurred(6)),
    Scene("dark", COMPOSITE, A_BY_CAR, _darkened(0.25)),
    Scene("small", COMPOSITE, A_BY_CAR, _shrunk(0.2)),
    # The composite's left part: driver A alone (the car starts at x=605).
    Scene("no_vehicle", COMPOSITE, Truth("a", False, None), _left(605)),
)
LICENCES = ("licence_a.jpg", "licence_b.jpg")  # a driver's licence photo: index 0 is driver A's face
# Vehicles every synthetic carrier registers besides its random ones: the plates the photos show,
# and a look-alike of the composite's (2 and Z), for the claims that tell their stories.
PHOTO_VEHICLES = (("皖AUJ299", "blue", "car"), ("皖A195K9", "blue", "truck"), ("皖AUJZ99", "blue", "car"))
LOOKALIKE = "皖AUJZ99"

Whose = Literal["a", "b", "any"]
Which = Literal["shown", "lookalike", "other", "usual"]


@dataclass(frozen=True, slots=True)
class Story:
    """What a submission claims over which photo: ``whose`` licence its driver has (``a``: the face
    in the composite; ``b``: another's), ``which`` vehicle it names (``shown``: the one whose plate
    the photo shows; ``lookalike``; ``other``: another of the fleet; ``usual``: the driver's own).
    The verdict is not part of it: the policy decides it."""

    name: str
    scene: str
    whose: Whose
    which: Which
    weight: float
    status: str = "decided"


STORIES = (
    Story("as registered", "a_by_car", "a", "shown", 70.0),
    Story("another vehicle named", "a_by_car", "a", "other", 3.5),
    Story("a look-alike plate named", "a_by_car", "a", "lookalike", 1.5),
    Story("another driver named", "a_by_car", "b", "shown", 6.0),
    Story("nobody beside the car", "parked_car", "any", "shown", 2.0),
    Story("no vehicle in the photo", "no_vehicle", "a", "usual", 0.8),
    Story("someone else by a taxi", "street_taxi", "any", "usual", 4.0),
    Story("blurred", "blurred", "a", "shown", 2.0),
    Story("shaken", "shaken", "a", "shown", 2.0),
    Story("dark", "dark", "a", "shown", 1.2),
    Story("too small", "small", "a", "shown", 1.0),
    Story("waiting", "a_by_car", "a", "shown", 0.3, status="pending"),
    Story("failed", "a_by_car", "a", "shown", 0.1, status="failed"),
)


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


@dataclass
class DemoDataSummary:
    carriers: int = 0
    vehicles: int = 0
    drivers: int = 0
    submissions: int = 0
    photos: int = 0
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
            f"({self.reviews:,} by reviewers; {self.in_queue:,} REVIEW verdicts still waiting in the queue). "
            f"Every judgment is the multistage pipeline's on one of {self.photos} photos (the bundled samples and "
            f"copies of them); left out: {', '.join(LEFT_OUT)}."
        )


# REVIEW verdicts older than this are mostly decided by a person; newer ones wait in the queue.
REVIEW_BACKLOG = timedelta(days=2)


@dataclass(frozen=True)
class _Judged:
    """A photo judged by the real pipeline against one licence photo."""

    sha256: str
    judgments: Judgments
    data: dict[str, Any]  # the same, as JSON: what every submission over it stores
    model_version: str


@dataclass(frozen=True)
class _Decided:
    """The policy's verdict on a judged photo against one claimed plate."""

    outcome: str
    reasons: list[str]
    results: list[dict[str, Any]]
    data: dict[str, Any]  # the judgments the verdict rests on (the stored judgments)


@dataclass(frozen=True)
class _Fleet:
    carrier_id: int
    carrier: SyntheticCarrier
    vehicles: list[tuple[int, str, str]]  # id, plate, colour: the random ones
    shown: dict[str, tuple[int, str, str]]  # the photo vehicles, by plate
    drivers: dict[int, list[int]]  # by the index of their licence photo in LICENCES


def generate(
    store: Any, settings: Settings, *, submissions: int, days: int = 180, seed: int = 7, console: Console | None = None
) -> DemoDataSummary:
    """Add the synthetic carriers and ``submissions`` submissions spread over ``days`` up to now."""
    started = time.perf_counter()
    rng = random.Random(seed)
    console = console or Console(stderr=True)
    summary = DemoDataSummary(database=settings.database_url)
    with store.sessions() as s:
        codes = [c.code for c in CARRIERS]
        taken = set(s.scalars(sa.select(Carrier.code).where(Carrier.code.in_(codes))))
    if taken:
        raise ValueError(
            f"this database already holds synthetic carriers ({', '.join(sorted(taken))}): use a fresh database"
        )

    with console.status("judging the photos with the multistage pipeline (the sample photos and copies of them)"):
        licences, judged = _judge_scenes(store, settings)
    with console.status("registering the synthetic carriers, vehicles and drivers"):
        fleets = _register(store, rng, licences)
    summary.carriers = len(fleets)
    summary.vehicles = sum(len(f.vehicles) + len(f.shown) for f in fleets)
    summary.drivers = sum(len(d) for f in fleets for d in f.drivers.values())
    summary.photos = len(SCENES)

    writer = _Writer(store, settings, rng, judged, fleets, days=days, total=submissions)
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


def _judge_scenes(store: Any, settings: Settings) -> tuple[list[str], dict[tuple[str, int], _Judged]]:
    """Store the licence photos and every scene's photo, and judge each scene against each licence
    photo with the real multistage pipeline: the only judging the history does."""
    photos, judged = _judged_scenes(settings)
    for data in photos:
        store.blobs.put(data)
    return [hashlib.sha256(data).hexdigest() for data in photos[: len(LICENCES)]], judged


# The judgments of the scenes, per pipeline instance and thresholds: the same photos judged again in
# one process (the tests make many histories) give the same judgments.
_JUDGED: dict[tuple[int, str], tuple[list[bytes], dict[tuple[str, int], _Judged]]] = {}


def _judged_scenes(settings: Settings) -> tuple[list[bytes], dict[tuple[str, int], _Judged]]:
    """The licence photos' and scenes' bytes, and each scene judged against each licence photo.
    Against the second licence photo only the faces are compared again (``compare_faces``, the stage
    ``judge`` runs for them): nothing else the pipeline finds depends on the licence photo, and the
    scene's face keeps its liveness. tests/test_demo_data.py holds the result to a full ``judge``."""
    pipeline = get_pipeline("multistage", settings)
    key = (id(pipeline), settings.thresholds.model_dump_json())
    if key in _JUDGED:
        return _JUDGED[key]
    licences = [load_photo((samples_dir() / name).read_bytes(), **settings.photo_limits) for name in LICENCES]
    photos = [licence.data for licence in licences]
    judged: dict[tuple[str, int], _Judged] = {}
    for scene in SCENES:
        photo = load_photo(scene.photo(), **settings.photo_limits)
        photos.append(photo.data)
        first = pipeline.judge(photo.image, licences[0].image, settings.thresholds)
        for index, licence in enumerate(licences):
            judgments = first
            if index:
                face = pipeline.compare_faces(photo.image, licence.image, settings.thresholds)
                if face.scene_box == first.face.scene_box:
                    live = {"live": first.face.live, "live_score": first.face.live_score}
                    face = face.model_copy(update={**live, "live_threshold": first.face.live_threshold})
                    judgments = first.model_copy(update={"face": face})
                else:  # not the face judge found: judge it all again
                    judgments = pipeline.judge(photo.image, licence.image, settings.thresholds)
            version = models_version(judgments.provenance.models)
            judged[scene.key, index] = _Judged(photo.sha256, judgments, judgments.model_dump(mode="json"), version)
    _JUDGED[key] = photos, judged
    return photos, judged


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
            shown = {}
            for plate, colour, kind in PHOTO_VEHICLES:
                vehicle = registry.add_vehicle(
                    s, carrier_id=carrier.id, registered_plate=plate, plate_color=colour, kind=kind, actor=ACTOR
                )
                shown[plate] = (vehicle.id, vehicle.registered_plate, colour)
            vehicles, seen = [], set(shown)
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
            drivers: dict[int, list[int]] = {index: [] for index in range(len(licences))}
            for number in range(1, DRIVERS_PER_CARRIER + 1):
                name = rng.choice(_FAMILY) + rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.6 else "")
                index = number % len(licences)
                driver = registry.add_driver(
                    s,
                    carrier_id=carrier.id,
                    name=name,
                    external_ref=f"{spec.code[4]}-{number:04d}",
                    licence_sha256=licences[index],
                    actor=ACTOR,
                )
                drivers[index].append(driver.id)
            fleets.append(_Fleet(carrier.id, spec, vehicles, shown, drivers))
    return fleets


class _Writer:
    """Makes the submissions in chunks and writes each chunk in one transaction."""

    def __init__(
        self,
        store: Any,
        settings: Settings,
        rng: random.Random,
        judged: dict[tuple[str, int], _Judged],
        fleets: list[_Fleet],
        *,
        days: int,
        total: int,
    ) -> None:
        self.store = store
        self.thresholds = settings.thresholds  # the synthetic carriers override none
        self.rng = rng
        self.judged = judged
        self.scenes = {scene.key: scene for scene in SCENES}
        self.fleets = fleets
        self.total = total
        self.now = utcnow()
        self.start = self.now - timedelta(days=days)
        self.span = (self.now - self.start).total_seconds()
        self.counts = {"judgments": 0, "verdicts": 0, "reviews": 0, "in_queue": 0}
        self.weights = [story.weight for story in STORIES]
        self.carrier_weights = [f.carrier.share for f in fleets]
        # A driver mostly drives one vehicle and works from one site.
        self.habits = {
            driver_id: (rng.choice(f.vehicles), rng.choice(f.carrier.sites))
            for f in fleets
            for drivers in f.drivers.values()
            for driver_id in drivers
        }
        self.decided: dict[tuple[str, int, str], _Decided] = {}
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
                    texts = _JsonTexts()
                    for model, rows in self._chunk(chunk):
                        if not rows:
                            continue
                        if dialect == "postgresql":
                            _copy(connection, model.__table__, rows, texts)
                        else:  # Core executemany: one statement per table, no ORM bookkeeping
                            as_text = _as_text(model.__table__)
                            connection.execute(as_text.insert(), texts.rows(model.__table__, rows))
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

    def decision(self, scene: str, licence: int, plate: str) -> _Decided:
        """The product's policy on the photo's real judgments against the claimed plate, once per
        (photo, licence photo, plate): the checks are the product's, only their answers are kept."""
        key = (scene, licence, plate)
        found = self.decided.get(key)
        if found is None:
            judged = self.judged[scene, licence]
            verdict = decide(
                judged.judgments,
                thresholds=self.thresholds,
                registered_plates=[plate],
                licence_given=True,
                policy=POLICY,
            )
            rests_on = (
                judged.data if verdict.judgments is judged.judgments else verdict.judgments.model_dump(mode="json")
            )
            found = self.decided[key] = _Decided(
                verdict.outcome.value,
                [r.value for r in verdict.reasons],
                [r.model_dump(mode="json") for r in verdict.results],
                rests_on,
            )
        return found

    def _claims(self, fleet: _Fleet, story: Story) -> tuple[int, int, tuple[int, str, str], str]:
        """Who and what a submission names: the licence photo of its driver (its index), the driver,
        the vehicle and the site."""
        rng = self.rng
        licence = rng.randrange(len(LICENCES)) if story.whose == "any" else "ab".index(story.whose)
        driver_id = rng.choice(fleet.drivers[licence])
        usual, site = self.habits[driver_id]
        shown = self.scenes[story.scene].truth.plate
        if story.which == "shown" and shown is not None:
            vehicle = fleet.shown[shown]
        elif story.which == "lookalike":
            vehicle = fleet.shown[LOOKALIKE]
        elif story.which == "other" or rng.random() < 0.1:  # now and then another vehicle of the fleet
            vehicle = rng.choice(fleet.vehicles)
        else:
            vehicle = usual
        return licence, driver_id, vehicle, site

    def _chunk(self, times: list[datetime]) -> list[tuple[type, list[dict[str, Any]]]]:
        rng = self.rng
        subs: list[dict[str, Any]] = []
        bands: list[dict[str, Any]] = []
        judgments: list[dict[str, Any]] = []
        verdicts: list[dict[str, Any]] = []
        reasons: list[dict[str, Any]] = []
        for created in times:
            fleet = rng.choices(self.fleets, self.carrier_weights)[0]
            story = rng.choices(STORIES, self.weights)[0]
            licence, driver_id, (vehicle_id, plate, colour), site = self._claims(fleet, story)
            judged = self.judged[story.scene, licence]
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            # Random, not the photo's: every photo is re-used, and the duplicate check is left out.
            phash = rng.getrandbits(64)
            status = story.status
            if status == "pending":
                status = rng.choice(("received", "queued", "processing"))
            sub: dict[str, Any] = {
                "id": sid,
                "carrier_id": fleet.carrier_id,
                "driver_id": driver_id,
                "vehicle_id": vehicle_id,
                "claimed_plate": plate,
                "photo_sha256": judged.sha256,
                "photo_phash": f"{phash:016x}",
                # The photos carry no EXIF: no capture time, and so no job window to hold it to.
                "capture_time": None,
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
            if status != "decided":
                continue

            machine_at = created + timedelta(seconds=max(1.5, rng.lognormvariate(1.6, 0.6)))
            decided = self.decision(story.scene, licence, plate)
            jid = self._new_id("judgments")
            judgments.append(
                {
                    "id": jid,
                    "submission_id": sid,
                    "pipeline": "multistage",
                    "model_version": judged.model_version,
                    "data": decided.data,
                    "created_at": machine_at,
                }
            )
            self._event(
                machine_at,
                "worker",
                "judgment.record",
                sid,
                None,
                {"judgment_id": jid, "pipeline": "multistage", "model_version": judged.model_version},
            )
            machine: dict[str, Any] = {
                "id": self._new_id("verdicts"),
                "submission_id": sid,
                "judgment_id": jid,
                "outcome": decided.outcome,
                "reasons": decided.reasons,
                "results": decided.results,
                "policy_version": POLICY.version,
                "pipeline": "multistage",
                "model_version": judged.model_version,
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
            needs_person = decided.outcome == "REVIEW"
            old_enough = self.now - created > REVIEW_BACKLOG
            if (needs_person and old_enough and rng.random() < 0.93) or (
                decided.outcome == "FAIL" and rng.random() < 0.02
            ):
                current = self._review(sub, machine, decided, self.scenes[story.scene].truth, licence, plate)
                verdicts.append(current)
            elif needs_person:
                self.counts["in_queue"] += 1
            # What the store writes when a verdict becomes current, made by the store's own function.
            rows = current_verdict_rows(
                current,
                carrier_id=fleet.carrier_id,
                submitted_at=created,
                judged_plate=decided.data["plate"],
                registered_plate=plate,
                registered_colour=colour,
            )
            sub.update(rows.submission, updated_at=current["created_at"])
            reasons += rows.reasons
            if rows.plate_review is not None:
                self.plate_reviews.append(rows.plate_review)
            self.counts["judgments"] += 1

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
        self, sub: dict[str, Any], machine: dict[str, Any], decided: _Decided, truth: Truth, licence: int, plate: str
    ) -> dict[str, Any]:
        """A reviewer's decision on the machine's verdict: what the photo really shows against what
        the submission claims, with corrections where the machine saw it otherwise."""
        rng = self.rng
        machine["is_current"] = False
        reviewer = rng.choice(REVIEWERS)
        at = min(sub["created_at"] + timedelta(minutes=rng.lognormvariate(5.0, 1.0)), self.now - timedelta(minutes=1))
        same = truth.person == "a" and licence == 0
        reasons: list[str] = []
        if truth.person is None:
            reasons.append(ReasonCode.PERSON_MISSING.value)
        elif not same:
            reasons.append(ReasonCode.FACE_MISMATCH.value)
        if not truth.vehicle:
            reasons.append(ReasonCode.VEHICLE_MISSING.value)
        elif truth.plate is None or plates.normalise(truth.plate) != plates.normalise(plate):
            reasons.append(ReasonCode.PLATE_MISMATCH.value)
        seen = decided.data
        corrections: dict[str, Any] = {}
        for name, field_name, now in (
            ("person_present", "person", truth.person is not None),
            ("vehicle_present", "vehicle", truth.vehicle),
        ):
            if seen[field_name]["present"] != ("yes" if now else "no"):
                corrections[name] = "yes" if now else "no"
        if truth.plate is not None and seen["plate"]["text"] != truth.plate:
            corrections["plate_text"] = truth.plate
        if truth.person is not None and seen["face"]["same_person"] != ("yes" if same else "no"):
            corrections["same_person"] = "yes" if same else "no"
        note = f"rejected in the review queue: {reasons[0]}" if reasons else "approved in the review queue"
        verdict = {
            **machine,
            "id": self._new_id("verdicts"),
            "outcome": "FAIL" if reasons else "PASS",
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


class _JsonTexts:
    """The JSON text of every value a chunk writes, made once per value: thousands of rows share one
    photo's judgments (3 KB), and serialising them row by row would cost seconds per 100,000. A
    value is known by its identity; the texts hold each value, so no identity is reused meanwhile."""

    def __init__(self) -> None:
        self._texts: dict[int, tuple[Any, str]] = {}

    def text(self, value: Any) -> str:
        found = self._texts.get(id(value))
        if found is None:
            # Compact: 100,000 copies of a photo's judgments, a tenth smaller without the spaces.
            found = self._texts[id(value)] = (value, json.dumps(value, separators=(",", ":")))
        return found[1]

    def rows(self, table: sa.Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows with their JSON values as the text sqlalchemy.JSON would bind (None as JSON null)."""
        names = [c.name for c in table.columns if isinstance(c.type, sa.JSON) and c.name in rows[0]]
        return [{**row, **{n: self.text(row[n]) for n in names}} for row in rows]


def _as_text(table: sa.Table) -> sa.Table:
    """``table`` with its JSON columns taken as text, to insert JSON serialised once (``_JsonTexts``)."""
    return sa.Table(
        table.name,
        sa.MetaData(),
        *(sa.Column(c.name, sa.Text() if isinstance(c.type, sa.JSON) else c.type) for c in table.columns),
    )


def _copy(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], texts: _JsonTexts) -> None:
    """PostgreSQL's COPY through psycopg, in the connection's transaction: several times faster
    than INSERTs. Every row of a table has the same keys; JSON goes as its text."""
    names = list(rows[0])
    as_json = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([texts.text(row[n]) if n in as_json and row[n] is not None else row[n] for n in names])


def _top(connection: sa.Connection, column: Any) -> int:
    return connection.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar_one()
