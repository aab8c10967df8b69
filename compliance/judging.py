"""Stored submissions: accept a photo (blob first, then the row), then judge it and keep the verdict.

The CLI calls both steps in turn; the service's API calls ``accept`` and its workers ``judge``.
Sessions are short: no transaction stays open while a model runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from compliance import plates
from compliance.checks import PriorPhoto
from compliance.inspection import decide
from compliance.photos import Photo, load_photo, perceptual_hash
from compliance.pipelines import Pipeline
from compliance.settings import Settings
from compliance.store import registry, submissions
from compliance.store.blobs import BlobStore
from compliance.store.db import make_engine, session_factory, upgrade
from compliance.store.errors import UnknownDriver, UnknownVehicle
from compliance.store.models import SubmissionSource, SubmissionStatus
from compliance.verdicts import Verdict


@dataclass(frozen=True)
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: BlobStore

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Store:
        if migrate:
            upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        return cls(engine=engine, sessions=session_factory(engine), blobs=BlobStore(settings.blob_dir))


@dataclass(frozen=True, slots=True)
class Accepted:
    submission_id: str
    created: bool  # False when an idempotency key matched an earlier upload


def accept(
    store: Store,
    photo: Photo,
    *,
    carrier: str | int,
    driver: str | int,
    plate: str | None = None,
    job_id: str | None = None,
    site: str | None = None,
    job_start: datetime | None = None,
    job_end: datetime | None = None,
    idempotency_key: str | None = None,
    source: SubmissionSource = SubmissionSource.CLI,
    actor: str = "cli",
) -> Accepted:
    """Keep the photo and record the submission. ``driver`` is the driver's reference or id."""
    with store.sessions() as s, s.begin():
        found = registry.get_carrier(s, carrier)
        the_driver = (
            registry.get_driver(s, driver, carrier_id=found.id)
            if isinstance(driver, int)
            else registry.find_driver(s, found.id, driver)
        )
        if the_driver is None:
            raise UnknownDriver(driver, found.id)
        vehicle = None
        if plate:
            vehicle = registry.find_vehicle(s, found.id, plate)
            if vehicle is None:
                raise UnknownVehicle(plates.normalise(plate), found.id)
        carrier_id, driver_id = found.id, the_driver.id
    # The blob goes first: a row never points at a photo that is not there.
    store.blobs.put(photo.data)
    with store.sessions() as s, s.begin():
        created = submissions.create_submission(
            s,
            carrier_id=carrier_id,
            driver_id=driver_id,
            photo_sha256=photo.sha256,
            photo_phash=perceptual_hash(photo.image),
            source=source,
            vehicle_id=vehicle.id if vehicle else None,
            claimed_plate=vehicle.registered_plate if vehicle else None,
            capture_time=photo.capture_time,
            job_id=job_id,
            site=site,
            job_start=job_start,
            job_end=job_end,
            idempotency_key=idempotency_key,
            actor=actor,
        )
        return Accepted(created.submission.id, created.created)


def judge(store: Store, settings: Settings, submission_id: str, pipeline: Pipeline, *, actor: str = "cli") -> Verdict:
    """Run the pipeline on a stored submission, decide, and keep judgments and verdict."""
    with store.sessions() as s, s.begin():
        sub = submissions.set_status(s, submission_id, SubmissionStatus.PROCESSING, actor=actor)
        carrier = sub.carrier
        thresholds = registry.effective_thresholds(carrier, settings.thresholds)
        if sub.vehicle is not None:
            plates_to_match = [sub.vehicle.registered_plate]
        else:
            plates_to_match = registry.registered_plates(s, carrier.id)
        similar = submissions.find_similar_photos(
            s,
            carrier.id,
            sub.photo_phash,
            thresholds.duplicate_max_distance,
            exclude_submission_id=sub.id,
            created_before=sub.created_at,
        )
        prior = [
            PriorPhoto(p.submission.id, p.submission.driver_id, p.submission.created_at, p.distance) for p in similar
        ]
        licence_sha = sub.driver.licence_sha256
        scene_sha, driver_id, submitted_at = sub.photo_sha256, sub.driver_id, sub.created_at
        capture_time, job_window = sub.captured_at, sub.job_window

    try:
        scene = _stored_photo(store, settings, scene_sha)
        licence = _stored_photo(store, settings, licence_sha) if licence_sha else None
        judgments = pipeline.judge(scene.image, licence.image if licence else None, thresholds)
    except Exception as exc:
        with store.sessions() as s, s.begin():
            submissions.set_status(
                s, submission_id, SubmissionStatus.FAILED, error=f"{type(exc).__name__}: {exc}", actor=actor
            )
        raise
    verdict = decide(
        judgments,
        thresholds=thresholds,
        registered_plates=plates_to_match,
        licence_given=licence is not None,
        driver_id=driver_id,
        submitted_at=submitted_at,
        capture_time=capture_time,
        job_window=job_window,
        similar_photos=prior,
    )
    with store.sessions() as s, s.begin():
        submissions.record_verdict(s, submission_id, verdict, actor=actor)
    return verdict


def _stored_photo(store: Store, settings: Settings, sha256: str) -> Photo:
    return load_photo(store.blobs.get(sha256), **settings.photo_limits)
