"""Sites are registered per carrier (code, name, an optional WGS-84 position and radius), and a
submission keeps where its photo says it was taken (EXIF GPS) and what its EXIF says of how it was
made. Existing submissions keep their free-text site and get no EXIF findings (None: not read), so
no check on position or EXIF applies to them when they are judged again.

Revision ID: 0007_sites
Revises: 0006
Create Date: 2026-12-04 23:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sites"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("carrier_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("radius_m", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["carrier_id"], ["carriers.id"], name=op.f("fk_sites_carrier_id_carriers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("carrier_id", "code", name=op.f("uq_sites_carrier_id_code")),
    )
    op.create_index(op.f("ix_sites_carrier_id"), "sites", ["carrier_id"], unique=False)
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("gps_latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("gps_longitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("gps_time", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("exif_findings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("exif_findings")
        batch.drop_column("gps_time")
        batch.drop_column("gps_longitude")
        batch.drop_column("gps_latitude")
    op.drop_index(op.f("ix_sites_carrier_id"), table_name="sites")
    op.drop_table("sites")
