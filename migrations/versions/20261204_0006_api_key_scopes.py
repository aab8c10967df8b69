"""API keys carry scopes (what each may do through the API). Keys made before could do everything,
so they get ``admin``: nothing a client does today stops working until an operator re-issues its
key with the scopes it needs. New keys default to ``submit``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.String(length=100), nullable=True))
    op.execute("UPDATE api_keys SET scopes = 'admin'")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("scopes", existing_type=sa.String(length=100), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
