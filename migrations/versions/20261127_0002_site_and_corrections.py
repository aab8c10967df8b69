"""Submissions name their site; a reviewer's verdict keeps the reviewer's corrections.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("site", sa.String(length=128), nullable=True))
    with op.batch_alter_table("verdicts") as batch:
        batch.add_column(sa.Column("corrections", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("verdicts") as batch:
        batch.drop_column("corrections")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("site")
