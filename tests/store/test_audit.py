"""The audit trail is append-only: the ORM refuses to change it, and so does the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from compliance.store import audit
from compliance.store.errors import AuditTrailImmutable
from compliance.store.models import AuditEvent
from tests.store.samples import Fleet


def _first_event(session: Session) -> AuditEvent:
    return audit.list_events(session)[0]


def test_an_event_cannot_be_edited(session: Session, fleet: Fleet) -> None:
    event = _first_event(session)
    event.reason = "rewritten history"
    with pytest.raises(AuditTrailImmutable):
        session.flush()
    session.rollback()
    assert _first_event(session).reason is None


def test_an_event_cannot_be_deleted(session: Session, fleet: Fleet) -> None:
    count = len(audit.list_events(session))
    session.delete(_first_event(session))
    with pytest.raises(AuditTrailImmutable):
        session.flush()
    session.rollback()
    assert len(audit.list_events(session)) == count


def test_bulk_statements_cannot_change_events(session: Session, fleet: Fleet) -> None:
    with pytest.raises(AuditTrailImmutable):
        session.execute(sa.update(AuditEvent).values(actor="someone else"))
    with pytest.raises(AuditTrailImmutable):
        session.execute(sa.delete(AuditEvent))
    session.rollback()
    assert {e.actor for e in audit.list_events(session)} == {"system"}


def test_the_database_refuses_raw_sql_too(session: Session, fleet: Fleet) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(sa.text("UPDATE audit_events SET actor = 'someone else'"))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(sa.text("DELETE FROM audit_events"))
    session.rollback()
    assert len(audit.list_events(session)) == 4


def test_events_are_appended_in_order(session: Session, fleet: Fleet) -> None:
    audit.record_event(
        session,
        actor="ops",
        action="note",
        subject_type="carrier",
        subject_id=fleet.carrier_id,
        reason="checked the fleet list by phone",
    )
    session.commit()
    events = audit.list_events(session, subject_type="carrier", subject_id=fleet.carrier_id)
    assert [e.action for e in events] == ["carrier.add", "note"]
    assert events[0].at <= events[1].at and events[1].at.tzinfo is not None
    assert audit.list_events(session, action="note", limit=5)[0].reason == "checked the fleet list by phone"
