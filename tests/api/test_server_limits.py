"""The API's server limits, on the real ``compliance api`` process and real sockets: a head or a body
that trickles is cut at its deadline however steadily it trickles, a connection that says nothing is
closed, a head over the cap is refused, connections beyond the limit are answered 503, and ordinary
requests (keep-alive, an upload) are served as before."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from compliance.settings import Settings
from compliance.store import Store
from tests.service.conftest import PASSING_PHOTO, Carrier, add_carrier
from tests.service.stack import REPO, Process, RedisServer, start_api, wait_for

HEAD_S = 2.0  # COMPLIANCE_API_HEADER_TIMEOUT_S
BODY_S = 3.5  # COMPLIANCE_API_BODY_TIMEOUT_S
LIMIT = 3  # COMPLIANCE_API_LIMIT_CONCURRENCY
MAX_HEAD = 8192  # COMPLIANCE_API_MAX_HEADER_BYTES
SLACK_S = 2.0  # a loaded machine's delay, and the half-second a refused connection lingers
TRICKLE_S = 0.3


@dataclass
class Server:
    port: int
    base: str
    acme: Carrier
    process: Process

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.settimeout(0.05)
        return sock


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("server-limits")
    values: dict[str, object] = {
        "database_url": f"sqlite:///{folder / 'compliance.db'}",
        "blob_dir": str(folder / "blobs"),
        "broker_url": redis_server.url,
        "broker_connect_timeout_s": 0.5,
        "api_header_timeout_s": HEAD_S,
        "api_body_timeout_s": BODY_S,
        "api_limit_concurrency": LIMIT,
        "api_max_header_bytes": MAX_HEAD,
    }
    store = Store.open(Settings(**values))  # type: ignore[arg-type]
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299", scopes=("submit",))
    store.engine.dispose()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **{f"COMPLIANCE_{k.upper()}": str(v) for k, v in values.items()},
    }
    process, base = start_api(env, folder / "api.log", REPO)
    try:
        yield Server(int(base.rsplit(":", 1)[1]), base, acme, process)
    finally:
        process.stop()


def _read(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """What arrives within ``seconds`` (less if the server closes): the bytes, and whether it closed."""
    data = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:  # reset
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _trickle(sock: socket.socket, data: bytes, step: int, give_up_after: float) -> tuple[bytes, float, int]:
    """Send ``data`` ``step`` bytes every TRICKLE_S until the server answers or closes: what it sent,
    how long it took, and how many bytes went out. Gives up (time = inf) after ``give_up_after``."""
    start = time.monotonic()
    sent = 0
    while sent < len(data) and time.monotonic() - start < give_up_after:
        try:
            sock.sendall(data[sent : sent + step])
        except OSError:
            return b"", time.monotonic() - start, sent
        sent += step
        answer, closed = _read(sock, TRICKLE_S)
        if answer or closed:
            if not closed:
                answer += _read(sock, SLACK_S)[0]
            return answer, time.monotonic() - start, sent
    return b"", float("inf"), sent


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def _assert_error(raw: bytes, status: int, code: str) -> dict[str, str]:
    got, headers, body = _response(raw)
    assert got == status, raw[:500]
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == code
    return headers


def _get(path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: api\r\n\r\n".encode()


def _one_response(sock: socket.socket) -> bytes:
    """One whole response (with a Content-Length) read from a connection that stays open."""
    data = b""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        _, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = int(_response(data)[1].get("content-length", "0"))
            if len(body) >= length:
                return data
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        assert chunk, f"closed after {data!r}"
        data += chunk
    raise AssertionError(f"no whole response: {data!r}")


def _multipart(carrier: Carrier, photo: bytes) -> tuple[bytes, bytes]:
    """A submission's form: the part before the photo's bytes, and the part after."""
    fields = {"driver_id": carrier.driver_id, "vehicle_id": carrier.vehicle_id}
    before = b"".join(
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), str(v).encode())
        for k, v in fields.items()
    )
    before += b'--BOUNDARY\r\nContent-Disposition: form-data; name="photo"; filename="p.jpg"\r\n'
    before += b"Content-Type: image/jpeg\r\n\r\n"
    return before + photo, b"\r\n--BOUNDARY--\r\n"


@pytest.mark.parametrize("after_a_response", [False, True], ids=["new connection", "keep-alive connection"])
def test_a_trickled_head_is_cut_at_the_head_deadline(server: Server, after_a_response: bool) -> None:
    """A byte every 0.3 s resets no timer: the head must be whole HEAD_S after the connection opened
    (or the previous response ended), or the client is told 408 and the connection closes."""
    with server.connect() as sock:
        if after_a_response:
            sock.sendall(_get())
            assert _response(_one_response(sock))[0] == 200
        head = _get()[:-2] + b"".join(b"X-Filler-%d: %d\r\n" % (i, i) for i in range(50)) + b"\r\n"
        answer, took, sent = _trickle(sock, head, 1, give_up_after=HEAD_S + SLACK_S + 3)
    assert HEAD_S - 0.3 <= took <= HEAD_S + SLACK_S, f"cut after {took:.2f} s"
    assert sent >= (HEAD_S - 0.3) / TRICKLE_S - 1  # it kept sending until it was cut
    if answer:  # the refusal is read unless the client's next byte met the closed socket first
        _assert_error(answer, 408, "request_timeout")


def test_a_quiet_connection_is_closed_at_the_head_deadline(server: Server) -> None:
    with server.connect() as sock:
        start = time.monotonic()
        answer, closed = _read(sock, HEAD_S + SLACK_S + 3)
        took = time.monotonic() - start
    assert closed and answer == b"", answer
    assert HEAD_S - 0.3 <= took <= HEAD_S + SLACK_S, f"closed after {took:.2f} s"


@pytest.mark.parametrize("read", [True, False], ids=["read by the app", "answered at once"])
def test_a_trickled_body_is_cut_at_the_body_deadline(server: Server, read: bool) -> None:
    """Whole headers with a Content-Length, then an upload's body 10 bytes every 0.3 s: the request
    is cut BODY_S after its head, not held while it trickles. Read by the app, it is answered 408 (no
    answer had begun); answered before its body is read (a 405), the rest of it is still bound by the deadline."""
    before, after = _multipart(server.acme, b"\xff\xd8" + b"x" * 4000)
    body = before + after
    path = "/v1/submissions" if read else "/healthz"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {server.acme.token}\r\n"
        f"Content-Type: multipart/form-data; boundary=BOUNDARY\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with server.connect() as sock:
        sock.sendall(head)
        if not read:
            assert _response(_one_response(sock))[0] == 405
        answer, took, _ = _trickle(sock, body, 10, give_up_after=BODY_S + SLACK_S + 3)
    assert BODY_S - 0.3 <= took <= BODY_S + SLACK_S, f"cut after {took:.2f} s"
    if answer and read:
        _assert_error(answer, 408, "request_timeout")
    assert not answer or read, answer  # after its 405, nothing more: the connection is closed


def test_a_head_over_the_cap_is_refused(server: Server) -> None:
    head = _get()[:-2] + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"a" * 500) for i in range(40)) + b"\r\n"
    assert len(head) > MAX_HEAD
    with server.connect() as sock:
        try:
            sock.sendall(head)
        except OSError:
            pass
        answer, closed = _read(sock, SLACK_S + 1)
    assert closed
    _assert_error(answer, 431, "headers_too_large")


def test_connections_beyond_the_limit_are_answered_503(server: Server) -> None:
    """LIMIT connections are held (one mid-request, the others quiet); one more is refused with 503 in
    the API's error shape while they stay open, and a held one is then served."""
    held = [server.connect() for _ in range(LIMIT)]
    try:
        held[0].sendall(b"GET /healthz HTTP/1.1\r\n")  # part of a head
        time.sleep(0.2)
        with server.connect() as extra:
            extra.sendall(_get())
            answer, closed = _read(extra, SLACK_S)
        assert closed
        headers = _assert_error(answer, 503, "overloaded")
        assert headers["retry-after"] == "1"
        time.sleep(0.2)  # the refused connection is gone
        held[0].sendall(b"Host: api\r\n\r\n")
        assert _response(_one_response(held[0]))[0] == 200
        for sock in held:  # the held connections were not closed
            assert _read(sock, 0.05) == (b"", False) or sock is held[0]
    finally:
        for sock in held:
            sock.close()
    # With them closed there is room again.
    wait_for(lambda: httpx.get(server.base + "/healthz", timeout=2).status_code == 200, 5, "room again")


