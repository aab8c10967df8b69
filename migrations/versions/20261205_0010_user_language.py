"""A dashboard user's language ("zh-CN" or "en"); none: their browser's, else COMPLIANCE_DEFAULT_LANGUAGE.

Revision ID: 0010_user_language
Revises: 0009_audit_claims
Create Date: 2026-12-05 01:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_user_language"
down_revision: str | None = "0009_audit_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
