"""Initial schema: registry, submissions with their hash bands, judgments, verdicts, audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 06:10:09+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = "audit_events is append-only"


def upgrade() -> None:
    op.create_table(
        "carriers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carriers")),
        sa.UniqueConstraint("code", name=op.f("uq_carriers_code")),
    )

    op.create_table(
        "vehicles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("registered_plate", sa.String(length=16), nullable=False),
        sa.Column("plate_color", sa.String(length=16), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_vehicles_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("carrier_id", "registered_plate", name=op.f("uq_vehicles_carrier_id_registered_plate")),
    )
    op.create_index(op.f("ix_vehicles_carrier_id"), "vehicles", ["carrier_id"])

    op.create_table(
        "drivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("external_ref", sa.String(length=128), nullable=True),
        sa.Column("licence_sha256", sa.String(length=64), nullable=True),
        sa.Column("face_embedding", sa.LargeBinary(), nullable=True),
        sa.Column("embedding_model", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_drivers_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drivers")),
        sa.UniqueConstraint("carrier_id", "external_ref", name=op.f("uq_drivers_carrier_id_external_ref")),
    )
    op.create_index(op.f("ix_drivers_carrier_id"), "drivers", ["carrier_id"])

    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("driver_id", sa.Integer(), nullable=False),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("claimed_plate", sa.String(length=16), nullable=True),
        sa.Column("photo_sha256", sa.String(length=64), nullable=False),
        sa.Column("photo_phash", sa.String(length=16), nullable=False),
        sa.Column("capture_time", sa.DateTime(), nullable=True),
        sa.Column("capture_utc_offset_minutes", sa.SmallInteger(), nullable=True),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("job_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "cli",
                "api",
                "audit",
                "demo",
                name="submission_source",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "queued",
                "processing",
                "decided",
                "failed",
                name="submission_status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_submissions_carrier_id_carriers")),
        sa.ForeignKeyConstraint(["driver_id"], ["drivers.id"], name=op.f("fk_submissions_driver_id_drivers")),
        sa.ForeignKeyConstraint(["vehicle_id"], ["vehicles.id"], name=op.f("fk_submissions_vehicle_id_vehicles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("carrier_id", "idempotency_key", name=op.f("uq_submissions_carrier_id_idempotency_key")),
    )
    op.create_index("ix_submissions_carrier_created", "submissions", ["carrier_id", "created_at"])
    op.create_index("ix_submissions_status", "submissions", ["status"])
    op.create_index("ix_submissions_driver_id", "submissions", ["driver_id"])
    op.create_index("ix_submissions_vehicle_id", "submissions", ["vehicle_id"])
    op.create_index("ix_submissions_photo_sha256", "submissions", ["photo_sha256"])

    op.create_table(
        "photo_hash_bands",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("band", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.SmallInteger(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_photo_hash_bands_carrier_id_carriers")),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_photo_hash_bands_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "band", name=op.f("pk_photo_hash_bands")),
    )
    op.create_index("ix_photo_hash_bands_lookup", "photo_hash_bands", ["band", "value", "carrier_id"])

    op.create_table(
        "judgments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_judgments_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_judgments")),
        sa.UniqueConstraint(
            "submission_id",
            "pipeline",
            "model_version",
            name=op.f("uq_judgments_submission_id_pipeline_model_version"),
        ),
    )

    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("judgment_id", sa.Integer(), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum(
                "PASS",
                "FAIL",
                "REVIEW",
                name="verdict_outcome",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("pipeline", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["judgment_id"], ["judgments.id"], name=op.f("fk_verdicts_judgment_id_judgments")),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_verdicts_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
    )
    op.create_index("ix_verdicts_submission_created", "verdicts", ["submission_id", "created_at"])
    op.create_index(
        "uq_verdicts_current",
        "verdicts",
        ["submission_id"],
        unique=True,
        sqlite_where=sa.text("is_current"),
        postgresql_where=sa.text("is_current"),
    )
    op.create_index(
        "uq_verdicts_machine_decision",
        "verdicts",
        ["submission_id", "pipeline", "model_version", "policy_version"],
        unique=True,
        sqlite_where=sa.text("decided_by = 'machine'"),
        postgresql_where=sa.text("decided_by = 'machine'"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("subject_type", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_subject", "audit_events", ["subject_type", "subject_id", "at"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    _create_append_only_guard()


def _create_append_only_guard() -> None:
    """The ORM refuses to change audit events; these triggers make the database refuse too,
    whoever connects to it."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{event.lower()} BEFORE {event} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )


def downgrade() -> None:
    # Dropping a table drops its indexes and triggers.
    op.drop_table("audit_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("verdicts")
    op.drop_table("judgments")
    op.drop_table("photo_hash_bands")
    op.drop_table("submissions")
    op.drop_table("drivers")
    op.drop_table("vehicles")
    op.drop_table("carriers")
