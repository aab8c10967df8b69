"""Submissions by filter: keyset pages in a chosen order, counts, and offset lists."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from compliance.store.errors import InvalidCursor
from compliance.store.models import (
    MACHINE,
    AuditEvent,
    Driver,
    Submission,
    SubmissionReason,
    SubmissionStatus,
    UtcDateTime,
    storable_time,
    utcnow,
)
from compliance.store.registry import LICENCE_ACTION
from compliance.verdicts import Outcome, ReasonCode


@dataclass(frozen=True, kw_only=True)
class SubmissionFilter:
    """What a list or a report is narrowed to; every field left None matches everything.

    ``outcome`` and ``reason`` are the current verdict's; ``since``/``until`` bound ``created_at``
    (inclusive, exclusive) and must be timezone-aware; ``reviewed`` True keeps submissions whose
    current verdict a person gave, False those the machine decided or nobody has yet;
    ``pipelines_agree`` False keeps those on which the two pipelines' judgments disagree.
    """

    carrier_id: int | None = None
    status: SubmissionStatus | str | Sequence[SubmissionStatus | str] | None = None
    outcome: Outcome | str | Sequence[Outcome | str] | None = None
    reason: ReasonCode | str | Sequence[ReasonCode | str] | None = None
    driver_id: int | None = None
    vehicle_id: int | None = None
    site: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    reviewed: bool | None = None
    # False keeps submissions on which the baseline and the MLLM disagree, True those they agree on.
    pipelines_agree: bool | None = None

    def where(self) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        if self.carrier_id is not None:
            clauses.append(Submission.carrier_id == self.carrier_id)
        if self.status is not None:
            clauses.append(Submission.status.in_([SubmissionStatus(v) for v in _many(self.status)]))
        if self.outcome is not None:
            clauses.append(Submission.outcome.in_([Outcome(v) for v in _many(self.outcome)]))
        if self.reason is not None:
            codes = [ReasonCode(v).value for v in _many(self.reason)]
            clauses.append(
                Submission.id.in_(sa.select(SubmissionReason.submission_id).where(SubmissionReason.reason.in_(codes)))
            )
        if self.driver_id is not None:
            clauses.append(Submission.driver_id == self.driver_id)
        if self.vehicle_id is not None:
            clauses.append(Submission.vehicle_id == self.vehicle_id)
        if self.site is not None:
            clauses.append(Submission.site == self.site)
        if self.since is not None:
            clauses.append(Submission.created_at >= self.since)
        if self.until is not None:
            clauses.append(Submission.created_at < self.until)
        if self.reviewed is True:
            clauses.append(sa.and_(Submission.decided_by.is_not(None), Submission.decided_by != MACHINE))
        elif self.reviewed is False:
            clauses.append(sa.or_(Submission.decided_by.is_(None), Submission.decided_by == MACHINE))
        if self.pipelines_agree is not None:
            clauses.append(Submission.pipelines_agree.is_(self.pipelines_agree))
        return clauses


def _many(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


# Sort keys a list may be ordered by. Each sorts by (key, created_at, id) so that the order is total
# and a page can resume after its last row (keyset pagination: no OFFSET scan at 100,000 rows).
# Nullable keys sort as '' so that a row-value comparison never meets NULL.
# Enums are read as their plain strings (type_coerce changes no SQL, so indexes still serve).
SORT_KEYS: dict[str, sa.ColumnElement[Any]] = {
    "created_at": Submission.created_at,
    "status": sa.type_coerce(Submission.status, sa.String()),
    "outcome": sa.func.coalesce(sa.type_coerce(Submission.outcome, sa.String()), ""),
    "site": sa.func.coalesce(Submission.site, ""),
    "plate": sa.func.coalesce(Submission.claimed_plate, ""),
}


class SubmissionPage(NamedTuple):
    items: list[Submission]
    # Pass back as ``cursor`` for the next page; None on the last page.
    next_cursor: str | None


def page_submissions(
    session: Session,
    where: SubmissionFilter = SubmissionFilter(),
    *,
    sort: str = "created_at",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> SubmissionPage:
    """One page of submissions matching ``where``, in ``sort`` order, after ``cursor``.

    Driver, vehicle and the current verdict are loaded with each row. Raises ``InvalidCursor`` for
    a cursor this function did not hand out (or one from another sort).
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"cannot sort by {sort!r}; choose from {', '.join(SORT_KEYS)}")
    if not 1 <= limit <= 1000:
        raise ValueError(f"limit must be between 1 and 1000, not {limit}")
    key = SORT_KEYS[sort]
    columns = (key, Submission.created_at, Submission.id)
    query = (
        sa.select(Submission)
        .where(*where.where())
        .options(selectinload(Submission.driver), selectinload(Submission.vehicle), selectinload(Submission.verdicts))
    )
    if cursor is not None:
        after = _decode_cursor(cursor, sort)
        key_type = UtcDateTime() if sort == "created_at" else sa.String()
        values = [sa.literal(after[0], key_type), sa.literal(after[1], UtcDateTime()), sa.literal(after[2])]
        position = sa.tuple_(*columns)
        query = query.where(position < sa.tuple_(*values) if descending else position > sa.tuple_(*values))
    query = query.order_by(*(c.desc() if descending else c.asc() for c in columns)).limit(limit + 1)
    rows = list(session.scalars(query))
    if len(rows) <= limit:
        return SubmissionPage(rows, None)
    rows = rows[:limit]
    last = rows[-1]
    sort_value = session.execute(sa.select(key).where(Submission.id == last.id)).scalar_one()
    return SubmissionPage(rows, _encode_cursor(sort, sort_value, last.created_at, last.id))


