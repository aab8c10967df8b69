"""Submissions: creating them (idempotently, by key) and moving their status; reading one back.

Every function flushes and never commits; each change writes an audit event in the same
transaction. Recording is idempotent where a task may run twice: the same submission (by
idempotency key) is kept once, enforced by a unique index and ``INSERT … ON CONFLICT DO NOTHING``
(``_insert_unless_present``, which the verdicts module uses too).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from compliance import plates
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import IdempotencyConflict, InvalidSubmission, UnknownSubmission
from compliance.store.models import (
    HASH_BANDS,
    Driver,
    PhotoHashBand,
    Submission,
    SubmissionSource,
    SubmissionStatus,
    Vehicle,
    database_clock,
    new_submission_id,
    utcnow,
)
from compliance.store.registry import get_driver, get_vehicle
from compliance.store.similar import _band_value, _checked_phash

if TYPE_CHECKING:  # the photo module decodes images: the store needs only the type
    from compliance.photos import ExifFacts

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CreatedSubmission:
    id: str
    status: SubmissionStatus
    # False when the idempotency key named an earlier submission, which is returned instead.
    created: bool
    _session: Session = field(repr=False, compare=False)

    @property
    def submission(self) -> Submission:
        """The row as an ORM object (one more query: the upload's hot path does not need it)."""
        return self._session.get_one(Submission, self.id)


# Creating and moving submissions


def create_submission(
    session: Session,
    *,
    carrier_id: int,
    driver_id: int,
    photo_sha256: str,
    photo_phash: str,
    source: SubmissionSource | str,
    vehicle_id: int | None = None,
    claimed_plate: str | None = None,
    capture_time: datetime | None = None,
    job_id: str | None = None,
    site: str | None = None,
    job_start: datetime | None = None,
    job_end: datetime | None = None,
    idempotency_key: str | None = None,
    pipeline: str | None = None,
    status: SubmissionStatus = SubmissionStatus.RECEIVED,
    submission_id: str | None = None,
    actor: str = SYSTEM,
    exif: ExifFacts | None = None,
) -> CreatedSubmission:
    """Record an accepted photo (whose blob is stored before the transaction commits).

    ``capture_time`` is the EXIF time as read: naive (camera-local) or with the camera's offset.
    The job window's rules are the intake's (``compliance.service.intake``); the store keeps what
    the data must be: digests, the driver and vehicle being the carrier's, one submission per
    idempotency key. On the upload's hot path that is one INSERT … SELECT that writes only when
    the driver (and vehicle) are the carrier's and the key is new; the lookups that say why
    nothing was written run only then.
    """
    source = SubmissionSource(source)
    status = SubmissionStatus(status)
    if not _SHA256.fullmatch(photo_sha256):
        raise InvalidSubmission(f"photo_sha256 is not a SHA-256 hex digest: {photo_sha256!r}")
    phash = _checked_phash(photo_phash)
    now = utcnow()
    offset = capture_time.utcoffset() if capture_time is not None else None
    values: dict[str, Any] = {
        "id": submission_id or new_submission_id(),
        "carrier_id": carrier_id,
        "driver_id": driver_id,
        "vehicle_id": vehicle_id,
        "claimed_plate": (plates.normalise(claimed_plate) or None) if claimed_plate is not None else None,
        "photo_sha256": photo_sha256,
        "photo_phash": phash,
        "capture_time": capture_time.replace(tzinfo=None) if capture_time is not None else None,
        "capture_utc_offset_minutes": int(offset.total_seconds() // 60) if offset is not None else None,
        "job_id": job_id,
        "site": site,
        "job_start": job_start,
        "job_end": job_end,
        "source": source,
        "status": status,
        "attempts": 0,
        "idempotency_key": idempotency_key,
        "pipeline": pipeline,
        "created_at": now,
        "updated_at": now,
    }
    if exif is not None and exif.read:
        # Where and how the photo was made, as its EXIF says (the checks read it from the row).
        values |= {
            "gps_latitude": exif.latitude,
            "gps_longitude": exif.longitude,
            "gps_time": exif.gps_time,
            "exif_findings": exif.findings(),
        }
    new_id = _insert_if_theirs(session, values)
    if new_id is None:
        # Why not: someone else's driver or vehicle (raises), or a key already used.
        get_driver(session, driver_id, carrier_id=carrier_id)
        if vehicle_id is not None:
            get_vehicle(session, vehicle_id, carrier_id=carrier_id)
        earlier = _by_idempotency_key(session, carrier_id, idempotency_key) if idempotency_key is not None else None
        if earlier is None:  # the driver or vehicle went away meanwhile
            raise InvalidSubmission("the driver or vehicle changed while the submission was recorded")
        same = _same_request(earlier, photo_sha256, idempotency_key)
        return CreatedSubmission(same.id, same.status, False, session)

    value = int(phash, 16)
    session.connection().execute(
        _INSERT_BANDS,
        [
            {"submission_id": new_id, "band": band, "value": _band_value(value, band), "carrier_id": carrier_id}
            for band in range(HASH_BANDS)
        ],
    )
    record_event(
        session,
        actor=actor,
        action="submission.create",
        subject_type="submission",
        subject_id=new_id,
        after=_snapshot_of(values),
    )
    return CreatedSubmission(new_id, status, True, session)


_INSERT_BANDS = sa.insert(PhotoHashBand.__table__)


def _insert_if_theirs(session: Session, values: dict[str, Any]) -> str | None:
    """INSERT … SELECT … WHERE the driver (and vehicle) are the carrier's, ON CONFLICT (the key)
    DO NOTHING: the new id, or None when nothing was written."""
    connection = session.connection()
    statement = _insert_statement(connection.dialect.name, values["vehicle_id"] is not None, tuple(values))
    given = {f"new_{k}": v for k, v in values.items() if k != "updated_at"}
    return connection.execute(statement, given).scalar_one_or_none()


@functools.cache
def _insert_statement(dialect: str, with_vehicle: bool, columns: tuple[str, ...]) -> sa.TextClause:
    # SQLAlchemy does not cache INSERT … SELECT … ON CONFLICT, and compiling it cost more than the
    # rest of an upload's SQL: it is compiled once per shape here, as text with typed parameters.
    table = Submission.__table__
    param = {name: sa.bindparam(f"new_{name}", type_=table.c[name].type) for name in columns}
    conditions = [sa.exists().where(Driver.id == param["driver_id"], Driver.carrier_id == param["carrier_id"])]
    if with_vehicle:
        conditions.append(
            sa.exists().where(Vehicle.id == param["vehicle_id"], Vehicle.carrier_id == param["carrier_id"])
        )
    # updated_at is the database's clock, as every later change writes it (the sweeper compares it).
    row = sa.select(*(database_clock() if name == "updated_at" else param[name] for name in columns)).where(*conditions)
    insert: Any = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = (
        insert.from_select(list(columns), row)
        .on_conflict_do_nothing(index_elements=["carrier_id", "idempotency_key"])
        .returning(table.c.id)
    )
    # The dialects' generic forms: psycopg's would write casts (``:x::VARCHAR``) that text() misreads.
    named = (
        postgresql.base.PGDialect(paramstyle="named")
        if dialect == "postgresql"
        else sqlite.base.SQLiteDialect(paramstyle="named")
    )
    sql = str(statement.compile(dialect=named))
    # A type PostgreSQL must be told (the JSON of EXIF findings) is rendered as a cast, ``:x::JSON``,
    # which text() does not read as a parameter: written as CAST(:x AS JSON) it does.
    sql = _CAST.sub(r"CAST(\1 AS \2)", sql)
    return sa.text(sql).bindparams(*(p for name, p in param.items() if name != "updated_at")).columns(table.c.id)


_CAST = re.compile(r"(:new_\w+)::(\w+)")


def _by_idempotency_key(session: Session, carrier_id: int, key: str) -> Submission | None:
    return session.scalar(
        sa.select(Submission).where(Submission.carrier_id == carrier_id, Submission.idempotency_key == key)
    )


def _same_request(earlier: Submission, photo_sha256: str, key: str) -> Submission:
    if earlier.photo_sha256 != photo_sha256:
        raise IdempotencyConflict(
            f"idempotency key {key!r} was used for submission {earlier.id} with a different photo"
        )
    return earlier


def _snapshot_of(values: dict[str, Any]) -> dict[str, Any]:
    """The audit trail's picture of a new submission, from the values written."""
    captured = values["capture_time"]
    if captured is not None and values["capture_utc_offset_minutes"] is not None:
        captured = captured.replace(tzinfo=timezone(timedelta(minutes=values["capture_utc_offset_minutes"])))
    return {
        "carrier_id": values["carrier_id"],
        "driver_id": values["driver_id"],
        "vehicle_id": values["vehicle_id"],
        "claimed_plate": values["claimed_plate"],
        "photo_sha256": values["photo_sha256"],
        "photo_phash": values["photo_phash"],
        "capture_time": captured.isoformat() if captured else None,
        "job_id": values["job_id"],
        "site": values["site"],
        **(
            {"gps": [values["gps_latitude"], values["gps_longitude"]]} if values.get("gps_latitude") is not None else {}
        ),
        "job_start": values["job_start"].astimezone(UTC).isoformat() if values["job_start"] else None,
        "job_end": values["job_end"].astimezone(UTC).isoformat() if values["job_end"] else None,
        "source": values["source"].value,
        "status": values["status"].value,
        "idempotency_key": values["idempotency_key"],
        "pipeline": values["pipeline"],
    }


def set_status(
    session: Session,
    submission_id: str,
    status: SubmissionStatus | str,
    *,
    error: str | None = None,
    actor: str = SYSTEM,
    reason: str | None = None,
) -> Submission:
    """Move a submission on. Entering ``processing`` counts an attempt; ``error`` is kept as
    ``last_error`` (earlier errors stay in the audit trail)."""
    status = SubmissionStatus(status)
    submission = _locked(session, submission_id)
    before = {"status": submission.status.value, "attempts": submission.attempts}
    submission.status = status
    if status is SubmissionStatus.PROCESSING:
        submission.attempts += 1
    if error is not None:
        submission.last_error = error
    session.flush()
    record_event(
        session,
        actor=actor,
        action="submission.status",
        subject_type="submission",
        subject_id=submission.id,
        before=before,
        after={"status": status.value, "attempts": submission.attempts, "error": error},
        reason=reason,
    )
    return submission


def lock_submission(session: Session, submission_id: str) -> Submission:
    """The submission, locked for the rest of the transaction (a row lock on PostgreSQL)."""
    return _locked(session, submission_id)


def _locked(session: Session, submission_id: str) -> Submission:
    # Row lock on PostgreSQL so that concurrent workers on one submission take turns; SQLite's
    # BEGIN IMMEDIATE already serialises writers.
    submission = session.scalar(sa.select(Submission).where(Submission.id == submission_id).with_for_update())
    if submission is None:
        raise UnknownSubmission(submission_id)
    return submission


def _insert_unless_present(
    session: Session,
    table: sa.Table,
    values: dict[str, Any],
    *,
    conflict: Sequence[str],
    where: sa.ColumnElement[bool] | None = None,
    returning: str = "id",
) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING: the new row's key, or None if the row was already there.
    Race-free where a check-then-insert is not."""
    dialect = session.connection().dialect.name
    if dialect == "postgresql":
        insert: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect}")
    statement = (
        insert.values(values)
        .on_conflict_do_nothing(index_elements=list(conflict), index_where=where)
        .returning(table.c[returning])
    )
    return session.execute(statement).scalar_one_or_none()


# Reading


def status_of(session: Session, submission_id: str) -> SubmissionStatus:
    status = session.scalar(sa.select(Submission.status).where(Submission.id == submission_id))
    if status is None:
        raise UnknownSubmission(submission_id)
    return status


def get_submission(session: Session, submission_id: str) -> Submission:
    """The submission with its judgments and verdict history (oldest first) loaded."""
    submission = session.scalar(
        sa.select(Submission)
        .where(Submission.id == submission_id)
        .options(
            selectinload(Submission.judgments),
            selectinload(Submission.verdicts),
            selectinload(Submission.driver),
            selectinload(Submission.vehicle),
        )
    )
    if submission is None:
        raise UnknownSubmission(submission_id)
    return submission


def submissions_by_id(session: Session, ids: Sequence[str]) -> dict[str, Submission]:
    """The submissions with these ids (those that exist), by id, each with its driver loaded."""
    query = sa.select(Submission).where(Submission.id.in_(ids)).options(selectinload(Submission.driver))
    return {submission.id: submission for submission in session.scalars(query)}
