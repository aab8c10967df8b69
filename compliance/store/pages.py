"""Submissions by filter: keyset pages in a chosen order, counts, and offset lists."""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from compliance.store.errors import InvalidCursor
from compliance.store.models import (
    MACHINE,
    Submission,
    SubmissionReason,
    SubmissionStatus,
    UtcDateTime,
    storable_time,
)
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
