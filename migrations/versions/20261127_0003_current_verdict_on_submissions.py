"""The current verdict's outcome, time, decider and reasons copied onto the submission, so that
lists and reports at 100,000s of rows filter and count by index instead of joining verdict history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 12:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _outcome() -> sa.Enum:
    return sa.Enum(
        "PASS", "FAIL", "REVIEW", name="verdict_outcome", native_enum=False, create_constraint=True, length=16
    )


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("outcome", _outcome(), nullable=True))
        batch.add_column(sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("decided_by", sa.String(length=128), nullable=True))
        batch.create_index("ix_submissions_carrier_outcome_created", ["carrier_id", "outcome", "created_at"])
    op.create_table(
        "submission_reasons",
        sa.Column("submission_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_reasons_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "reason", name=op.f("pk_submission_reasons")),
    )
    op.create_index("ix_submission_reasons_reason", "submission_reasons", ["reason", "submission_id"])

    # Backfill from each submission's current verdict.
    bind = op.get_bind()
    verdicts = sa.table(
        "verdicts",
        sa.column("submission_id", sa.String),
        sa.column("outcome", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("decided_by", sa.String),
        sa.column("reasons", sa.JSON),
        sa.column("is_current", sa.Boolean),
    )
    submissions = sa.table(
        "submissions",
        sa.column("id", sa.String),
        sa.column("outcome", sa.String),
        sa.column("decided_at", sa.DateTime(timezone=True)),
        sa.column("decided_by", sa.String),
    )
    reasons = sa.table("submission_reasons", sa.column("submission_id", sa.String), sa.column("reason", sa.String))
    current = bind.execute(
        sa.select(
            verdicts.c.submission_id,
            verdicts.c.outcome,
            verdicts.c.created_at,
            verdicts.c.decided_by,
            verdicts.c.reasons,
        ).where(verdicts.c.is_current.is_(True))
    ).all()
    for row in current:
        bind.execute(
            submissions.update()
            .where(submissions.c.id == row.submission_id)
            .values(outcome=row.outcome, decided_at=row.created_at, decided_by=row.decided_by)
        )
        codes = sorted(set(row.reasons or []))
        if codes:
            bind.execute(reasons.insert(), [{"submission_id": row.submission_id, "reason": c} for c in codes])


def downgrade() -> None:
    op.drop_index("ix_submission_reasons_reason", table_name="submission_reasons")
    op.drop_table("submission_reasons")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_index("ix_submissions_carrier_outcome_created")
        batch.drop_constraint(op.f("ck_submissions_verdict_outcome"), type_="check")
        batch.drop_column("decided_by")
        batch.drop_column("decided_at")
        batch.drop_column("outcome")
