"""Per-driver precheck counters: one row per driver, counted up in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from compliance.store.models import DriverPrechecks, Submission


@dataclass(frozen=True, slots=True)
class PrecheckCounts:
    total: int
    first_at: datetime
    last_at: datetime
    # Prechecks since the driver's last upload (0 when an upload came after the last precheck).
    since_upload: int
    since_upload_from: datetime | None


def _uploaded_since(session: Session, driver_id: int, when: datetime) -> bool:
    found = session.scalar(
        sa.select(Submission.id).where(Submission.driver_id == driver_id, Submission.created_at >= when).limit(1)
    )
    return found is not None


def record_precheck(session: Session, *, carrier_id: int, driver_id: int, at: datetime) -> PrecheckCounts:
    """Count one precheck of ``driver_id`` at ``at``. The row is made if missing (concurrent first
    prechecks: one insert wins, the other does nothing) and then updated under a row lock, so
    concurrent prechecks of one driver each count once."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(DriverPrechecks.__table__)
        .values(
            driver_id=driver_id,
            carrier_id=carrier_id,
            total=0,
            first_at=at,
            last_at=at,
            streak=0,
            streak_since=at,
        )
        .on_conflict_do_nothing(index_elements=["driver_id"])
    )
    row = session.execute(
        sa.select(DriverPrechecks).where(DriverPrechecks.driver_id == driver_id).with_for_update()
    ).scalar_one()
    if row.streak == 0 or _uploaded_since(session, driver_id, row.last_at):
        row.streak, row.streak_since = 1, at
    else:
        row.streak += 1
    row.total += 1
    row.last_at = max(row.last_at, at)
    session.flush()
    return PrecheckCounts(row.total, row.first_at, row.last_at, row.streak, row.streak_since)


def precheck_counts(session: Session, driver_id: int) -> PrecheckCounts | None:
    """The driver's counters, or None if their app never asked for a precheck."""
    row = session.get(DriverPrechecks, driver_id)
    if row is None:
        return None
    if _uploaded_since(session, driver_id, row.last_at):
        return PrecheckCounts(row.total, row.first_at, row.last_at, 0, None)
    return PrecheckCounts(row.total, row.first_at, row.last_at, row.streak, row.streak_since)
