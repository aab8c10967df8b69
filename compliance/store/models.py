"""The ORM: carriers, their vehicles and drivers, submissions with their judgments and verdicts,
and the append-only audit trail.

Portable across SQLite and PostgreSQL: JSON via ``sqlalchemy.JSON``, enums as checked strings,
partial indexes written for both dialects. Every timestamp is timezone-aware UTC.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    relationship,
)
from sqlalchemy.sql.functions import FunctionElement

from compliance.store.errors import AuditTrailImmutable
from compliance.verdicts import Outcome

# Deterministic constraint names, so migrations can drop and SQLite batch mode can rebuild them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 8 bands of 8 bits: two hashes within Hamming distance 7 agree exactly on at least one band.
HASH_BANDS = 8
HASH_BAND_BITS = 64 // HASH_BANDS


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_submission_id() -> str:
    return str(uuid.uuid4())


# The times the store takes: wide enough for any real job or report, and far inside what PostgreSQL
# and Python's datetime hold, so converting one to UTC can never overflow.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def storable_time(value: datetime) -> bool:
    """Aware (with a UTC offset) and between ``EARLIEST`` and ``LATEST``."""
    if value.utcoffset() is None:
        return False
    try:
        return EARLIEST <= value.astimezone(UTC) < LATEST
    except OverflowError:  # year 1 at +08:00, year 9999 at -05:00
        return False


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every dialect.

    SQLite has no time zones: it stores naive UTC and gets UTC attached on the way out. A naive
    value is refused rather than guessed at, since its zone is unknown.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given where an aware one is needed")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class database_clock(FunctionElement[datetime]):
    """The database's clock, aware UTC, as a SQL expression: the times other hosts compare with
    theirs (``updated_at`` of a submission or an audit job, read by the sweeper) are written with
    it, never with the writing host's clock, since hosts' clocks drift apart."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(database_clock)
def _database_clock(element: database_clock, compiler: Any, **kw: Any) -> str:
    # The statement's time, not the transaction's start (CURRENT_TIMESTAMP), which a long one holds.
    return "statement_timestamp()"


@compiles(database_clock, "sqlite")
def _database_clock_sqlite(element: database_clock, compiler: Any, **kw: Any) -> str:
    # CURRENT_TIMESTAMP is whole seconds on SQLite; this is UTC in the layout SQLAlchemy stores.
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


class SubmissionStatus(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    PROCESSING = "processing"
    DECIDED = "decided"
    FAILED = "failed"


class SubmissionSource(StrEnum):
    CLI = "cli"
    API = "api"
    AUDIT = "audit"
    DEMO = "demo"


MACHINE = "machine"


def _enum(cls: type[StrEnum], name: str) -> sa.Enum:
    # Checked VARCHAR rather than a native type: portable, and a new value needs no ALTER TYPE.
    return sa.Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: sa.JSON()}


class Carrier(Base):
    __tablename__ = "carriers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Overrides of compliance.settings.Thresholds; None means the defaults.
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    vehicles: Mapped[list[Vehicle]] = relationship(back_populates="carrier", order_by="Vehicle.id")
    drivers: Mapped[list[Driver]] = relationship(back_populates="carrier", order_by="Driver.id")


