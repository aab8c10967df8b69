"""Which photo blobs the database refers to: what the orphan sweep must keep.

A blob is referred to by a submission (its photo), by a driver (the current licence photo), or by
the audit trail (a licence photo a driver had before, or one named when it was set): the trail
names it, so it is kept to be looked at.

Hashes are asked for one two-hex-digit prefix at a time, as a range on the column
(``'ab' <= h < 'ac'``) rather than ``LIKE 'ab%'``: a range uses a B-tree index under any collation,
and lowercase hex sorts the same under all of them.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.models import AuditEvent, Driver, Submission

_PREFIX = re.compile(r"[0-9a-f]{2}")
# Hashes per IN (…): well under every driver's limit on bound parameters.
_CHUNK = 500


def _in_prefix(column: sa.ColumnElement[str], prefix: str) -> sa.ColumnElement[bool]:
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"not a two-hex-digit prefix: {prefix!r}")
    lower = column >= prefix
    if prefix == "ff":
        return lower
    return sa.and_(lower, column < f"{int(prefix, 16) + 1:02x}")


def referenced_with_prefix(session: Session, prefix: str) -> set[str]:
    """The hashes starting with ``prefix`` that a submission or a driver's licence refers to."""
    photos = sa.select(Submission.photo_sha256).where(_in_prefix(Submission.photo_sha256, prefix)).distinct()
    licences = sa.select(Driver.licence_sha256).where(_in_prefix(Driver.licence_sha256, prefix))
    found = set(session.scalars(photos))
    found.update(h for h in session.scalars(licences) if h is not None)
    return found


def named_by_audit_trail(session: Session, hashes: Collection[str]) -> set[str]:
    """Those of ``hashes`` that a driver's audit event names as a licence photo, before or after
    the change. Asked only about the few hashes nothing else refers to: the trail's JSON has no
    index, so it is read once per chunk of them, among the drivers' events."""
    wanted = sorted(set(hashes))
    found: set[str] = set()
    before = AuditEvent.before["licence_sha256"].as_string()
    after = AuditEvent.after["licence_sha256"].as_string()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        members = set(chunk)
        query = sa.select(before, after).where(
            AuditEvent.subject_type == "driver", sa.or_(before.in_(chunk), after.in_(chunk))
        )
        for named_before, named_after in session.execute(query):
            found.update(h for h in (named_before, named_after) if h in members)
    return found
