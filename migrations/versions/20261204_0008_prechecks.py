"""Per-driver precheck counters (``POST /v1/prechecks``): how many, since when, when last, and how
many since the driver's last upload. Nothing of the photos is kept.

Revision ID: 0008_prechecks
Revises: 0007_sites
Create Date: 2026-12-04 23:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_prechecks"
down_revision: str | None = "0007_sites"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "driver_prechecks",
        sa.Column("driver_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("streak_since", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_id"], ["carriers.id"], name=op.f("fk_driver_prechecks_carrier_id_carriers")
        ),
        sa.ForeignKeyConstraint(["driver_id"], ["drivers.id"], name=op.f("fk_driver_prechecks_driver_id_drivers")),
        sa.PrimaryKeyConstraint("driver_id", name=op.f("pk_driver_prechecks")),
    )
    op.create_index(op.f("ix_driver_prechecks_carrier_id"), "driver_prechecks", ["carrier_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_driver_prechecks_carrier_id"), table_name="driver_prechecks")
    op.drop_table("driver_prechecks")