def count_submissions(session: Session, where: SubmissionFilter = SubmissionFilter()) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(Submission).where(*where.where())).scalar_one()


def reasons_of(session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
    """The current verdict's reason codes of each submission listed, sorted; none for a
    submission without reasons (the dict is a ``defaultdict``)."""
    found: dict[str, list[str]] = defaultdict(list)
    if ids:
        for submission_id, reason in session.execute(
            sa.select(SubmissionReason.submission_id, SubmissionReason.reason)
            .where(SubmissionReason.submission_id.in_(ids))
            .order_by(SubmissionReason.reason)
        ):
            found[submission_id].append(reason)
    return found


def _encode_cursor(sort: str, value: Any, created_at: datetime, submission_id: str) -> str:
    if isinstance(value, StrEnum):
        value = value.value
    elif isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, created_at.isoformat(), submission_id], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_sort, value, created_at, submission_id = json.loads(raw)
        when = datetime.fromisoformat(created_at)
        if got_sort != sort or not isinstance(submission_id, str) or when.utcoffset() is None:
            raise ValueError
        if sort == "created_at":
            value = datetime.fromisoformat(value)
            if not storable_time(value):
                raise ValueError
        elif not isinstance(value, str):
            raise ValueError
        if not storable_time(when):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor(cursor) from None
    return value, when, submission_id


