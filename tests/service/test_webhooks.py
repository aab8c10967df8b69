"""Webhooks cannot be turned against internal services: odd host forms are refused at registration,
a delivery resolves its host once and connects to the address it checked, a failed lookup refuses,
an internal error body is never shown, a slow receiver is cut off at the deadline, and whatever goes
wrong is an attempt counted toward ``webhook_max_attempts``."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from compliance.demo import samples_dir
from compliance.photos import read_photo_file
from compliance.pipelines import get_pipeline
from compliance.service import webhooks as service
from compliance.service.intake import Upload, accept
from compliance.service.verdicts import judge
from compliance.settings import Settings
from compliance.store import Store, registry, submissions, webhooks
from compliance.store.models import DeliveryStatus, WebhookDelivery, utcnow
from tests.api.helpers import assert_error
from tests.service.conftest import Api

SAMPLES = samples_dir()

INTERNAL_HOSTS = [
    "0x7f000001",
    "2130706433",
    "127.1",
    "0177.0.0.1",
    "127.0.0.1.",
    "localhost.",
    "LocalHost",
    "foo.localhost",
    "ｌｏｃａｌｈｏｓｔ",  # full-width
    "１２７.０.０.１",  # full-width
    "10.1",
    "[64:ff9b::7f00:1]",  # NAT64
    "[2002:7f00:1::]",  # 6to4
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::7f00:1]",  # IPv4-compatible
    "[::ffff:a9fe:a9fe]",  # the metadata service, mapped
]


@pytest.mark.parametrize("host", INTERNAL_HOSTS)
def test_internal_host_forms_are_refused(host: str) -> None:
    with pytest.raises(service.RefusedURL):
        service.check_url(f"http://{host}:8080/hook")


def test_registration_refuses_internal_host_forms(api: Api) -> None:
    api.settings.webhook_allow_private = False
    for host in INTERNAL_HOSTS:
        response = api.client.post("/v1/webhooks", json={"url": f"http://{host}/hook"}, headers=api.acme.auth)
        assert_error(response, 422)
    # A name that does not resolve is refused too: nothing says where it would go.
    assert_error(api.client.post("/v1/webhooks", json={"url": "https://gone.invalid/"}, headers=api.acme.auth), 422)


def test_public_names_are_normalised() -> None:
    assert service.normalise_host("Ｅxample.COM.") == "example.com"
    assert service.normalise_host("0x08080808") == "8.8.8.8"
    assert service.normalise_host("deadbeef") == "deadbeef"  # a name, not a number
    assert service.is_public(ipaddress.ip_address("2002:808:808::"))
    assert not service.is_public(ipaddress.ip_address("64:ff9b::a00:1"))


# A local receiver whose behaviour each test chooses


@dataclass
class Receiver:
    port: int = 0
    answer: Callable[[BaseHTTPRequestHandler], None] | None = None
    requests: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(dict(self.headers))
            if state.answer is not None:
                state.answer(self)
                return
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        blob_dir=tmp_path / "blobs",
        webhook_allow_private=False,
        webhook_deadline_s=1.0,
        webhook_max_attempts=1,
    )


@dataclass
class Decided:
    store: Store
    settings: Settings
    carrier_id: int
    submission_id: str
    verdict_id: int

    def delivery_to(self, url: str) -> int:
        with self.store.sessions() as s, s.begin():
            webhooks.add_webhook(s, self.carrier_id, url)
            s.flush()
            return webhooks.queue_deliveries(
                s,
                carrier_id=self.carrier_id,
                submission_id=self.submission_id,
                verdict_id=self.verdict_id,
                decided_at=utcnow(),
                event=service.EVENT,
                body='{"test":true}',
            )[0]

    def deliver(self, delivery_id: int) -> service.Attempted:
        with httpx.Client() as client:
            return service.deliver(self.store, self.settings, delivery_id, client)

    def delivery(self, delivery_id: int) -> WebhookDelivery:
        with self.store.sessions() as s:
            delivery = s.get(WebhookDelivery, delivery_id)
            assert delivery is not None
            delivery.tries  # noqa: B018 (loaded before the session closes)
            return delivery


@pytest.fixture()
def decided(settings: Settings) -> Iterator[Decided]:
    store = Store.open(settings)
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="Acme")
        registry.add_vehicle(s, carrier_id=carrier.id, registered_plate="皖AUJ299")
        sha = store.blobs.put((SAMPLES / "licence_a.jpg").read_bytes())
        registry.add_driver(s, carrier_id=carrier.id, name="A-1", external_ref="A-1", licence_sha256=sha)
        carrier_id = carrier.id
    photo = read_photo_file(SAMPLES / "a_by_car_wanAUJ299.jpg", max_bytes=20_000_000, max_pixels=50_000_000)
    accepted = accept(store, photo, Upload(carrier="ACME", driver="A-1", plate="皖AUJ299"))
    judge(store, settings, accepted.submission_id, get_pipeline("multistage", settings))
    with store.sessions() as s:
        verdict = submissions.get_submission(s, accepted.submission_id).current_verdict
        assert verdict is not None
        verdict_id = verdict.id
    yield Decided(store, settings, carrier_id, accepted.submission_id, verdict_id)
    store.engine.dispose()


def fake_dns(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str | None]) -> list[str]:
    """``name`` resolves to each of ``answers`` in turn (None: the lookup fails), then to the last;
    every other name as usual. Patched where every resolver in the process looks (ours and httpx's)."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        answer = answers[min(len(asked), len(answers) - 1)]
        asked.append(str(answer))
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_dns_rebinding_cannot_reach_an_internal_address(
    decided: Decided, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is public when checked and loopback a moment later: the POST goes to the address
    that was checked (public, unreachable here), never to the receiver on loopback."""
    asked = fake_dns(monkeypatch, "hooks.example", ["1.2.3.4", "127.0.0.1"])
    delivery_id = decided.delivery_to(f"http://hooks.example:{receiver.port}/hook")
    attempted = decided.deliver(delivery_id)
    assert receiver.requests == []
    assert attempted.status is DeliveryStatus.FAILED
    assert len(asked) == 1  # one lookup; the connection went to its answer


def test_a_name_that_turned_internal_is_refused_at_delivery(
    decided: Decided, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns(monkeypatch, "hooks.example", ["127.0.0.1"])
    delivery_id = decided.delivery_to(f"http://hooks.example:{receiver.port}/hook")
    assert decided.deliver(delivery_id).status is DeliveryStatus.FAILED
    assert receiver.requests == []
    (attempt,) = decided.delivery(delivery_id).tries
    assert attempt.error is not None and attempt.error.startswith("refused:")


def test_a_failed_lookup_fails_closed(decided: Decided, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup at check time fails; a second one (by the HTTP client) would find loopback."""
    fake_dns(monkeypatch, "hooks.example", [None, "127.0.0.1"])
    delivery_id = decided.delivery_to(f"http://hooks.example:{receiver.port}/hook")
    assert decided.deliver(delivery_id).status is DeliveryStatus.FAILED
    assert receiver.requests == []
    (attempt,) = decided.delivery(delivery_id).tries
    assert attempt.error is not None and "does not resolve" in attempt.error


def test_the_post_carries_the_name_and_goes_to_the_checked_address(
    decided: Decided, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    decided.settings.webhook_allow_private = True
    asked = fake_dns(monkeypatch, "receiver.test", ["127.0.0.1", "192.0.2.1"])
    delivery_id = decided.delivery_to(f"http://receiver.test:{receiver.port}/hook")
    assert decided.deliver(delivery_id).status is DeliveryStatus.DELIVERED
    assert len(asked) == 1
    assert receiver.requests[0]["Host"] == f"receiver.test:{receiver.port}"


def test_an_error_body_is_not_shown(decided: Decided, receiver: Receiver) -> None:
    decided.settings.webhook_allow_private = True

    def internal_error(handler: BaseHTTPRequestHandler) -> None:
        body = b"db password=hunter2 at 10.0.0.7"
        handler.send_response(500)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    receiver.answer = internal_error
    delivery_id = decided.delivery_to(f"http://127.0.0.1:{receiver.port}/hook")
    assert decided.deliver(delivery_id).status is DeliveryStatus.FAILED
    (attempt,) = decided.delivery(delivery_id).tries
    assert attempt.status_code == 500 and attempt.error == "HTTP 500"


def trickle(headers_first: bool, seconds: float = 6.0) -> Callable[[BaseHTTPRequestHandler], None]:
    """Answer a byte at a time for ``seconds`` (each byte well within any per-read timeout): the
    body of a 200 claiming 10 MB, or the headers themselves."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        out = handler.wfile
        try:
            if headers_first:
                out.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
            else:
                out.write(b"HTTP/1.1 200 OK\r\n")
            out.flush()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                out.write(b"x" if headers_first else b"X-Slow: x\r\n")
                out.flush()
                time.sleep(0.05)
        except OSError:
            pass
        handler.close_connection = True

    return answer


@pytest.mark.parametrize("headers_first", [True, False], ids=["slow-body", "slow-headers"])
def test_a_slow_answer_is_cut_off_at_the_deadline(decided: Decided, receiver: Receiver, headers_first: bool) -> None:
    decided.settings.webhook_allow_private = True
    receiver.answer = trickle(headers_first)
    delivery_id = decided.delivery_to(f"http://127.0.0.1:{receiver.port}/hook")
    start = time.monotonic()
    attempted = decided.deliver(delivery_id)
    assert time.monotonic() - start < decided.settings.webhook_deadline_s + 1.5
    (attempt,) = decided.delivery(delivery_id).tries
    if headers_first:  # the status came in time: delivered, the rest of the body unread
        assert attempted.status is DeliveryStatus.DELIVERED and attempt.status_code == 200
    else:
        assert attempted.status is DeliveryStatus.FAILED and attempt.status_code is None
        assert attempt.error is not None and "TimeoutError" in attempt.error


def test_a_large_body_is_read_only_so_far(decided: Decided, receiver: Receiver) -> None:
    decided.settings.webhook_allow_private = True
    sent: list[int] = []

    def huge(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(1 << 30))
        handler.end_headers()
        chunk = b"x" * 65536
        try:
            for _ in range(1 << 14):
                handler.wfile.write(chunk)
                sent.append(len(chunk))
        except OSError:
            pass

    receiver.answer = huge
    delivery_id = decided.delivery_to(f"http://127.0.0.1:{receiver.port}/hook")
    start = time.monotonic()
    assert decided.deliver(delivery_id).status is DeliveryStatus.DELIVERED
    assert time.monotonic() - start < decided.settings.webhook_deadline_s + 1.5
    time.sleep(0.2)
    assert sum(sent) < 64 << 20  # the connection was closed long before the gigabyte


def test_a_full_width_host_is_a_counted_attempt(decided: Decided) -> None:
    delivery_id = decided.delivery_to("http://ｈｏｏｋｓ.invalid/hook")
    attempted = decided.deliver(delivery_id)
    assert attempted.status is DeliveryStatus.FAILED
    delivery = decided.delivery(delivery_id)
    assert delivery.attempts == 1 and delivery.tries[0].error is not None


def test_any_exception_is_a_counted_attempt(decided: Decided) -> None:
    decided.settings.webhook_allow_private = True
    decided.settings.webhook_max_attempts = 2

    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport")

    delivery_id = decided.delivery_to("http://127.0.0.1:9/hook")
    with httpx.Client(transport=httpx.MockTransport(explode)) as client:
        first = service.deliver(decided.store, decided.settings, delivery_id, client)
        assert first.status is DeliveryStatus.PENDING
        with decided.store.sessions() as s, s.begin():
            s.get(WebhookDelivery, delivery_id).next_attempt_at = utcnow()  # type: ignore[union-attr]
        assert service.deliver(decided.store, decided.settings, delivery_id, client).status is DeliveryStatus.FAILED
    assert decided.delivery(delivery_id).attempts == 2


def test_a_host_whose_clock_is_ahead_does_not_retry_early(
    decided: Decided, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    import sqlalchemy as sa

    decided.settings.webhook_allow_private = True
    delivery_id = decided.delivery_to(f"http://127.0.0.1:{receiver.port}/hook")
    with decided.store.sessions() as s, s.begin():  # another host scheduled the retry ten minutes from now
        s.execute(sa.update(WebhookDelivery).values(next_attempt_at=utcnow() + timedelta(minutes=10)))
    ahead = utcnow() + timedelta(hours=1)  # this worker's clock is an hour ahead of the database's
    monkeypatch.setattr(service, "utcnow", lambda: ahead, raising=False)
    assert decided.deliver(delivery_id).status is None  # not due: a duplicate message, dropped
    assert receiver.requests == []
    with decided.store.sessions() as s, s.begin():  # due by the database's clock: sent
        s.execute(sa.update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=5)))
    assert decided.deliver(delivery_id).status is DeliveryStatus.DELIVERED
    assert len(receiver.requests) == 1
