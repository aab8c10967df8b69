"""Who is signed in, what they may see and do, and the checks every form goes through.

- Sessions: Starlette's signed cookie (itsdangerous), limited to the dashboard's path, HttpOnly,
  SameSite=Lax, Secure behind HTTPS; it holds the user's id, the user's session version (bumped
  when the password changes or the user is disabled, which ends every older session) and a CSRF
  token.
- CSRF: every form carries the session's token (the synchronizer-token pattern); a POST without
  it, or from another origin, is refused.
- Scope: a user of one carrier sees only that carrier's submissions, exactly as an API key does;
  anything else is "not found", never "forbidden", so that ids do not leak.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request

from compliance.settings import Settings
from compliance.store import users
from compliance.store.models import Role, Submission, User

log = logging.getLogger(__name__)

SESSION_COOKIE = "compliance_session"
_SECRET_BYTES = 32


# Errors the dashboard turns into pages (see compliance.dashboard.install).


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotFound(Exception):
    def __init__(self, what: str = "page") -> None:
        super().__init__(f"no such {what}")


# The signing secret


def session_secret(settings: Settings) -> str:
    """``session_secret`` when set; else a random secret made once and kept, readable by its owner
    only, in ``settings.session_secret_path``."""
    if settings.session_secret is not None:
        value = settings.session_secret.get_secret_value()
        if len(value) < 32:
            raise ValueError("COMPLIANCE_SESSION_SECRET must be at least 32 characters")
        return value
    return _secret_file(settings.session_secret_path)


def _secret_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two processes start at once, one writes and the other reads what it wrote.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the writer may not have finished
            text = path.read_text().strip()
            if text:
                break
            time.sleep(0.05)
        else:
            raise ValueError(f"{path} is empty: delete it to have a new session secret made") from None
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(
                f"{path} (the dashboard's session secret) is readable by others (mode {mode:o}): chmod 600 it"
            ) from None
        return text
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    log.info("made a new dashboard session secret in %s", path)
    return secret


# Signed-in users


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person, as the pages need them (detached from any database session)."""

    id: int
    username: str
    display_name: str
    role: Role
    carrier_id: int | None  # None: every carrier
    carrier_code: str | None

    def may(self, role: Role) -> bool:
        return self.role.allows(role)

    @property
    def all_carriers(self) -> bool:
        return self.carrier_id is None

    def carrier_filter(self, requested: int | None) -> int | None:
        """The carrier a query is narrowed to: always the user's own when they have one."""
        return self.carrier_id if self.carrier_id is not None else requested

    def can_see(self, submission: Submission) -> bool:
        return self.carrier_id is None or submission.carrier_id == self.carrier_id


def _viewer(user: User) -> Viewer:
    return Viewer(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        carrier_id=user.carrier_id,
        carrier_code=user.carrier.code if user.carrier is not None else None,
    )


def sign_in(request: Request, user: User) -> None:
    # A new session on sign-in: whatever the browser held before (a planted cookie) is dropped.
    request.session.clear()
    request.session.update(
        {"uid": user.id, "ver": user.session_version, "csrf": secrets.token_urlsafe(32), "at": int(time.time())}
    )


def sign_out(request: Request) -> None:
    request.session.clear()


def signed_in(request: Request) -> Viewer | None:
    uid, version = request.session.get("uid"), request.session.get("ver")
    if not isinstance(uid, int) or not isinstance(version, int):
        return None
    with request.app.state.read_sessions() as s:
        user = users.get_user(s, uid)
        if user is None or not user.active or user.session_version != version:
            return None
        return _viewer(user)


def current_viewer(request: Request) -> Viewer:
    viewer = signed_in(request)
    if viewer is None:
        request.session.pop("uid", None)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/dashboard/")
    request.state.viewer = viewer
    return viewer


def requires(role: Role):
    def check(viewer: Annotated[Viewer, Depends(current_viewer)]) -> Viewer:
        if not viewer.may(role):
            raise Forbidden(f"this needs the {role.value} role; you are a {viewer.role.value}")
        return viewer

    return check


SignedIn = Annotated[Viewer, Depends(current_viewer)]
Reviewer = Annotated[Viewer, Depends(requires(Role.REVIEWER))]
Admin = Annotated[Viewer, Depends(requires(Role.ADMIN))]


# CSRF


def csrf_token(request: Request) -> str:
    """The session's token for forms; made on first use (the sign-in page's session has one too)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    """A POST must carry the session's token and, when the browser says where it came from, come
    from this site."""
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not secrets.compare_digest(expected, csrf_token):
        raise Forbidden("the form has expired or did not come from this site: reload the page and try again")
    origin = request.headers.get("origin")
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        parts = urlsplit(origin)
        if f"{parts.scheme}://{parts.netloc}" != own:
            raise Forbidden("the form was sent from another site")


CsrfChecked = Depends(check_csrf)


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never another site (an open redirect)."""
    if not target or not target.startswith("/dashboard") or target.startswith("//") or "\\" in target:
        return "/dashboard/"
    return target


# Sign-in attempts


class SignInThrottle:
    """At most ``limit`` failed sign-ins per name in ``window_s``: guessing a password costs
    hours, a typo costs nothing. In memory, per process."""

    def __init__(self, limit: int = 10, window_s: float = 15 * 60) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)
            if len(self._failures) > 10_000:  # names nobody has: forget the quiet ones
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
