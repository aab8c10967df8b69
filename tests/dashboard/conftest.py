"""Dashboard fixtures: a served app per test (on SQLite and PostgreSQL, see ``database_url``) and one
headless Chromium for the session: Debian's, driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import paired_blob_url
from tests.dashboard.site import PASSWORD, SCREENSHOTS, Site, serve
from tests.service.stack import RedisServer

CHROMIUM = os.environ.get("COMPLIANCE_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(autouse=True)
def english_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the pages' English (the catalogue's source): a site here speaks English
    unless a test asks for Chinese (test_language.py does, and checks the default is Chinese)."""
    monkeypatch.setenv("COMPLIANCE_DEFAULT_LANGUAGE", "en")


def _served(database_url: str, folder: Path, **overrides: object) -> Iterator[Site]:
    server, site = serve(database_url, folder, **overrides)
    with server:
        site.url = server.url
        yield site
    site.store.engine.dispose()


@pytest.fixture()
def site(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Site]:
    """The served site; its photos in the folder beside SQLite, in S3 beside PostgreSQL."""
    yield from _served(database_url, tmp_path, blob_url=paired_blob_url(request, database_url, tmp_path))


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server the site publishes to (and a test may kill)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture()
def brokered_site(database_url: str, tmp_path: Path, broker: RedisServer) -> Iterator[Site]:
    """The test site publishing to ``broker``."""
    yield from _served(database_url, tmp_path, broker_url=broker.url)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium` (.ci/run does)")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


class Visitor:
    """One person's browser tab on the site; fails the test on any script error in a page."""

    def __init__(self, browser: object, site: Site, *, viewport: dict[str, int] | None = None, **options: object):
        self.site = site
        self.context = browser.new_context(  # type: ignore[attr-defined]
            viewport=viewport or {"width": 1440, "height": 1000}, accept_downloads=True, **options
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))

    def go(self, path: str) -> object:
        return self.page.goto(self.site.url + path)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.go("/dashboard/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        with self.page.expect_navigation():
            self.page.click("form.login button[type=submit]")

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def visit(browser: object, site: Site) -> Iterator[object]:
    """``visit(username)`` opens a signed-in tab; every tab is closed afterwards."""
    opened: list[Visitor] = []

    def open_tab(username: str | None = None, **options: object) -> Visitor:
        visitor = Visitor(browser, site, **options)
        opened.append(visitor)
        if username:
            visitor.sign_in(username)
        return visitor

    yield open_tab
    for visitor in opened:
        visitor.close()
    errors = [e for v in opened for e in v.errors if "status of 40" not in e]
    assert not errors, f"script errors in the pages: {errors}"
