"""People who sign in to the dashboard: argon2id password hashes, roles, one carrier or all.

Every function flushes and never commits; each change writes an audit event (never the hash).
"""

from __future__ import annotations

import re
from typing import get_args

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from compliance.settings import DashboardLanguage
from compliance.store.audit import SYSTEM, record_event
from compliance.store.errors import DuplicateUser, InvalidUser, UnknownUser
from compliance.store.models import MACHINE, Role, User, utcnow
from compliance.store.registry import get_carrier

# argon2-cffi's defaults: argon2id at RFC 9106's low-memory profile.
_hasher = PasswordHasher()
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@+-]{0,127}")
# Short passwords are refused; anything longer is the person's business.
PASSWORD_MIN = 10
# Verified when the user is unknown, so that a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def normalise_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidUser(
            f"{username!r} is not a usable name: letters, digits and . _ @ + - only, starting with a letter or digit"
        )
    if name in (MACHINE, SYSTEM):
        raise InvalidUser(f"{name!r} is reserved: the audit trail uses it for the system")
    return name


LANGUAGES: tuple[DashboardLanguage, ...] = get_args(DashboardLanguage)


def _checked_language(language: str | None) -> str | None:
    if language is not None and language not in LANGUAGES:
        raise InvalidUser(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


def _checked_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise InvalidUser(f"a password needs at least {PASSWORD_MIN} characters")
    return password


def add_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: Role | str,
    carrier_id: int | None,
    display_name: str | None = None,
    language: str | None = None,
    actor: str = SYSTEM,
) -> User:
    """``carrier_id`` None: the operator's own staff, who see every carrier. ``language`` None: the
    dashboard follows their browser."""
    name = normalise_username(username)
    role = Role(role)
    _checked_language(language)
    if carrier_id is not None:
        get_carrier(session, carrier_id)
    if session.scalar(sa.select(User.id).where(User.username == name)) is not None:
        raise DuplicateUser(name)
    user = User(
        username=name,
        display_name=(display_name or "").strip() or name,
        password_hash=_hasher.hash(_checked_password(password)),
        role=role,
        carrier_id=carrier_id,
        active=True,
        session_version=1,
        language=language,
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="user.add",
        subject_type="user",
        subject_id=user.id,
        after={
            "username": name,
            "role": role.value,
            "carrier_id": carrier_id,
            "display_name": user.display_name,
            "language": language,
        },
    )
    return user


def set_language(session: Session, user_id: int, language: str | None, *, actor: str) -> User:
    """The dashboard's language for the user (None: their browser's); sessions stay signed in."""
    user = session.get(User, user_id)
    if user is None:
        raise UnknownUser(str(user_id))
    before = user.language
    user.language = _checked_language(language)
    session.flush()
    if before != user.language:
        record_event(
            session,
            actor=actor,
            action="user.language",
            subject_type="user",
            subject_id=user.id,
            before={"language": before},
            after={"language": user.language},
        )
    return user


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def find_user(session: Session, username: str) -> User:
    user = session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise UnknownUser(username)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(sa.select(User).order_by(User.username)))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None. A hash made with weaker parameters
    than today's is replaced on success."""
    user = session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    try:
        _hasher.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def set_password(session: Session, username: str, password: str, *, actor: str = SYSTEM) -> User:
    """A new password; every session signed in with the old one ends."""
    user = find_user(session, username)
    user.password_hash = _hasher.hash(_checked_password(password))
    user.session_version += 1
    session.flush()
    record_event(session, actor=actor, action="user.password", subject_type="user", subject_id=user.id)
    return user


def end_sessions(session: Session, user_id: int, *, actor: str) -> None:
    """Sign-out: every session the user holds ends on the server, whatever cookie a browser kept.
    (A session is good for the user's ``session_version``; this is the next one.)"""
    user = session.get(User, user_id)
    if user is None:
        return
    user.session_version += 1
    session.flush()
    record_event(session, actor=actor, action="user.sign_out", subject_type="user", subject_id=user.id)


def set_active(session: Session, username: str, active: bool, *, actor: str = SYSTEM) -> User:
    user = find_user(session, username)
    before = user.active
    user.active = active
    user.session_version += 1
    session.flush()
    record_event(
        session,
        actor=actor,
        action="user.active",
        subject_type="user",
        subject_id=user.id,
        before={"active": before},
        after={"active": active},
    )
    return user
