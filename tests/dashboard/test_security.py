"""Sign-in, sessions, CSRF, scoping and bad input at the HTTP level, on SQLite and PostgreSQL.

The data is written by the store's functions with small judgments: what is under test here is the
dashboard's edge, not a model."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from pydantic import SecretStr

from compliance.api.app import create_app
from compliance.dashboard.overview import script_json
from compliance.dashboard.security import session_secret
from compliance.dashboard.templating import plotly_js
from compliance.settings import Settings
from compliance.store import Store, registry, submissions, users, verdicts
from compliance.store.models import MACHINE, Role
from compliance.verdicts import Outcome, ReasonCode
from tests.store.samples import verdict

PASSWORD = "correct horse battery"


@dataclass
class App:
    client: TestClient
    store: Store
    review: str  # an ACME submission in REVIEW
    other: str  # an OTHER submission


@pytest.fixture()
def app(database_url: str, tmp_path: Path) -> Iterator[App]:
    settings = Settings(database_url=database_url, blob_dir=tmp_path / "blobs")
    store = Store.open(settings)
    ids = []
    with store.sessions() as s, s.begin():
        for code in ("ACME", "OTHER"):
            carrier = registry.add_carrier(s, code=code, name=code)
            driver = registry.add_driver(s, carrier_id=carrier.id, name=f"{code} driver")
            sub = submissions.create_submission(
                s,
                carrier_id=carrier.id,
                driver_id=driver.id,
                photo_sha256=f"{len(ids) + 1:064x}",
                photo_phash=f"{len(ids) + 1:016x}",
                source="api",
            ).submission
            verdicts.record_verdict(s, sub.id, verdict(Outcome.REVIEW, reasons=(ReasonCode.FACE_UNCERTAIN,)))
            ids.append(sub.id)
            for role in Role:
                users.add_user(
                    s, username=f"{code.lower()}.{role.value}", password=PASSWORD, role=role, carrier_id=carrier.id
                )
    with TestClient(create_app(settings), base_url="http://dash.test") as client:
        yield App(client, store, *ids)
    store.engine.dispose()


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no form token on the page"
    return found[1]


def sign_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/dashboard/"):
    form = client.get("/dashboard/login")
    return client.post(
        "/dashboard/login",
        data={"username": username, "password": password, "csrf_token": token(form.text), "next": next_path},
        follow_redirects=False,
    )


def test_the_session_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", blob_dir=tmp_path / "blobs")
    assert settings.session_secret_path == tmp_path / "x.db.session-secret"
    first = session_secret(settings)
    assert len(first) >= 40 and session_secret(settings) == first  # made once, read after
    assert stat.S_IMODE(os.stat(settings.session_secret_path).st_mode) == 0o600
    os.chmod(settings.session_secret_path, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        session_secret(settings)
    with pytest.raises(ValueError, match="at least 32"):
        session_secret(Settings(session_secret=SecretStr("short")))
    given = "x" * 40
    assert session_secret(Settings(session_secret=SecretStr(given))) == given
    pg = Settings(database_url="postgresql+psycopg://db/compliance", blob_dir=tmp_path / "shared" / "blobs")
    assert pg.session_secret_path == tmp_path / "shared" / "session-secret"


def test_pages_need_a_signed_in_user(app: App) -> None:
    for path in ("/dashboard/", "/dashboard/submissions", f"/dashboard/submissions/{app.review}/photo"):
        response = app.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/dashboard/login?next=")
    signed = sign_in(app.client, "acme.viewer", next_path="/dashboard/submissions")
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard/submissions"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboard" in cookie


def test_sign_in_refuses_wrong_passwords_and_other_sites(app: App) -> None:
    assert sign_in(app.client, "acme.viewer", "wrong password").status_code == 401
    assert sign_in(app.client, "nobody", PASSWORD).status_code == 401
    # Only a path inside the dashboard is followed after signing in.
    assert sign_in(app.client, "acme.viewer", next_path="https://evil.test/").headers["location"] == "/dashboard/"
    assert sign_in(app.client, "acme.viewer", next_path="//evil.test/x").headers["location"] == "/dashboard/"


def test_guessing_a_password_is_stopped(app: App) -> None:
    for _ in range(10):
        assert sign_in(app.client, "acme.admin", "guess").status_code == 401
    # Even the right password waits now.
    assert sign_in(app.client, "acme.admin", PASSWORD).status_code == 429
    assert sign_in(app.client, "acme.viewer", PASSWORD).status_code == 303  # other names are not locked


def test_forms_need_the_sessions_token_and_this_site(app: App) -> None:
    app.client.get("/dashboard/login")
    no_token = app.client.post("/dashboard/login", data={"username": "acme.viewer", "password": PASSWORD})
    assert no_token.status_code == 403
    assert sign_in(app.client, "acme.reviewer").status_code == 303
    page = app.client.get(f"/dashboard/review/{app.review}")
    form = {"csrf_token": token(page.text), "decision": "approve", "verdict_id": _current_id(app)}
    other_site = app.client.post(
        f"/dashboard/review/{app.review}", data=form, headers={"Origin": "https://evil.test"}, follow_redirects=False
    )
    assert other_site.status_code == 403
    wrong_token = app.client.post(f"/dashboard/review/{app.review}", data={**form, "csrf_token": "forged"})
    assert wrong_token.status_code == 403
    with app.store.sessions() as s:
        assert submissions.get_submission(s, app.review).decided_by == MACHINE
    done = app.client.post(f"/dashboard/review/{app.review}", data=form, follow_redirects=False)
    assert done.status_code == 303
    with app.store.sessions() as s:
        assert submissions.get_submission(s, app.review).decided_by == "acme.reviewer"


def _current_id(app: App) -> str:
    with app.store.sessions() as s:
        return str(submissions.get_submission(s, app.review).current_verdict.id)


def test_a_decision_on_a_verdict_that_changed_meanwhile_is_not_recorded(app: App) -> None:
    sign_in(app.client, "acme.reviewer")
    page = app.client.get(f"/dashboard/review/{app.review}")
    form = {"csrf_token": token(page.text), "decision": "approve", "verdict_id": _current_id(app)}
    with app.store.sessions() as s, s.begin():
        verdicts.record_review(s, app.review, reviewer="acme.admin", outcome=Outcome.FAIL, note="first")
    late = app.client.post(f"/dashboard/review/{app.review}", data=form)
    assert late.status_code == 400 and "decided meanwhile (by acme.admin)" in late.text
    with app.store.sessions() as s:
        assert submissions.get_submission(s, app.review).outcome is Outcome.FAIL


def test_a_rejection_needs_a_reason_and_a_correction_must_be_a_plate(app: App) -> None:
    sign_in(app.client, "acme.reviewer")
    page = app.client.get(f"/dashboard/review/{app.review}")
    form = {"csrf_token": token(page.text), "verdict_id": _current_id(app)}
    assert (
        "needs a reason" in app.client.post(f"/dashboard/review/{app.review}", data={**form, "decision": "reject"}).text
    )
    bad_plate = app.client.post(
        f"/dashboard/review/{app.review}", data={**form, "decision": "approve", "plate_text": "·· "}
    )
    assert bad_plate.status_code == 400 and "correction refused" in bad_plate.text
    with app.store.sessions() as s:
        assert submissions.get_submission(s, app.review).decided_by == MACHINE


def test_a_password_change_ends_the_session(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    assert app.client.get("/dashboard/submissions").status_code == 200
    with app.store.sessions() as s, s.begin():
        users.set_password(s, "acme.viewer", "a brand new password")
    assert app.client.get("/dashboard/submissions", follow_redirects=False).status_code == 303


def test_another_carriers_submission_is_not_found(app: App) -> None:
    sign_in(app.client, "acme.admin")
    for path in (f"/dashboard/submissions/{app.other}", f"/dashboard/review/{app.other}"):
        assert app.client.get(path).status_code == 404
    forged = app.client.get(f"/dashboard/review/{app.review}")
    form = {"csrf_token": token(forged.text), "decision": "approve", "verdict_id": "1"}
    assert app.client.post(f"/dashboard/review/{app.other}", data=form).status_code == 404
    # A carrier filter naming another carrier is ignored: the user's own carrier stays.
    listing = app.client.get("/dashboard/submissions?carrier=OTHER")
    assert app.review in listing.text and app.other not in listing.text
    export = app.client.get("/dashboard/exports/verdicts.csv?carrier=OTHER")
    assert app.review in export.text and app.other not in export.text


def test_bad_filters_say_what_is_wrong(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    for query, message in (
        ("since=yesterday", "is not a date"),
        ("outcome=MAYBE", "is not one of"),
        ("reason=NOPE", "is not one of"),
        ("driver=ghost", "no driver"),
        ("since=2026-02-01&until=2026-01-01", "until is before since"),
        ("cursor=garbage", "out of date"),
    ):
        response = app.client.get(f"/dashboard/submissions?{query}")
        assert response.status_code == 400 and message in response.text, query
    assert app.client.get("/dashboard/exports/verdicts.csv?since=yesterday").status_code == 400
    assert app.client.get("/dashboard/?since=nope").status_code == 400


def test_pages_carry_security_headers_and_their_server_time(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    page = app.client.get("/dashboard/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"
    assert re.fullmatch(r"app;dur=[0-9.]+", page.headers["server-timing"])
    # plotly.js comes from the plotly wheel through the app: no CDN.
    script = re.search(r'src="(/dashboard/assets/plotly-[^"]+\.min\.js)"', page.text)
    assert script and "cdn" not in page.text.lower()
    served = app.client.get(script[1])
    assert served.status_code == 200 and served.content == plotly_js().read_bytes()


def test_training_data_needs_the_reviewer_role(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    for kind in ("sft", "dpo"):
        assert app.client.get(f"/dashboard/exports/training/{kind}.zip").status_code == 403
    assert "export-sft" not in app.client.get("/dashboard/exports").text
    sign_in(app.client, "acme.reviewer")
    assert app.client.get("/dashboard/exports/training/other.zip").status_code == 404


def test_chart_data_cannot_close_its_script_element() -> None:
    text = script_json({"reason": "</script><script>alert(1)</script>", "and": "<!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"reason": "</script><script>alert(1)</script>", "and": "<!-- & -->"}


FILTERS = ("carrier", "driver", "plate", "site", "since", "until", "status", "outcome", "reason", "sort", "cursor")


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(FILTERS),
    value=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["²", "9" * 30, "#99999999999", "0001-01-01", "9999-12-31", "-1", "\x00", "1e309"]),
    ),
)
def test_any_filter_value_is_a_page_or_a_400_never_a_5xx(app: App, name: str, value: str) -> None:
    if not getattr(app.client, "_signed_in", False):
        sign_in(app.client, "acme.admin")
        app.client._signed_in = True  # type: ignore[attr-defined]
    for path in ("/dashboard/submissions", "/dashboard/exports/verdicts.csv", "/dashboard/"):
        response = app.client.get(path, params={name: value})
        assert response.status_code < 500, (path, name, value, response.status_code)
        if response.status_code == 200 and path.endswith(".csv"):
            assert response.text.startswith("\ufeffsubmission"), (name, value)


def test_sign_out_ends_the_session_on_the_server(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    saved = app.client.cookies.get("compliance_session")
    page = app.client.get("/dashboard/submissions")
    assert page.status_code == 200
    app.client.post("/dashboard/logout", data={"csrf_token": token(page.text)}, follow_redirects=False)
    app.client.cookies.set("compliance_session", saved, path="/dashboard")  # a cookie kept from before
    assert app.client.get("/dashboard/submissions", follow_redirects=False).status_code == 303


def test_a_session_ends_after_its_absolute_lifetime_however_busy(app: App) -> None:
    sign_in(app.client, "acme.viewer")
    assert app.client.get("/dashboard/submissions", follow_redirects=False).status_code == 200
    settings = app.client.app.state.settings
    app.client.app.state.settings = settings.model_copy(update={"session_absolute_s": 0})
    try:
        time.sleep(1.1)
        assert app.client.get("/dashboard/submissions", follow_redirects=False).status_code == 303
    finally:
        app.client.app.state.settings = settings


def test_one_address_trying_many_names_is_stopped(app: App) -> None:
    names = [f"nobody-{i}" for i in range(50)]
    for name in names:
        assert sign_in(app.client, name, "guess").status_code == 401
    # The address is blocked now, for a name never tried and even with the right password.
    assert sign_in(app.client, "acme.viewer", PASSWORD).status_code == 429


def test_the_throttle_is_shared_through_redis_and_bounded_without_it(tmp_path: Path) -> None:
    from compliance.dashboard.security import SignInThrottle
    from tests.service.stack import RedisServer

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        one, two = (SignInThrottle.on(server.url, limit=3, namespace="db-a") for _ in range(2))
        elsewhere = SignInThrottle.on(server.url, limit=3, namespace="db-b")
        keys = SignInThrottle.keys("li.wei", "203.0.113.7")
        for throttle in (one, two, one):  # failures counted by different processes add up
            throttle.failed(*keys)
        assert one.blocked(*keys) and two.blocked(*keys) and not elsewhere.blocked(*keys)
        assert redis.Redis(port=server.port).ttl(one._redis_key(keys[0])) > 0  # they expire by themselves
    finally:
        server.kill()
    offline = SignInThrottle.on(server.url, limit=3, max_local=100, namespace="db-a")
    started = time.monotonic()
    for i in range(150):
        offline.failed(*SignInThrottle.keys(f"name-{i}", None))
    assert len(offline._local) <= 100
    assert time.monotonic() - started < 15  # Redis down: each failure counted at once, in memory
    offline.failed("user:x")
    offline.failed("user:x")
    offline.failed("user:x")
    assert offline.blocked("user:x")
