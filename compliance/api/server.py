"""The API's HTTP server limits: deadlines for a request's head and body, a cap on the head's size
and on concurrent connections. ``compliance api`` runs uvicorn with ``http=LimitedHttpProtocol``.

uvicorn has a keep-alive timeout but no deadline for reading a request: a connection that trickles
its head or its body a byte at a time was held open indefinitely (uvicorn cancels its keep-alive
timer on every byte received, and arms none before the first request). This protocol is uvicorn's
httptools protocol (what ``uvicorn[standard]`` picks by default, and what the upload bench was
measured on) with three timers of its own:

- **head**: armed when a connection opens and again when a response completes (or, answered
  before its body ended, when the body ends); cancelled only when a request's head (request line
  and headers) is complete, never by bytes arriving. On expiry
  a connection that sent nothing is closed silently (an idle keep-alive connection), one that sent
  part of a head is answered ``408`` and closed.
- **body**: armed when a request starts; cancelled when its body is complete. On expiry the request
  is cut: ``408`` if no response has started, else the connection is closed. The application sees
  the client as gone (``http.disconnect``).
- **linger**: a refused connection's response is followed by a half-close, and what the client
  still sends is read and dropped for a moment before the socket is closed, so the client reads the
  refusal instead of a reset.

A head over ``api_max_header_bytes`` is answered ``431``; a request on a connection beyond
``api_limit_concurrency`` (per process) is answered ``503`` with ``Retry-After``. Every refusal the
protocol writes is JSON in the API's one error shape (``compliance.api.errors.error_body``).

The limits are read from the settings in each process (``--workers N`` spawns processes, which
inherit the environment), once.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from compliance.api.errors import error_body
from compliance.settings import Settings, get_settings

# How long a refused connection reads and drops what the client still sends before it is closed.
_LINGER_S = 0.5

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Service Unavailable"}


@dataclass(frozen=True)
class ServerLimits:
    header_timeout_s: float
    body_timeout_s: float
    max_header_bytes: int
    limit_concurrency: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            header_timeout_s=settings.api_header_timeout_s,
            body_timeout_s=settings.api_body_timeout_s,
            max_header_bytes=settings.api_max_header_bytes,
            limit_concurrency=settings.api_limit_concurrency,
        )


@functools.cache
def _process_limits() -> ServerLimits:
    return ServerLimits.from_settings(get_settings())


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's own options that go with this protocol (``uvicorn.run(**uvicorn_options(...))``)."""
    trusted = settings.trusted_proxies.strip()
    return {
        # X-Forwarded-For and -Proto only from the proxies named in COMPLIANCE_TRUSTED_PROXIES (none by
        # default): behind an HTTPS load balancer the app then sees the client's address and https, so
        # the dashboard's Origin check and Secure cookies hold; a client elsewhere claims neither.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        # Pinned, not "auto": the limits are this protocol's, whatever else is installed.
        "http": LimitedHttpProtocol,
        # The API has no WebSocket routes: an upgrade must not hand the socket to a protocol without deadlines.
        "ws": "none",
        "timeout_keep_alive": settings.api_keep_alive_s,
        "backlog": settings.api_backlog,
        # Counted by the protocol (it answers 503 in the API's error shape, and counts exactly N).
        "limit_concurrency": None,
    }


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head and body deadlines, a head-size cap and a connection limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _process_limits()
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_cycle: RequestResponseCycle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        # The parser is reading a request's head (true from the start and after each request's end).
        self._in_head = True
        self._head_bytes = 0  # bytes of the head being read (undercounted by at most one read)
        self._boundary = False  # a head or a request ended during the current read
        self._dropping = False  # refused: what arrives is dropped until the socket closes

    # --- the connection ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._linger_timer = None
        self._body_cycle = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._dropping:
            return
        self._boundary = False
        super().data_received(data)
        if self._in_head and not self._boundary and self.parser is not None:
            # The whole read belongs to the head being read. A read in which a head or a request ended
            # is not counted: its bytes are split between two parts we cannot tell apart here.
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse_large_head()

    # --- parser callbacks -------------------------------------------------------------------------

    def on_headers_complete(self) -> None:
        if self._dropping:
            return
        self._in_head = False
        self._head_bytes = 0
        self._boundary = True
        self._cancel_head_timer()
        # A head that came in one read was not counted by data_received: measure it whole.
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self._limits.max_header_bytes:
            self._refuse_large_head()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._dropping:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._dropping:
            return
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
        self._boundary = True
        if self._body_cycle is self.cycle:
            self._cancel_body_timer()
        if self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            # Answered before its body ended (a 401, a 413): the next head's deadline starts now.
            self._arm_head_timer()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Called as a request starts: at once, or after the requests pipelined before it.
        if self._dropping:  # a request pipelined behind a refusal is dropped with it
            cycle.response_started = cycle.response_complete = True
            return
        limit = self._limits.limit_concurrency
        # self.connections includes this one: it is served if fewer than `limit` others are open.
        if len(self.connections) > limit or len(self.tasks) >= limit:
            self.logger.warning("over the limit of %d concurrent connections: 503", limit)
            cycle.response_started = cycle.response_complete = True  # its body, if any, is dropped
            self._refuse(
                503,
                "overloaded",
                f"the API is serving its limit of {limit} connections; retry shortly",
                extra=[(b"retry-after", b"1")],
            )
            return
        if cycle.more_body:
            self._cancel_body_timer()
            self._body_cycle = cycle
            self._body_timer = self.loop.call_later(self._limits.body_timeout_s, self._body_timed_out)
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        if not pipelined and self._in_head and not self.transport.is_closing():
            # The next request's head has its own deadline; an idle connection is also closed by
            # uvicorn's keep-alive timeout, whichever comes first. If the request's body has not all
            # come yet, its body deadline still runs, and this one starts when the body ends.
            self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        if not self._dropping:  # a refused connection has had its answer
            super().send_400_response(msg)

    # --- deadlines --------------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self._limits.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body_cycle = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._dropping:
            return
        if self._in_head and self._head_bytes > 0:
            self._refuse(408, "request_timeout", f"the request head took over {self._limits.header_timeout_s:g} s")
        else:
            # Nothing sent: an idle connection.
            self.transport.close()

    def _body_timed_out(self) -> None:
        cycle, self._body_timer, self._body_cycle = self._body_cycle, None, None
        if cycle is None or not cycle.more_body or self.transport.is_closing() or self._dropping:
            return
        self.logger.info("request body not complete within %g s: cut", self._limits.body_timeout_s)
        started = cycle.response_started
        # The application sees the client gone: receive() answers http.disconnect, send() does nothing.
        cycle.disconnected = True
        cycle.message_event.set()
        if started:
            self.transport.close()
        else:
            self._refuse(408, "request_timeout", f"the request body took over {self._limits.body_timeout_s:g} s")

    # --- refusing ---------------------------------------------------------------------------------

    def _refuse_large_head(self) -> None:
        self._refuse(431, "headers_too_large", f"the request head is over {self._limits.max_header_bytes} bytes")

    def _refuse(self, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        """Write a JSON error and close: half-close, drop what still arrives, close after a moment."""
        if self._dropping or self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A request still being answered (one pipelined behind it was refused): the application
            # sees the client gone, and an answer begun cannot be followed by another.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        body = json.dumps(error_body(code, message), separators=(",", ":")).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        for name, value in [*self.server_state.default_headers, *(extra or [])]:
            head.append(name + b": " + value + b"\r\n")
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._unset_keepalive_if_required()
        self._dropping = True
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()  # keep reading (and dropping), so the client is not left blocked
        self._linger_timer = self.loop.call_later(_LINGER_S, self.transport.close)
