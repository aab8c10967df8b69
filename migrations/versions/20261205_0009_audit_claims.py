"""Audit items are claimed before they are judged: ``claimed_until`` is the lease of the chunk that
took the item, so two chains of one audit (a chunk the sweeper re-queued while the first still ran)
never judge the same item, and an item whose chunk died is taken again once its lease ends.

Revision ID: 0009_audit_claims
Revises: 0008_prechecks
Create Date: 2026-12-05 00:40:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_audit_claims"
down_revision: str | None = "0008_prechecks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_job_items") as batch:
        batch.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_job_items") as batch:
        batch.drop_column("claimed_until")
