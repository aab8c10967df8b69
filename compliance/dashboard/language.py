"""The dashboard's two languages: Simplified Chinese and English (the source), from Babel catalogues.

Which one a page speaks: the signed-in user's setting, else the choice made with the header's switch
before signing in (kept in the session), else the browser's ``Accept-Language``, else
``COMPLIANCE_DEFAULT_LANGUAGE``. ``LanguageMiddleware`` puts the request where ``gettext`` finds
it (a context variable), so that Python code (form errors, chart titles, export headers) and the
templates (Jinja2's i18n extension) translate alike, on any thread the request runs on.

The catalogue is ``compliance/locale/zh_CN/LC_MESSAGES/messages.po``; an installed package holds
it compiled (setup.py compiles it at build time), a source checkout compiles it when first used.
README "How a new string gets translated" says how a string gets in.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any, get_args

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import get_timezone, get_timezone_name
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.types import ASGIApp, Receive, Scope, Send

from compliance.messages import Language as MessageLanguage
from compliance.settings import DashboardLanguage

LANGUAGES: tuple[DashboardLanguage, ...] = get_args(DashboardLanguage)
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
SESSION_KEY = "lang"  # the switch's choice before signing in
# What each language is called in the switch: in its own words.
NATIVE_NAMES: dict[str, str] = {"zh-CN": "中文", "en": "English"}
_BABEL_LOCALE = {"zh-CN": "zh_CN", "en": "en"}
# Zones a Chinese reader names "Beijing time" whatever the city (CLDR says 中国标准时间).
_BEIJING_TIME = {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"}


def N_(message: str) -> str:
    """Marks ``message`` for the catalogue; it is translated where it is shown, by ``gettext``."""
    return message


@cache
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of ``language`` (English, the source, needs none)."""
    if language == "en":
        return NullTranslations()
    folder = LOCALE_DIR / _BABEL_LOCALE[language] / "LC_MESSAGES"
    compiled = folder / f"{DOMAIN}.mo"
    source = folder / f"{DOMAIN}.po"
    if compiled.is_file() and (not source.is_file() or compiled.stat().st_mtime >= source.stat().st_mtime):
        with compiled.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    # A source checkout: the .po compiled in memory (a few milliseconds, once per process).
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=_BABEL_LOCALE[language], domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def negotiate(accept_language: str | None) -> DashboardLanguage | None:
    """The language ``Accept-Language`` prefers among ours (q-values honoured), or None."""
    if not accept_language:
        return None
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):  # bounded: a header is the client's
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            weighted.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(weighted):
        try:
            locale = Locale.parse(tag, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language == "zh":
            # Simplified Chinese for every Chinese the browser asks for: the only Chinese here.
            return "zh-CN"
        if locale.language == "en":
            return "en"
    return None


def choose(chosen: object, accept_language: str | None, default: str) -> str:
    """For someone with no setting of their own: the switch's choice kept in the session, else the
    browser's, else the default."""
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(accept_language) or default


class _Speech:
    """One request's language. The viewer's setting is read at each call, since the viewer is known
    only once the route's dependencies have run (``current_viewer`` puts it in the request's state);
    the rest (session, browser, default) is worked out once."""

    __slots__ = ("_language", "default", "scope")

    def __init__(self, scope: Scope, default: str) -> None:
        self.scope = scope
        self.default = default
        self._language: str | None = None

    @property
    def language(self) -> str:
        viewer = self.scope.get("state", {}).get("viewer")
        viewer_language = getattr(viewer, "language", None)
        if viewer_language in LANGUAGES:
            return str(viewer_language)
        if self._language is None:
            session = self.scope.get("session") or {}
            headers = dict(self.scope.get("headers") or [])
            accept = headers.get(b"accept-language", b"").decode("latin-1")
            self._language = choose(session.get(SESSION_KEY), accept, self.default)
        return self._language


_speech: ContextVar[_Speech | None] = ContextVar("dashboard_speech", default=None)


class LanguageMiddleware:
    """Makes each dashboard request's language reachable by ``gettext`` (inside SessionMiddleware)."""

    def __init__(self, app: ASGIApp, *, default: str, prefix: str) -> None:
        self.app = app
        self.default = default
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        token = _speech.set(_Speech(scope, self.default))
        try:
            await self.app(scope, receive, send)
        finally:
            _speech.reset(token)


def current_language() -> str:
    """The language of the request being answered; English outside one (the source strings)."""
    speech = _speech.get()
    return speech.language if speech is not None else "en"


def message_language() -> MessageLanguage:
    """The language as compliance.messages names it."""
    return "zh" if current_language() == "zh-CN" else "en"


def gettext(message: str, **variables: Any) -> str:
    text = translations(current_language()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(current_language()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


def template_gettext(message: str) -> str:
    # Jinja2's "newstyle" gettext fills the placeholders itself, escaping what it fills in.
    return translations(current_language()).gettext(message)


def template_ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_language()).ngettext(singular, plural, n)


def zone_name(zone: str, language: str | None = None) -> str:
    """The reports' zone named in words in ``language`` (北京时间, China Standard Time)."""
    language = language or current_language()
    if language == "zh-CN" and zone in _BEIJING_TIME:
        return "北京时间"
    try:
        where = get_timezone(zone)
        return get_timezone_name(where, width="long", zone_variant="standard", locale=_BABEL_LOCALE[language])
    except (LookupError, ValueError):
        return zone
