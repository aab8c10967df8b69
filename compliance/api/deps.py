"""What every route may depend on: the caller (from its API key), the store, settings, publisher, and
the language its explanations are written in (from Accept-Language)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from compliance.api.errors import ApiError
from compliance.messages import TAGS, Language, negotiate
from compliance.queue.publisher import Publisher
from compliance.settings import Settings
from compliance.store import Store, keys
from compliance.store.errors import InvalidApiKey

_bearer = HTTPBearer(auto_error=False, description="A carrier's API key: `Authorization: Bearer cmp_…`")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: every query is scoped to ``carrier_id``; ``scopes`` is what its key may do."""

    carrier_id: int
    key_id: str
    scopes: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        return f"api-key:{self.key_id}"


# The dependencies are coroutines: FastAPI runs a plain function dependency in its thread pool, a
# hand-off per dependency per request that cost an upload more than its own SQL. Only a key not
# verified lately goes to a thread, for its query.


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_publisher(request: Request) -> Publisher:
    return request.app.state.publisher


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


async def get_caller(
    request: Request,
    store: Annotated[Store, Depends(get_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise _unauthorized("an API key is required: Authorization: Bearer cmp_…")
    token = credentials.credentials
    verified: keys.VerifiedKeys = request.app.state.verified_keys
    known = verified.get(token)
    if known is not None:
        return Caller(carrier_id=known.carrier_id, key_id=known.key_id, scopes=known.scopes)
    return await run_in_threadpool(_authenticate, store, verified, token)


def _authenticate(store: Store, verified: keys.VerifiedKeys, token: str) -> Caller:
    with store.sessions() as s:
        try:
            key = keys.authenticate(s, token)
        except InvalidApiKey as exc:
            raise _unauthorized(str(exc)) from None
        known = keys.VerifiedKey(key.carrier_id, key.key_id, keys.key_scopes(key))
        verified.put(token, known)
        return Caller(carrier_id=known.carrier_id, key_id=known.key_id, scopes=known.scopes)


@cache  # one dependency per scope, so FastAPI resolves it (and the caller under it) once a request
def requires(scope: str) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """The caller, if its key has ``scope`` (or ``admin``); a 403 naming the scope otherwise. A
    router declares its scope with it once: ``dependencies=[Depends(requires("registry"))]``."""
    if scope not in keys.SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def caller_with_scope(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if not keys.allows(caller.scopes, scope):
            held = ", ".join(sorted(caller.scopes)) or "none"
            raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope (it has: {held})")
        return caller

    return caller_with_scope


async def get_language(
    response: Response,
    accept_language: Annotated[
        str | None,
        Header(
            alias="Accept-Language",
            description="the language of `reason_messages`: any `zh` (zh-CN, zh-Hans, ...) gives Simplified "
            "Chinese, anything else English; q-values are honoured. The answer's Content-Language names it.",
        ),
    ] = None,
) -> Language:
    """The language a route's explanations are written in; the codes beside them never change."""
    language = negotiate(accept_language)
    response.headers["Content-Language"] = TAGS[language]
    response.headers.append("Vary", "Accept-Language")  # so that a cache keeps one answer per language
    return language


CallerDep = Annotated[Caller, Depends(get_caller)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PublisherDep = Annotated[Publisher, Depends(get_publisher)]
LanguageDep = Annotated[Language, Depends(get_language)]