class Vehicle(Base):
    __tablename__ = "vehicles"
    __table_args__ = (sa.UniqueConstraint("carrier_id", "registered_plate"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    registered_plate: Mapped[str] = mapped_column(sa.String(16))
    plate_color: Mapped[str | None] = mapped_column(sa.String(16))
    kind: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    carrier: Mapped[Carrier] = relationship(back_populates="vehicles")


class Driver(Base):
    __tablename__ = "drivers"
    # NULLs are distinct in a unique constraint on both dialects: many drivers may lack a ref.
    __table_args__ = (sa.UniqueConstraint("carrier_id", "external_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    external_ref: Mapped[str | None] = mapped_column(sa.String(128))
    licence_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    # Cached face embedding of the licence photo, float32 little-endian; valid for embedding_model only.
    face_embedding: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    embedding_model: Mapped[str | None] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    carrier: Mapped[Carrier] = relationship(back_populates="drivers")


class Site(Base):
    """A place a carrier's photos are taken for (a depot, a loading yard), named by its code in an
    upload's ``site``. Its position is WGS-84 (entered in GCJ-02 it is converted); without one, no
    check on position applies."""

    __tablename__ = "sites"
    __table_args__ = (sa.UniqueConstraint("carrier_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    code: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str] = mapped_column(sa.String(200))
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    radius_m: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Submission(Base):
    __tablename__ = "submissions"
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}
    __table_args__ = (
        sa.UniqueConstraint("carrier_id", "idempotency_key"),
        sa.Index("ix_submissions_carrier_created", "carrier_id", "created_at"),
        sa.Index("ix_submissions_status", "status"),
        sa.Index("ix_submissions_driver_id", "driver_id"),
        sa.Index("ix_submissions_vehicle_id", "vehicle_id"),
        sa.Index("ix_submissions_photo_sha256", "photo_sha256"),
        # Reports and lists filter by carrier and current outcome, newest first.
        sa.Index("ix_submissions_carrier_outcome_created", "carrier_id", "outcome", "created_at"),
        # Covering indexes for the overview's aggregates over a period: by day (outcome, decider,
        # agreement, turnaround) and by carrier, site and driver; read without touching the table.
        sa.Index(
            "ix_submissions_created_report",
            "created_at",
            "outcome",
            "decided_by",
            "decided_at",
            "pipelines_agree",
            "pipelines_disagree_on",
        ),
        sa.Index("ix_submissions_groups_report", "carrier_id", "site", "driver_id", "outcome", "created_at"),
        # Turnaround: walked in verdict_seconds order, so the histogram needs no sort.
        sa.Index("ix_submissions_turnaround_report", "verdict_seconds", "created_at", "carrier_id", "decided_by"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_submission_id)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    driver_id: Mapped[int] = mapped_column(sa.ForeignKey("drivers.id"))
    vehicle_id: Mapped[int | None] = mapped_column(sa.ForeignKey("vehicles.id"))
    claimed_plate: Mapped[str | None] = mapped_column(sa.String(16))
    photo_sha256: Mapped[str] = mapped_column(sa.String(64))
    photo_phash: Mapped[str] = mapped_column(sa.String(16))
    # EXIF wall-clock time as the camera wrote it, plus its UTC offset when the camera wrote one:
    # most cameras write none, and inventing a zone here would hide that from the checks.
    capture_time: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=False))
    capture_utc_offset_minutes: Mapped[int | None] = mapped_column(sa.SmallInteger)
    job_id: Mapped[str | None] = mapped_column(sa.String(128))
    # Where the photo was taken for, in the carrier's own words (depot, yard): reports group by it.
    site: Mapped[str | None] = mapped_column(sa.String(128))
    job_start: Mapped[datetime | None]
    job_end: Mapped[datetime | None]
    # Where the phone says the photo was taken (EXIF GPS, WGS-84) and the fix's time (UTC); None
    # where it recorded none or an unreadable one.
    gps_latitude: Mapped[float | None] = mapped_column(sa.Float)
    gps_longitude: Mapped[float | None] = mapped_column(sa.Float)
    gps_time: Mapped[datetime | None]
    # What EXIF says of how the photo was made (compliance.photos.ExifFacts.findings): Software,
    # camera make and model, whether a GPS block was unreadable. None: read before EXIF was kept.
    exif_findings: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    source: Mapped[SubmissionSource] = mapped_column(_enum(SubmissionSource, "submission_source"))
    status: Mapped[SubmissionStatus] = mapped_column(_enum(SubmissionStatus, "submission_status"))
    # The current verdict, copied here when it changes (see verdicts._add_verdict) so that lists
    # and reports filter and count without joining the verdict history.
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "verdict_outcome"))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(128))
    # Whole seconds from upload to the current verdict: the reports' turnaround, read from an index.
    verdict_seconds: Mapped[int | None]
    # Whether the baseline's and the MLLM's latest judgments agree (compliance.agreement), kept by
    # record_judgment; None until both pipelines have judged. The fields they disagree on, comma-joined.
    pipelines_agree: Mapped[bool | None]
    pipelines_disagree_on: Mapped[str | None] = mapped_column(sa.String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    # The pipeline asked for (it picks the queue); None: the deployment's default (service_pipeline).
    pipeline: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The database's clock on every change (the sweeper compares it with the database's, too);
    # fetched back at once (eager_defaults), so the object still reads it after its session.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=database_clock())

    carrier: Mapped[Carrier] = relationship()
    driver: Mapped[Driver] = relationship()
    vehicle: Mapped[Vehicle | None] = relationship()
    judgments: Mapped[list[JudgmentRecord]] = relationship(
        back_populates="submission", order_by=lambda: [JudgmentRecord.created_at, JudgmentRecord.id]
    )
    verdicts: Mapped[list[VerdictRecord]] = relationship(
        back_populates="submission",
        order_by=lambda: [VerdictRecord.created_at, VerdictRecord.id],
        foreign_keys="VerdictRecord.submission_id",
    )
    reasons: Mapped[list[SubmissionReason]] = relationship(
        order_by=lambda: SubmissionReason.reason, cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def captured_at(self) -> datetime | None:
        """The EXIF capture time as read: aware when the camera wrote an offset, naive otherwise."""
        if self.capture_time is None or self.capture_utc_offset_minutes is None:
            return self.capture_time
        return self.capture_time.replace(tzinfo=timezone(timedelta(minutes=self.capture_utc_offset_minutes)))

    @property
    def job_window(self) -> tuple[datetime, datetime] | None:
        if self.job_start is None or self.job_end is None:
            return None
        return (self.job_start, self.job_end)

    @property
    def current_verdict(self) -> VerdictRecord | None:
        return next((v for v in reversed(self.verdicts) if v.is_current), None)


class Role(StrEnum):
    """What a person signed in to the dashboard may do; each role may do all that the ones before it may."""

    VIEWER = "viewer"  # read reports, lists, photos; export the verdict table
    REVIEWER = "reviewer"  # and decide REVIEW submissions, export training data
    ADMIN = "admin"  # and everything else (users are managed from the CLI)

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


class User(Base):
    """A person who signs in to the dashboard: one carrier's staff, or (carrier_id None) the operator's."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Lower-cased; what they sign in with and what the audit trail names them by.
    username: Mapped[str] = mapped_column(sa.String(128), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    # argon2id, in the PHC string format argon2-cffi writes (parameters and salt inside).
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    carrier_id: Mapped[int | None] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Bumped when the password changes or the user is disabled: sessions signed before are void.
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]
    # The dashboard's language for them ("zh-CN", "en"); None: their browser's, else the default.
    language: Mapped[str | None] = mapped_column(sa.String(16))

    carrier: Mapped[Carrier | None] = relationship()


class SubmissionReason(Base):
    """One reason code of a submission's current verdict: what lists filter and reports count by."""

    __tablename__ = "submission_reasons"
    __table_args__ = (
        sa.Index("ix_submission_reasons_reason", "reason", "submission_id"),
        # Reports count reasons over a period (and carrier) from this index alone.
        sa.Index("ix_submission_reasons_report", "created_at", "carrier_id", "reason"),
    )

    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(48), primary_key=True)
    # Copied from the submission (carrier, upload time), so that a period is counted without a join.
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    created_at: Mapped[datetime]


class PlateReview(Base):
    """What a person's current verdict says about the plate reading it was decided from: right, or
    corrected to another text. Kept by the store beside the current verdict (a row only while a
    person's verdict is current), so that plate accuracy by colour and province is counted from
    this narrow table instead of every judgment's JSON."""

    __tablename__ = "plate_reviews"
    __table_args__ = (sa.Index("ix_plate_reviews_created", "created_at", "carrier_id"),)

    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    # Copied from the submission (carrier, upload time) so that a period is counted without a join.
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    created_at: Mapped[datetime]
    colour: Mapped[str] = mapped_column(sa.String(16))  # the registered vehicle's, else the reading's
    province: Mapped[str] = mapped_column(sa.String(8))  # of the true plate
    read_right: Mapped[bool]


class PhotoHashBand(Base):
    """One 8-bit band of a submission's perceptual hash: the index near-duplicate search probes."""

    __tablename__ = "photo_hash_bands"
    __table_args__ = (sa.Index("ix_photo_hash_bands_lookup", "band", "value", "carrier_id"),)

    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    band: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(sa.SmallInteger)
    # Copied from the submission so the probe filters by carrier without a join.
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))


