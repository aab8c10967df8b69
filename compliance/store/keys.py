"""Carriers' API keys: ``cmp_<key_id>_<secret>``, of which only the secret's SHA-256 is kept.

The key id is public (it names the key in logs, the audit trail and ``compliance keys revoke``);
the secret is shown once, when the key is made.

A key carries scopes, chosen when it is made: what it may do through the API. ``admin`` is all of
them; a new key gets ``submit`` alone (upload and read its carrier's submissions), the least a
client needs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import InvalidApiKey, InvalidRegistration, UnknownApiKey
from compliance.store.models import ApiKey, utcnow
from compliance.store.registry import get_carrier

PREFIX = "cmp"
_TOKEN = re.compile(rf"{PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})")


# The closed set of scopes, and what each opens in the API: submit (upload, read submissions and
# verdicts), registry (drivers, vehicles, licence photos), review, audit, webhooks; admin is all.
SCOPES = ("submit", "registry", "review", "audit", "webhooks", "admin")
ADMIN = "admin"
DEFAULT_SCOPES = ("submit",)


def parse_scopes(scopes: Iterable[str] | str) -> tuple[str, ...]:
    """The scopes asked for, checked against ``SCOPES``, deduplicated, in ``SCOPES``' order;
    ``InvalidRegistration`` for an unknown one or none at all."""
    asked = [p.strip().lower() for p in (scopes.split(",") if isinstance(scopes, str) else scopes)]
    asked = [p for p in asked if p]
    unknown = [p for p in asked if p not in SCOPES]
    if unknown:
        raise InvalidRegistration(f"unknown scope {unknown[0]!r}: the scopes are {', '.join(SCOPES)}")
    if not asked:
        raise InvalidRegistration(f"an API key needs at least one scope: {', '.join(SCOPES)}")
    return tuple(p for p in SCOPES if p in asked)


def key_scopes(key: ApiKey) -> frozenset[str]:
    """The scopes a stored key carries (an unknown word in the column grants nothing)."""
    return frozenset(p for p in (key.scopes or "").split(",") if p in SCOPES)


def allows(scopes: Iterable[str], needed: str) -> bool:
    held = set(scopes)
    return needed in held or ADMIN in held


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session,
    carrier_id: int,
    *,
    name: str,
    scopes: Iterable[str] | str = DEFAULT_SCOPES,
    actor: str = SYSTEM,
) -> tuple[ApiKey, str]:
    """A new key for the carrier with the scopes given (``submit`` unless told), and its token
    (the only time the secret is seen)."""
    carrier = get_carrier(session, carrier_id)
    if not name.strip():
        raise InvalidRegistration("an API key needs a name (what uses it)")
    granted = parse_scopes(scopes)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(
        key_id=key_id,
        carrier_id=carrier.id,
        name=name.strip(),
        secret_sha256=_digest(secret),
        scopes=",".join(granted),
    )
    session.add(key)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="api_key.create",
        subject_type="carrier",
        subject_id=carrier.id,
        after={"key_id": key_id, "name": key.name, "scopes": list(granted)},
    )
    return key, f"{PREFIX}_{key_id}_{secret}"


def set_scopes(session: Session, key_id: str, scopes: Iterable[str] | str, *, actor: str = SYSTEM) -> ApiKey:
    """Give a key these scopes instead of its own; the API sees the change within its cache time."""
    key = session.scalar(sa.select(ApiKey).where(ApiKey.key_id == key_id))
    if key is None:
        raise UnknownApiKey(key_id)
    before, granted = key.scopes, ",".join(parse_scopes(scopes))
    if granted != before:
        key.scopes = granted
        session.flush()
        record_event(
            session,
            actor=actor,
            action="api_key.scopes",
            subject_type="carrier",
            subject_id=key.carrier_id,
            before={"key_id": key_id, "scopes": before.split(",")},
            after={"key_id": key_id, "scopes": granted.split(",")},
        )
    return key


def authenticate(session: Session, token: str) -> ApiKey:
    """The live key the token names; ``InvalidApiKey`` otherwise (one error for every cause, so a
    caller learns nothing about which keys exist)."""
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise InvalidApiKey("not an API key")
    key = session.scalar(sa.select(ApiKey).where(ApiKey.key_id == match.group(1)))
    # Compare even when the key is unknown, so timing does not tell the two apart.
    expected = key.secret_sha256 if key is not None else "0" * 64
    if not hmac.compare_digest(expected, _digest(match.group(2))) or key is None:
        raise InvalidApiKey("unknown API key")
    if key.revoked_at is not None:
        raise InvalidApiKey("this API key was revoked")
    return key


def revoke_key(session: Session, key_id: str, *, actor: str = SYSTEM) -> ApiKey:
    key = session.scalar(sa.select(ApiKey).where(ApiKey.key_id == key_id))
    if key is None:
        raise UnknownApiKey(key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.flush()
        record_event(
            session,
            actor=actor,
            action="api_key.revoke",
            subject_type="carrier",
            subject_id=key.carrier_id,
            after={"key_id": key_id},
        )
    return key


def list_keys(session: Session, carrier_id: int) -> list[ApiKey]:
    get_carrier(session, carrier_id)
    return list(session.scalars(sa.select(ApiKey).where(ApiKey.carrier_id == carrier_id).order_by(ApiKey.id)))


class VerifiedKey(NamedTuple):
    carrier_id: int
    key_id: str
    scopes: frozenset[str]


class VerifiedKeys:
    """Tokens ``authenticate`` accepted, trusted for ``ttl_s`` seconds, so that a busy API does not
    ask the database about the same key on every request. Only successes are kept (an unknown or
    revoked key is asked about every time), by the token's digest, never the token itself; a
    revocation or a change of scopes takes effect within ``ttl_s``."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, VerifiedKey]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> VerifiedKey | None:
        """The carrier, key id and scopes of a token verified less than ``ttl_s`` ago."""
        if self.ttl_s <= 0:
            return None
        entry = self._entries.get(_digest(token))
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, key: VerifiedKey) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[_digest(token)] = (time.monotonic() + self.ttl_s, key)
