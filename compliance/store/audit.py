"""The append-only audit trail: every change the store makes writes one event in the same
transaction as the change, so the trail and the data never disagree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.models import AuditEvent

SYSTEM = "system"


_INSERT_EVENT = sa.insert(AuditEvent.__table__)


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str | int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """One event, by a Core INSERT built once: it is on every write path, the upload's included."""
    session.execute(
        _INSERT_EVENT,
        {
            "actor": actor,
            "action": action,
            "subject_type": subject_type,
            "subject_id": str(subject_id),
            "before": before,
            "after": after,
            "reason": reason,
        },
    )


def list_events(
    session: Session,
    *,
    subject_type: str | None = None,
    subject_id: str | int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first."""
    query = sa.select(AuditEvent).order_by(AuditEvent.at, AuditEvent.id)
    if subject_type is not None:
        query = query.where(AuditEvent.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEvent.subject_id == str(subject_id))
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