class JudgmentRecord(Base):
    __tablename__ = "judgments"
    __table_args__ = (sa.UniqueConstraint("submission_id", "pipeline", "model_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"))
    pipeline: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str] = mapped_column(sa.String(128))
    # compliance.judgments.Judgments.model_dump(mode="json")
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="judgments")


class VerdictRecord(Base):
    __tablename__ = "verdicts"
    __table_args__ = (
        sa.Index("ix_verdicts_submission_created", "submission_id", "created_at"),
        # At most one current verdict per submission.
        sa.Index(
            "uq_verdicts_current",
            "submission_id",
            unique=True,
            sqlite_where=sa.text("is_current"),
            postgresql_where=sa.text("is_current"),
        ),
        # A machine decision is a function of its inputs: deciding again must not add a row.
        sa.Index(
            "uq_verdicts_machine_decision",
            "submission_id",
            "pipeline",
            "model_version",
            "policy_version",
            unique=True,
            sqlite_where=sa.text("decided_by = 'machine'"),
            postgresql_where=sa.text("decided_by = 'machine'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"))
    judgment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("judgments.id"))
    outcome: Mapped[Outcome] = mapped_column(_enum(Outcome, "verdict_outcome"))
    reasons: Mapped[list[str]] = mapped_column(sa.JSON)
    results: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    policy_version: Mapped[str] = mapped_column(sa.String(64))
    pipeline: Mapped[str] = mapped_column(sa.String(64))
    model_version: Mapped[str] = mapped_column(sa.String(128))
    decided_by: Mapped[str] = mapped_column(sa.String(128))
    # A reviewer's reason for overriding the machine; None for machine decisions.
    note: Mapped[str | None] = mapped_column(sa.Text)
    # A reviewer's corrections (compliance.verdicts.Corrections, None fields left out); None for machines.
    corrections: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    is_current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    submission: Mapped[Submission] = relationship(back_populates="verdicts", foreign_keys=[submission_id])
    judgment: Mapped[JudgmentRecord | None] = relationship()