def list_submissions(
    session: Session,
    *,
    carrier_id: int | None = None,
    status: SubmissionStatus | str | Sequence[SubmissionStatus | str] | None = None,
    outcome: Outcome | str | Sequence[Outcome | str] | None = None,
    driver_id: int | None = None,
    vehicle_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[Submission]:
    """Submissions matching every filter given (see ``SubmissionFilter``), by offset; for long
    lists use ``page_submissions``. Verdicts are loaded."""
    where = SubmissionFilter(
        carrier_id=carrier_id,
        status=status,
        outcome=outcome,
        driver_id=driver_id,
        vehicle_id=vehicle_id,
        since=since,
        until=until,
    )
    query = sa.select(Submission).where(*where.where()).options(selectinload(Submission.verdicts))
    order = (
        (Submission.created_at.desc(), Submission.id.desc()) if newest_first else (Submission.created_at, Submission.id)
    )
    query = query.order_by(*order).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# A driver's page: the licence photo's replacements, and the verdicts decided against an old one.


@dataclass(frozen=True, kw_only=True)
class LicenceReplacement:
    """One change of a driver's licence photo, as the audit trail keeps it."""

    at: datetime
    actor: str
    reason: str | None
    old_sha256: str | None
    new_sha256: str | None

    @property
    def changes_photo(self) -> bool:
        """A photo was on file and another (or none) took its place. The same photo sent again, or a
        first photo where there was none, leaves no verdict decided against a face since replaced."""
        return self.old_sha256 is not None and self.old_sha256 != self.new_sha256


@dataclass(frozen=True, kw_only=True)
class RecheckItem:
    """A submission whose current verdict was decided before the licence photo was replaced."""

    submission_id: str
    created_at: datetime
    decided_at: datetime
    outcome: Outcome
    reasons: list[str]
    decided_by: str


@dataclass(frozen=True, kw_only=True)
class LicenceRecheck:
    """What a person should look at again after a driver's licence photo was replaced."""

    replacements: list[LicenceReplacement]  # newest first, at most ``history_limit``
    # The latest replacement that changed the photo, within the window; None: nothing to re-check.
    replaced_at: datetime | None
    since: datetime  # the window's start: ``days`` before now
    items: list[RecheckItem]  # newest verdict first, at most ``limit``
    counts: dict[Outcome, int]  # every verdict to re-check by outcome, beyond ``limit`` too

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _replacement(event: sa.Row[Any]) -> LicenceReplacement:
    before, after = event.before or {}, event.after or {}
    return LicenceReplacement(
        at=event.at,
        actor=event.actor,
        reason=event.reason,
        old_sha256=before.get("licence_sha256"),
        new_sha256=after.get("licence_sha256"),
    )


def _licence_events(carrier_id: int, driver_id: int) -> sa.Select[Any]:
    """The driver's licence events, newest first; none unless the driver is the carrier's (the
    trail names the driver by id alone)."""
    owned = sa.exists().where(Driver.id == driver_id, Driver.carrier_id == carrier_id)
    return (
        sa.select(AuditEvent.at, AuditEvent.actor, AuditEvent.reason, AuditEvent.before, AuditEvent.after)
        .where(
            AuditEvent.subject_type == "driver",
            AuditEvent.subject_id == str(driver_id),
            AuditEvent.action == LICENCE_ACTION,
            owned,
        )
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    )


def licence_replacements(
    session: Session, *, carrier_id: int, driver_id: int, limit: int = 50
) -> list[LicenceReplacement]:
    """The driver's licence photo replacements from the audit trail, newest first, at most ``limit``."""
    rows = session.execute(_licence_events(carrier_id, driver_id).limit(limit))
    return [_replacement(row) for row in rows]


def licence_recheck(
    session: Session,
    *,
    carrier_id: int,
    driver_id: int,
    days: int,
    now: datetime | None = None,
    limit: int = 100,
    history_limit: int = 50,
) -> LicenceRecheck:
    """The driver's licence replacements, and the current verdicts of their submissions decided in
    the last ``days`` days but before the latest replacement that changed the photo.

    A verdict does not record which licence photo it was decided against: one decided before the
    replacement is taken to have used the photo replaced (a judgment already under way when the
    photo was replaced, and recorded after, is not listed). A new verdict, a person's included,
    takes the submission off the list, since it was decided after.
    """
    since = (now or utcnow()) - timedelta(days=days)
    replacements = licence_replacements(session, carrier_id=carrier_id, driver_id=driver_id, limit=history_limit)
    in_window = session.execute(_licence_events(carrier_id, driver_id).where(AuditEvent.at >= since))
    replaced_at = next((r.at for r in map(_replacement, in_window) if r.changes_photo), None)
    if replaced_at is None:
        return LicenceRecheck(replacements=replacements, replaced_at=None, since=since, items=[], counts={})
    where = (
        Submission.carrier_id == carrier_id,
        Submission.driver_id == driver_id,
        Submission.outcome.is_not(None),
        Submission.decided_at >= since,
        Submission.decided_at < replaced_at,
    )
    counts = {
        Outcome(outcome): n
        for outcome, n in session.execute(
            sa.select(Submission.outcome, sa.func.count()).where(*where).group_by(Submission.outcome)
        )
    }
    rows = session.execute(
        sa.select(
            Submission.id, Submission.created_at, Submission.decided_at, Submission.outcome, Submission.decided_by
        )
        .where(*where)
        .order_by(Submission.decided_at.desc(), Submission.id.desc())
        .limit(limit)
    ).all()
    reasons = reasons_of(session, [row.id for row in rows])
    items = [
        RecheckItem(
            submission_id=row.id,
            created_at=row.created_at,
            decided_at=row.decided_at,
            outcome=Outcome(row.outcome),
            reasons=reasons[row.id],
            decided_by=row.decided_by or "",
        )
        for row in rows
    ]
    return LicenceRecheck(replacements=replacements, replaced_at=replaced_at, since=since, items=items, counts=counts)
