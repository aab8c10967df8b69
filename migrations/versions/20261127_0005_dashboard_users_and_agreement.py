"""People who sign in to the dashboard; whether the two pipelines agree, kept on the submission;
what reviewers said of plate readings (plate_reviews); covering indexes for the overview's
aggregates at 100,000s of submissions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 18:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The two pipelines compared, and how a field is read from stored judgments (as compliance.agreement
# reads it; spelled out so that this migration never changes with the code).
_COMPARED = ("multistage", "mllm")
_FIELDS = (
    ("person", lambda d: (d.get("person") or {}).get("present", "unknown")),
    ("vehicle", lambda d: (d.get("vehicle") or {}).get("present", "unknown")),
    ("plate", lambda d: (d.get("plate") or {}).get("text") or "unread"),
    ("face", lambda d: (d.get("face") or {}).get("same_person", "unknown")),
)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "viewer", "reviewer", "admin", name="user_role", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("carrier_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_users_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_index(op.f("ix_users_carrier_id"), "users", ["carrier_id"])

    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("pipelines_agree", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("pipelines_disagree_on", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("verdict_seconds", sa.Integer(), nullable=True))
    _backfill_verdict_seconds()
    _copy_onto_reasons()
    _create_indexes()
    _create_plate_reviews()
    _backfill_agreement()
    _backfill_plate_reviews()


def _create_indexes() -> None:
    # Covering indexes for the overview's aggregates over a period: by day (outcome, decider,
    # agreement, turnaround) and by carrier, site and driver.
    op.create_index(
        "ix_submissions_created_report",
        "submissions",
        ["created_at", "outcome", "decided_by", "decided_at", "pipelines_agree", "pipelines_disagree_on"],
    )
    op.create_index(
        "ix_submissions_groups_report", "submissions", ["carrier_id", "site", "driver_id", "outcome", "created_at"]
    )
    op.create_index(
        "ix_submissions_turnaround_report",
        "submissions",
        ["verdict_seconds", "created_at", "carrier_id", "decided_by"],
    )


def _copy_onto_reasons() -> None:
    """submission_reasons gets its submission's carrier and upload time: reports count reasons
    over a period from its own index."""
    with op.batch_alter_table("submission_reasons") as batch:
        batch.add_column(sa.Column("carrier_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE submission_reasons SET "
        "carrier_id = (SELECT s.carrier_id FROM submissions s WHERE s.id = submission_reasons.submission_id), "
        "created_at = (SELECT s.created_at FROM submissions s WHERE s.id = submission_reasons.submission_id)"
    )
    with op.batch_alter_table("submission_reasons") as batch:
        batch.alter_column("carrier_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("created_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_foreign_key(op.f("fk_submission_reasons_carrier_id_carriers"), "carriers", ["carrier_id"], ["id"])
        batch.create_index("ix_submission_reasons_report", ["created_at", "carrier_id", "reason"])


def _backfill_verdict_seconds() -> None:
    if op.get_bind().dialect.name == "sqlite":
        seconds = "CAST((julianday(decided_at) - julianday(created_at)) * 86400 AS INTEGER)"
    else:
        seconds = "CAST(EXTRACT(EPOCH FROM decided_at - created_at) AS INTEGER)"
    op.execute(f"UPDATE submissions SET verdict_seconds = {seconds} WHERE decided_at IS NOT NULL")


def _create_plate_reviews() -> None:
    op.create_table(
        "plate_reviews",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("colour", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=8), nullable=False),
        sa.Column("read_right", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_plate_reviews_carrier_id_carriers")),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_plate_reviews_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_plate_reviews")),
    )
    op.create_index("ix_plate_reviews_created", "plate_reviews", ["created_at", "carrier_id"])


def _backfill_plate_reviews() -> None:
    """One row per submission whose current verdict a person gave (as the store now keeps them)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT s.id, s.carrier_id, s.created_at, v.corrections, j.data, ve.registered_plate, ve.plate_color "
            "FROM submissions s JOIN verdicts v ON v.submission_id = s.id AND v.is_current "
            "LEFT JOIN judgments j ON j.id = v.judgment_id LEFT JOIN vehicles ve ON ve.id = s.vehicle_id "
            "WHERE v.decided_by != 'machine'"
        ).columns(
            sa.column("id", sa.String),
            sa.column("carrier_id", sa.Integer),
            sa.column("created_at", sa.DateTime(timezone=True)),
            sa.column("corrections", sa.JSON),
            sa.column("data", sa.JSON),
            sa.column("registered_plate", sa.String),
            sa.column("plate_color", sa.String),
        )
    ).all()
    table = sa.table(
        "plate_reviews",
        sa.column("submission_id", sa.String),
        sa.column("carrier_id", sa.Integer),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("colour", sa.String),
        sa.column("province", sa.String),
        sa.column("read_right", sa.Boolean),
    )
    for row in rows:
        plate = (row.data or {}).get("plate") or {}
        reading, corrected = plate.get("text"), (row.corrections or {}).get("plate_text")
        truth = corrected or reading or row.registered_plate
        if not truth:
            continue
        colour = row.plate_color or (row.corrections or {}).get("plate_color") or plate.get("color") or "unknown"
        bind.execute(
            table.insert().values(
                submission_id=row.id,
                carrier_id=row.carrier_id,
                created_at=row.created_at,
                colour=colour,
                province=truth[:1],
                read_right=reading is not None and (corrected is None or corrected == reading),
            )
        )


