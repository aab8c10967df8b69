"""Who is signed in, what they may see and do, and the checks every form goes through.

- Sessions: Starlette's signed cookie (itsdangerous), limited to the dashboard's path, HttpOnly,
  SameSite=Lax, Secure whenever the request came over HTTPS (directly, or as a trusted proxy says:
  ``COMPLIANCE_TRUSTED_PROXIES``, whose X-Forwarded-Proto uvicorn believes); it holds the user's
  id, the user's session version (bumped when the password changes or the user is disabled, which
  ends every older session) and a CSRF token.
- CSRF: every form carries the session's token (the synchronizer-token pattern); a POST without
  it, or from another origin, is refused.
- Scope: a user of one carrier sees only that carrier's submissions, exactly as an API key does;
  anything else is "not found", never "forbidden", so that ids do not leak.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class SecureOverHttps:
    """Marks the session cookie ``Secure`` on a request that came over HTTPS. Starlette's
    ``https_only`` is fixed when the app is built; behind an HTTPS-terminating load balancer the
    scheme is known per request (uvicorn sets it from a trusted proxy's X-Forwarded-Proto)."""

    def __init__(self, app: ASGIApp, cookie: str = SESSION_COOKIE) -> None:
        self.app = app
        self.prefix = f"{cookie}=".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie" and value.startswith(self.prefix):
                        if b"secure" not in value.lower().split(b"; "):
                            value += b"; secure"
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secure)


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
    language: str | None = None  # the user's setting; None: their browser's

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
        language=user.language,
    )


def sign_in(request: Request, user: User) -> None:
    # A new session on sign-in: whatever the browser held before (a planted cookie) is dropped.
    request.session.clear()
    request.session.update(
        {"uid": user.id, "ver": user.session_version, "csrf": secrets.token_urlsafe(32), "at": int(time.time())}
    )


def sign_out(request: Request) -> None:
    """Ends the session on the server too: a cookie saved before sign-out no longer works."""
    uid = request.session.get("uid")
    if isinstance(uid, int):
        with request.app.state.store.sessions() as s, s.begin():
            users.end_sessions(s, uid, actor=f"user:{uid}")
    request.session.clear()


def signed_in(request: Request) -> Viewer | None:
    uid, version, at = request.session.get("uid"), request.session.get("ver"), request.session.get("at")
    if not isinstance(uid, int) or not isinstance(version, int) or not isinstance(at, int):
        return None
    # The cookie's own expiry slides with use (idle); this bound does not (absolute).
    if time.time() - at > request.app.state.settings.session_absolute_s:
        return None
    with request.app.state.primary_reads() as s:
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
    from this site. Behind an HTTPS-terminating load balancer the scheme compared is the one the
    trusted proxy reports (the proxy must pass the Host header through)."""
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
    """Failed sign-ins, counted per name (``limit`` in ``window_s``: guessing a password costs hours,
    a typo nothing) and per client address (``address_limit``: one password tried across many
    names). Checked before any password hash is computed. Counted in Redis, so every process and
    replica shares them and they expire by themselves; in this process's memory, bounded, while
    Redis cannot be reached."""

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        namespace: str = "",
        limit: int = 10,
        address_limit: int = 50,
        window_s: int = 15 * 60,
        max_local: int = 10_000,
    ) -> None:
        self.redis = redis
        # One deployment's counters: its processes share a database, so its URL names them.
        self.namespace = hashlib.sha256(namespace.encode()).hexdigest()[:16]
        self.limits = {"user": limit, "addr": address_limit}
        self.window_s = window_s
        self.max_local = max_local
        self._local: dict[str, tuple[float, int]] = {}  # key -> (window end, failures)
        self._lock = threading.Lock()

    @classmethod
    def on(cls, redis_url: str, *, namespace: str, **limits: int) -> SignInThrottle:
        """Counting in the Redis at ``redis_url``: a sign-in never waits on one that is down (no
        retries, half a second at most), it counts in memory instead."""
        client = Redis.from_url(redis_url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
        return cls(client, namespace=namespace, **limits)

    @staticmethod
    def keys(name: str, address: str | None) -> tuple[str, ...]:
        found = (f"user:{name}",)
        return (*found, f"addr:{address}") if address else found

    def _redis_key(self, key: str) -> str:
        return f"compliance:sign-in:{self.namespace}:" + hashlib.sha256(key.encode()).hexdigest()

    def _limit(self, key: str) -> int:
        return self.limits[key.split(":", 1)[0]]

    def blocked(self, *keys: str) -> bool:
        counts = self._counts(keys)
        return any(count >= self._limit(key) for key, count in zip(keys, counts, strict=True))

    def failed(self, *keys: str) -> None:
        if self.redis is not None:
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.incr(self._redis_key(key))
                        pipe.expire(self._redis_key(key), self.window_s, nx=True)
                    pipe.execute()
                return
            except RedisError:
                pass
        now = time.monotonic()
        with self._lock:
            if len(self._local) >= self.max_local:  # forget the windows that are over, then the oldest
                self._local = {k: v for k, v in self._local.items() if v[0] > now}
                while len(self._local) >= self.max_local:
                    del self._local[next(iter(self._local))]
            for key in keys:
                end, count = self._local.get(key, (now + self.window_s, 0))
                self._local[key] = (end, count + 1) if end > now else (now + self.window_s, 1)

    def succeeded(self, name_key: str) -> None:
        """A right password clears its name's failures (not its address's: a valid sign-in between
        guesses must not reset the count of a client trying many names)."""
        if self.redis is not None:
            try:
                self.redis.delete(self._redis_key(name_key))
                return
            except RedisError:
                pass
        with self._lock:
            self._local.pop(name_key, None)

    def _counts(self, keys: tuple[str, ...]) -> list[int]:
        if self.redis is not None:
            try:
                return [int(v or 0) for v in self.redis.mget([self._redis_key(k) for k in keys])]
            except RedisError:
                pass
        now = time.monotonic()
        with self._lock:
            return [c if (e := self._local.get(k, (0.0, 0)))[0] > now and (c := e[1]) else 0 for k in keys]