def test_ordinary_requests_are_served(server: Server) -> None:
    """Two requests on one keep-alive connection, a head sent in pieces within its deadline, and an
    upload whose body takes longer than the head deadline but less than the body deadline."""
    with server.connect() as sock:
        sock.sendall(_get())
        assert _response(_one_response(sock))[0] == 200
        time.sleep(0.5)
        for piece in (b"GET /healthz HTTP/1.1\r\n", b"Host: api\r\n", b"\r\n"):
            sock.sendall(piece)
            time.sleep(0.3)
        status, _, body = _response(_one_response(sock))
        assert status == 200 and json.loads(body) == {"status": "ok"}

    before, after = _multipart(server.acme, PASSING_PHOTO.read_bytes())
    body = before + after
    head = (
        f"POST /v1/submissions HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {server.acme.token}\r\n"
        f"Content-Type: multipart/form-data; boundary=BOUNDARY\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    pieces = 8
    step = len(body) // pieces + 1
    pause = (HEAD_S + 0.5) / pieces  # in all longer than the head deadline, well within the body's
    with server.connect() as sock:
        sock.sendall(head)
        for i in range(pieces):
            sock.sendall(body[i * step : (i + 1) * step])
            time.sleep(pause)
        status, _, answer = _response(_one_response(sock))
    assert status == 202, answer
    assert json.loads(answer)["status"] in ("queued", "received")