class AuditEvent(Base):
    """One change, as it happened. Rows are only ever inserted (see the guards below)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_subject", "subject_type", "subject_id", "at"),
        sa.Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    subject_type: Mapped[str] = mapped_column(sa.String(32))
    subject_id: Mapped[str] = mapped_column(sa.String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    reason: Mapped[str | None] = mapped_column(sa.Text)


@event.listens_for(AuditEvent, "before_update")
def _refuse_audit_update(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AuditTrailImmutable(f"audit event {target.id} cannot be changed: the audit trail is append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_audit_delete(mapper: Any, connection: Any, target: AuditEvent) -> None:
    raise AuditTrailImmutable(f"audit event {target.id} cannot be deleted: the audit trail is append-only")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_changes(state: ORMExecuteState) -> None:
    # Bulk update()/delete() statements skip the mapper events above.
    if (state.is_update or state.is_delete) and any(m.class_ is AuditEvent for m in state.all_mappers):
        raise AuditTrailImmutable("audit events cannot be updated or deleted: the audit trail is append-only")


# The service: API keys, webhooks and their deliveries, batch audit jobs.


class ApiKey(Base):
    """A carrier's key to the upload API: ``cmp_<key_id>_<secret>``.

    Only the SHA-256 of the secret is kept. A key is 256 random bits, so a slow password hash
    would add nothing but latency to every request.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str] = mapped_column(sa.String(16), unique=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    secret_sha256: Mapped[str] = mapped_column(sa.String(64))
    # What the key may do, comma-separated from the closed set in ``compliance.store.keys.SCOPES``
    # (``keys`` validates them); a new key may only upload and read (``submit``).
    scopes: Mapped[str] = mapped_column(sa.String(100), default="submit")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

    carrier: Mapped[Carrier] = relationship()


class Webhook(Base):
    """A URL a carrier wants its verdicts POSTed to. The secret signs each body (HMAC-SHA256), so
    it is kept as given: the receiver holds the same one."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    url: Mapped[str] = mapped_column(sa.String(2048))
    secret: Mapped[str] = mapped_column(sa.String(128))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(Base):
    """One verdict to one webhook: sent until a 2xx answers or the attempts run out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # A verdict is delivered once per webhook, however often the task that records it runs.
        sa.UniqueConstraint("webhook_id", "verdict_id"),
        sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_submission_id", "submission_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("webhooks.id"))
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"))
    verdict_id: Mapped[int] = mapped_column(sa.ForeignKey("verdicts.id"))
    event: Mapped[str] = mapped_column(sa.String(32))
    # The exact UTF-8 JSON that is signed and sent: every retry sends the same bytes.
    body: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    webhook: Mapped[Webhook] = relationship()
    tries: Mapped[list[WebhookAttempt]] = relationship(
        order_by=lambda: WebhookAttempt.number, back_populates="delivery"
    )