def _backfill_agreement() -> None:
    bind = op.get_bind()
    judgments = sa.table(
        "judgments",
        sa.column("id", sa.Integer),
        sa.column("submission_id", sa.String),
        sa.column("pipeline", sa.String),
        sa.column("data", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    submissions = sa.table(
        "submissions",
        sa.column("id", sa.String),
        sa.column("pipelines_agree", sa.Boolean),
        sa.column("pipelines_disagree_on", sa.String),
    )
    both = (
        sa.select(judgments.c.submission_id)
        .where(judgments.c.pipeline.in_(_COMPARED))
        .group_by(judgments.c.submission_id)
        .having(sa.func.count(sa.distinct(judgments.c.pipeline)) == len(_COMPARED))
    )
    rows = bind.execute(
        sa.select(judgments.c.submission_id, judgments.c.pipeline, judgments.c.data)
        .where(judgments.c.submission_id.in_(both), judgments.c.pipeline.in_(_COMPARED))
        .order_by(judgments.c.submission_id, judgments.c.created_at, judgments.c.id)
    ).all()
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # oldest first: the last one of each pipeline stays
        latest.setdefault(row.submission_id, {})[row.pipeline] = row.data
    for submission_id, by_pipeline in latest.items():
        first, second = (by_pipeline[p] for p in _COMPARED)
        disagree = [name for name, read in _FIELDS if read(first) != read(second)]
        bind.execute(
            submissions.update()
            .where(submissions.c.id == submission_id)
            .values(pipelines_agree=not disagree, pipelines_disagree_on=",".join(disagree) or None)
        )


def downgrade() -> None:
    with op.batch_alter_table("submission_reasons") as batch:
        batch.drop_index("ix_submission_reasons_report")
        batch.drop_constraint(op.f("fk_submission_reasons_carrier_id_carriers"), type_="foreignkey")
        batch.drop_column("created_at")
        batch.drop_column("carrier_id")
    op.drop_index("ix_plate_reviews_created", table_name="plate_reviews")
    op.drop_table("plate_reviews")
    op.drop_index("ix_submissions_turnaround_report", table_name="submissions")
    op.drop_index("ix_submissions_groups_report", table_name="submissions")
    op.drop_index("ix_submissions_created_report", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("verdict_seconds")
        batch.drop_column("pipelines_disagree_on")
        batch.drop_column("pipelines_agree")
    op.drop_index(op.f("ix_users_carrier_id"), table_name="users")
    op.drop_table("users")
