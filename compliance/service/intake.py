"""Accepting an upload: the photo and what the uploader says about it, validated, stored, queued.

The API, the CLI, the demo and the benches all come through here, so each rule lives once: the job
window, the site (a registered site's code where the carrier registers sites, else free text), the
pipeline asked for, idempotency (a replay answers from the row; a key reused with another photo is
refused before any byte is written), the driver and vehicle being the carrier's, and "a broker that
is down leaves the submission RECEIVED for the sweeper". Nothing accepted is lost: the photo is on
disk before the row that points at it is committed, and a refused request leaves nothing behind.
What the photo's EXIF says of where and how it was made is kept on the row for the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from compliance.photos import Photo, ReceivedPhoto
from compliance.pipelines import choices, pipeline_names
from compliance.queue.publisher import Publisher, published
from compliance.settings import Settings
from compliance.store import Store, backlog, registry, submissions
from compliance.store.models import EARLIEST, LATEST, SubmissionSource, SubmissionStatus, storable_time


class InvalidUpload(ValueError):
    """The upload's fields break a rule; ``code`` is the API's error code."""

    def __init__(self, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Upload:
    """What the uploader says about the photo. ``driver`` is the driver's id or the carrier's own
    reference; the vehicle is named by ``plate`` or ``vehicle_id``; ``pipeline`` None is the
    deployment's default."""

    carrier: str | int
    driver: str | int
    plate: str | None = None
    vehicle_id: int | None = None
    job_id: str | None = None
    site: str | None = None
    job_start: datetime | None = None
    job_end: datetime | None = None
    idempotency_key: str | None = None
    pipeline: str | None = None
    source: SubmissionSource = SubmissionSource.CLI
    actor: str = "cli"


@dataclass(frozen=True, slots=True)
class Accepted:
    submission_id: str
    created: bool  # False when an idempotency key matched an earlier upload
    status: SubmissionStatus


# Control characters (C0, DEL, C1): no upload field needs one, and one in a row broke every export.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def refuse_control_characters(**fields: object) -> None:
    """``InvalidUpload`` naming the first field that holds a control character."""
    for name, value in fields.items():
        if isinstance(value, str) and _CONTROL.search(value):
            raise InvalidUpload(f"{name} holds a control character", "invalid_text")


def check_upload(upload: Upload) -> None:
    """The rules on the fields alone, before anything is read or written."""
    refuse_control_characters(driver_ref=upload.driver, plate=upload.plate, job_id=upload.job_id, site=upload.site)
    start, end = upload.job_start, upload.job_end
    if (start is None) != (end is None):
        raise InvalidUpload("give both the job's start and end (job_start, job_end), or neither", "invalid_request")
    for name, when in (("job_start", start), ("job_end", end)):
        if when is not None and when.utcoffset() is None:
            raise InvalidUpload(f"{name} needs a UTC offset, e.g. 2026-11-25T08:00:00+08:00")
        if when is not None and not storable_time(when):
            raise InvalidUpload(f"{name} is outside the times a job can have ({EARLIEST.year}-{LATEST.year - 1})")
    if start is not None and end is not None and end < start:
        raise InvalidUpload("job_end is before job_start")
    if upload.pipeline is not None:
        try:
            pipeline_names(upload.pipeline)
        except ValueError:
            raise InvalidUpload(f"unknown pipeline {upload.pipeline!r}; choose from {', '.join(choices())}") from None


def accept(
    store: Store,
    photo: Photo | ReceivedPhoto,
    upload: Upload,
    *,
    status: SubmissionStatus = SubmissionStatus.RECEIVED,
) -> Accepted:
    """Keep the photo and record the submission (RECEIVED: the CLI then judges it in-process), in
    one transaction: the parties resolved in one query, the row written only if they are the
    carrier's and the key is new, the photo made durable before the commit. A replay answers the
    earlier submission; a refusal writes nothing."""
    check_upload(upload)
    with store.sessions() as s, s.begin():
        parties = registry.resolve_upload(
            s, upload.carrier, upload.driver, vehicle_id=upload.vehicle_id, plate=upload.plate
        )
        if upload.site is not None:
            # A carrier that registers sites names one by its code (UnknownSite: a 422 at the API).
            registry.check_site(s, parties.carrier_id, upload.site)
        created = submissions.create_submission(
            s,
            carrier_id=parties.carrier_id,
            driver_id=parties.driver_id,
            photo_sha256=photo.sha256,
            photo_phash=photo.phash,
            source=upload.source,
            vehicle_id=parties.vehicle_id,
            claimed_plate=parties.registered_plate,
            capture_time=photo.capture_time,
            job_id=upload.job_id,
            site=upload.site,
            job_start=upload.job_start,
            job_end=upload.job_end,
            idempotency_key=upload.idempotency_key,
            pipeline=upload.pipeline,
            status=status,
            actor=upload.actor,
            exif=photo.exif,
        )
        if created.created:
            # On disk (fsynced) before the row that points at it is committed; a failure here rolls
            # the row back, so a row never points at a photo that is not there.
            store.blobs.put(photo.data)
    if created.created:
        # Committed: an object store checks the photo is still there (see PhotoStore.confirm).
        store.blobs.confirm(photo.sha256, photo.data)
    return Accepted(created.id, created.created, created.status)


def receive(
    store: Store, publisher: Publisher, settings: Settings, photo: Photo | ReceivedPhoto, upload: Upload
) -> Accepted:
    """Accept and queue for judging. The row is committed QUEUED and then published, so an upload
    costs one transaction; if the broker is down it goes back to RECEIVED for the sweeper (and if
    this process dies in between, the sweeper finds it QUEUED with no message, as any lost one).
    A replay of an idempotency key answers the earlier submission as it stands."""
    accepted = accept(store, photo, upload, status=SubmissionStatus.QUEUED)
    if not accepted.created:
        return accepted
    chosen = upload.pipeline or settings.service_pipeline
    if published(lambda: publisher.judge(accepted.submission_id, chosen), f"submission {accepted.submission_id}"):
        return accepted
    with store.sessions() as s, s.begin():
        if backlog.unqueue(s, accepted.submission_id, actor=upload.actor):
            return Accepted(accepted.submission_id, True, SubmissionStatus.RECEIVED)
        return Accepted(accepted.submission_id, True, submissions.status_of(s, accepted.submission_id))
