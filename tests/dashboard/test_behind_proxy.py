"""Behind an HTTPS-terminating load balancer on another host, through a real ``compliance api``
(uvicorn): a request that a trusted proxy says came over HTTPS signs in (the Origin check compares
https with https) and gets a Secure session cookie; the same headers from an address that is not
a trusted proxy are not believed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from compliance.settings import Settings
from compliance.store import Store, users
from compliance.store.models import Role
from tests.service.stack import REPO, RedisServer, start_api

PASSWORD = "a long passphrase for tests"
PUBLIC = "dash.example.cn"  # the name the browser sees; the balancer passes Host through
HTTPS = {"Host": PUBLIC, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("behind-proxy")
    values = {
        "database_url": f"sqlite:///{folder / 'compliance.db'}",
        "blob_dir": str(folder / "blobs"),
        "session_secret": "s" * 40,
    }
    store = Store.open(Settings(**values))  # type: ignore[arg-type]
    with store.sessions() as s, s.begin():
        users.add_user(s, username="ops", password=PASSWORD, role=Role.ADMIN, carrier_id=None)
    store.engine.dispose()
    yield folder, values


def api_trusting(
    folder: Path, values: dict[str, str], redis: RedisServer, trusted: str, name: str
) -> tuple[object, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **{f"COMPLIANCE_{k.upper()}": v for k, v in values.items()},
        "COMPLIANCE_BROKER_URL": redis.url,
        "COMPLIANCE_TRUSTED_PROXIES": trusted,
    }
    return start_api(env, folder / f"{name}.log", REPO)


def sign_in_over_https(base: str) -> tuple[httpx.Response, httpx.Response]:
    """The login page and the sign-in POST, as the balancer forwards a browser's HTTPS requests."""
    with httpx.Client(base_url=base, timeout=10) as client:
        page = client.get("/dashboard/login", headers=HTTPS)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        cookie = page.headers["set-cookie"].split(";", 1)[0]  # sent back by hand: httpx keeps Secure ones for https
        posted = client.post(
            "/dashboard/login",
            data={"username": "ops", "password": PASSWORD, "csrf_token": token[1], "next": "/dashboard/"},
            headers={**HTTPS, "Origin": f"https://{PUBLIC}", "Cookie": cookie},
            follow_redirects=False,
        )
    return page, posted


def flags(response: httpx.Response) -> list[str]:
    return [part.strip().lower() for part in response.headers["set-cookie"].split(";")]


def test_a_trusted_balancer_says_https_and_the_dashboard_believes_it(
    database: tuple[Path, dict[str, str]], redis_server: RedisServer
) -> None:
    folder, values = database
    process, base = api_trusting(folder, values, redis_server, "127.0.0.1", "trusted")
    try:
        page, posted = sign_in_over_https(base)
        assert "secure" in flags(page)
        assert posted.status_code == 303, posted.text[:500]
        assert "secure" in flags(posted)
        # Plain http straight to the host (a health check, a local admin): no Secure flag to lose the cookie.
        assert "secure" not in flags(httpx.get(base + "/dashboard/login", headers={"Host": PUBLIC}))
    finally:
        process.stop()  # type: ignore[attr-defined]


def test_forwarded_headers_from_an_untrusted_address_are_not_believed(
    database: tuple[Path, dict[str, str]], redis_server: RedisServer
) -> None:
    folder, values = database
    process, base = api_trusting(folder, values, redis_server, "10.20.30.40", "untrusted")
    try:
        page, posted = sign_in_over_https(base)
        assert "secure" not in flags(page)  # the app saw http: the client only claimed https
        assert posted.status_code == 403 and "another site" in posted.text
    finally:
        process.stop()  # type: ignore[attr-defined]