class WebhookAttempt(Base):
    """One POST of a delivery, as it went: the status code, or the error when none came back."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (sa.UniqueConstraint("delivery_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_deliveries.id"))
    number: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[float]

    delivery: Mapped[WebhookDelivery] = relationship(back_populates="tries")


class AuditJobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


class AuditItemStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class AuditJob(Base):
    """A batch re-judging of a carrier's stored photos with the current models."""

    __tablename__ = "audit_jobs"
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}
    __table_args__ = (sa.Index("ix_audit_jobs_carrier_created", "carrier_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_submission_id)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"))
    pipeline: Mapped[str] = mapped_column(sa.String(64))
    # What was asked for: since, until, driver_ids, vehicle_ids (JSON-ready).
    criteria: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    status: Mapped[AuditJobStatus] = mapped_column(_enum(AuditJobStatus, "audit_job_status"))
    total: Mapped[int] = mapped_column(default=0)
    created_by: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The database's clock on every change (the sweeper compares it with the database's, too);
    # fetched back at once (eager_defaults), so the object still reads it after its session.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=database_clock())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class AuditJobItem(Base):
    """One submission of an audit job: its verdict before and after re-judging."""

    __tablename__ = "audit_job_items"
    __table_args__ = (sa.Index("ix_audit_job_items_job_status", "job_id", "status"),)

    job_id: Mapped[str] = mapped_column(sa.ForeignKey("audit_jobs.id", ondelete="CASCADE"), primary_key=True)
    submission_id: Mapped[str] = mapped_column(sa.ForeignKey("submissions.id"), primary_key=True)
    status: Mapped[AuditItemStatus] = mapped_column(_enum(AuditItemStatus, "audit_item_status"))
    before_outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "before_outcome"))
    before_reasons: Mapped[list[str] | None] = mapped_column(sa.JSON)
    after_outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome, "after_outcome"))
    after_reasons: Mapped[list[str] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.Text)
    done_at: Mapped[datetime | None]
    # The lease of the chunk that took this pending item (the database's clock): no other chunk
    # takes it until then.
    claimed_until: Mapped[datetime | None]


class DriverPrechecks(Base):
    """How often a driver's app asked for a precheck (``POST /v1/prechecks``) and when: counters
    only, nothing of any photo. ``streak`` counts the prechecks since the driver's last upload (the
    first precheck after an upload starts a new one), so that many tries before one upload show on
    the driver's page."""

    __tablename__ = "driver_prechecks"

    driver_id: Mapped[int] = mapped_column(sa.ForeignKey("drivers.id"), primary_key=True, autoincrement=False)
    carrier_id: Mapped[int] = mapped_column(sa.ForeignKey("carriers.id"), index=True)
    total: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    streak: Mapped[int] = mapped_column(default=0)
    streak_since: Mapped[datetime]
