"""Verdicts POSTed to carriers' webhooks: the body, its HMAC-SHA256 signature, one attempt.

The receiver checks ``X-Compliance-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
under the webhook's secret (``verify_signature``). Delivery is at least once: a receiver
de-duplicates by the body's ``verdict.id`` (or the ``X-Compliance-Delivery`` header).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from compliance.messages import in_both
from compliance.settings import Settings
from compliance.store import Store, submissions, webhooks
from compliance.store.db import database_now
from compliance.store.models import DeliveryStatus, Submission, VerdictRecord

EVENT = "verdict.decided"
SIGNATURE_HEADER = "X-Compliance-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, body), header)


def verdict_event(submission: Submission, verdict: VerdictRecord) -> str:
    """The JSON body announcing ``verdict`` (compact, UTF-8, keys sorted: the bytes that are signed).
    The reasons go as codes, for programs, and as their explanations in both languages, in the
    codes' order (``reason_messages``: ``{"zh-CN": [...], "en": [...]}``), for the people a
    receiver shows them to."""
    body = {
        "event": EVENT,
        "submission_id": submission.id,
        "status": submission.status.value,
        "driver_id": submission.driver_id,
        "vehicle_id": submission.vehicle_id,
        "job_id": submission.job_id,
        "site": submission.site,
        "verdict": {
            "id": verdict.id,
            "outcome": verdict.outcome.value,
            "reasons": verdict.reasons,
            "reason_messages": in_both(verdict.reasons),
            "decided_at": verdict.created_at.isoformat(),
            "decided_by": verdict.decided_by,
            "pipeline": verdict.pipeline,
            "model_version": verdict.model_version,
            "policy_version": verdict.policy_version,
        },
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def announce(store: Store, submission_id: str) -> list[int]:
    """Queue deliveries of the submission's current verdict to its carrier's webhooks; the ids of
    those created now (none when they already were: running twice announces once)."""
    with store.sessions() as s, s.begin():
        submission = submissions.get_submission(s, submission_id)
        verdict = submission.current_verdict
        if verdict is None:
            return []
        return webhooks.queue_deliveries(
            s,
            carrier_id=submission.carrier_id,
            submission_id=submission.id,
            verdict_id=verdict.id,
            decided_at=verdict.created_at,
            event=EVENT,
            body=verdict_event(submission, verdict),
        )


class RefusedURL(ValueError):
    """A webhook URL that is not sent to: an odd host, one that does not resolve, or one into a
    network that is not the public internet."""


class PrivateAddress(RefusedURL):
    pass


class BadHost(RefusedURL):
    pass


class UnresolvableHost(RefusedURL):
    pass


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NUMERIC = re.compile(r"[0-9a-fx.]+")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Of a receiver's answer only the status matters; at most this much of its body is read.
MAX_RESPONSE_BYTES = 4096


def normalise_host(host: str) -> str:
    """The host as the network will see it: an IP literal in its canonical form (numeric forms such
    as ``0x7f000001``, ``2130706433`` or ``127.1`` as the IPv4 address they mean), or a name in IDNA
    ASCII (full-width and other compatibility forms mapped), lower case, no trailing dot."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadHost(f"{host!r} is not a host name") from None
    if name.endswith("."):
        name = name[:-1]
    if not name or "" in name.split("."):
        raise BadHost(f"{host!r} is not a host name")
    if _NUMERIC.fullmatch(name) and _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        # No top-level domain is numeric: this is an address, spelt the way inet_aton reads it.
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(name)))
        except OSError:
            raise BadHost(f"{host!r} is neither an address nor a host name") from None
    return name


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries (IPv4-mapped, IPv4-compatible, 6to4, NAT64): each
    reaches that IPv4 host through a translator, so each must be public too."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [a for a in (address.ipv4_mapped, address.sixtofour) if a is not None]
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def is_public(address: IPAddress) -> bool:
    """Globally routable, unicast, and so is every IPv4 address it embeds."""
    return all(a.is_global and not a.is_multicast for a in (address, *_embedded_ipv4(address)))


def lookup(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to: the only name lookup a delivery makes (the connection
    goes to an address returned here, never to the name)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Target:
    """Where one POST goes: ``url`` names the checked address; ``host`` is the name it was
    registered under, sent as the Host header and as the TLS server name."""

    url: str
    host: str
    host_header: str
    address: IPAddress
    tls: bool


def _split(url: str) -> tuple[str, str, int, bool, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadHost(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadHost("a webhook URL is http(s) with a host")
    if port is not None and not 0 < port < 65536:
        raise BadHost(f"port {port}")
    default = 443 if parts.scheme == "https" else 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, normalise_host(parts.hostname), port or default, port not in (None, default), path


def _addresses(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            addresses = [ipaddress.IPv4Address("127.0.0.1")]  # RFC 6761: whatever a resolver says
        else:
            try:
                addresses = lookup(host, port)
            except (OSError, UnicodeError, ValueError) as exc:
                raise UnresolvableHost(f"{host} does not resolve ({exc})") from None
    if not addresses:
        raise UnresolvableHost(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise PrivateAddress(f"{host} is a non-public address ({address})")
    return addresses


def check_url(url: str, *, allow_private: bool = False) -> None:
    """At registration: refuse an odd host, and (unless private networks are allowed, as in local
    set-ups) one that does not resolve or resolves to any address that is not public."""
    _scheme, host, port, _explicit, _path = _split(url)
    if not allow_private:
        _addresses(host, port, allow_private=False)


def target(url: str, *, allow_private: bool = False) -> Target:
    """At each delivery: resolve the host once, check every address, and aim at the first."""
    scheme, host, port, explicit, path = _split(url)
    address = _addresses(host, port, allow_private=allow_private)[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    shown = f"[{host}]" if ":" in host else host
    return Target(
        url=f"{scheme}://{literal}:{port}{path}",
        host=host,
        host_header=f"{shown}:{port}" if explicit else shown,
        address=address,
        tls=scheme == "https",
    )


class _Deadline:
    """Shuts the POST's socket when the deadline passes, whatever phase it is in (a receiver that
    trickles its headers or body a byte at a time outlives every per-read timeout)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def deadline_s(settings: Settings) -> float:
    """How long one POST may take in all: ``webhook_deadline_s``, and never beyond half the task's
    soft time limit."""
    return min(settings.webhook_deadline_s, settings.task_soft_time_limit_s / 2)


def _post(client: httpx.Client, settings: Settings, aim: Target, body: bytes, headers: dict[str, str]) -> int:
    """POST within ``deadline_s`` in all; read at most MAX_RESPONSE_BYTES of the answer."""
    deadline = _Deadline()
    total = deadline_s(settings)
    timer = threading.Timer(total, deadline.expire)
    timer.daemon = True
    extensions: dict[str, Any] = {"trace": deadline.trace}
    if aim.tls:
        extensions["sni_hostname"] = aim.host
    timer.start()
    try:
        with client.stream(
            "POST",
            aim.url,
            content=body,
            # A fresh connection each time, so the deadline always holds its socket.
            headers={**headers, "Host": aim.host_header, "Connection": "close"},
            timeout=min(settings.webhook_timeout_s, total),
            follow_redirects=False,
            extensions=extensions,
        ) as response:
            read = 0
            with contextlib.suppress(httpx.HTTPError):  # the status is the answer; the body is not needed
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read >= MAX_RESPONSE_BYTES or deadline.expired:
                        break
            return response.status_code
    except Exception:
        if deadline.expired:
            raise TimeoutError(f"no answer within {total:g}s") from None
        raise
    finally:
        timer.cancel()


@dataclass(frozen=True, slots=True)
class Attempted:
    # None when nothing was sent (already delivered, not due, or the delivery is gone).
    status: DeliveryStatus | None
    retry_in_s: float | None = None


def deliver(store: Store, settings: Settings, delivery_id: int, client: httpx.Client) -> Attempted:
    """One attempt at a delivery, recorded; says whether and when to try again."""
    with store.sessions() as s, s.begin():
        delivery = webhooks.get_delivery(s, delivery_id, lock=True)
        if delivery is None or delivery.status is not DeliveryStatus.PENDING:
            return Attempted(None)
        now = database_now(s)  # next_attempt_at was set by another host: compare on one clock
        if delivery.next_attempt_at > now + timedelta(seconds=1):
            return Attempted(None)  # a duplicate message: the real one is scheduled
        if not delivery.webhook.active:
            delivery.status = DeliveryStatus.FAILED
            return Attempted(DeliveryStatus.FAILED)
        # A lease: a duplicate of this message arriving while the POST runs finds it not due.
        delivery.next_attempt_at = now + timedelta(seconds=deadline_s(settings) + 30)
        url, secret, body = delivery.webhook.url, delivery.webhook.secret, delivery.body.encode()
    status_code: int | None = None
    error: str | None = None
    start = time.perf_counter()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body),
        "X-Compliance-Event": EVENT,
        "X-Compliance-Delivery": str(delivery_id),
    }
    try:
        aim = target(url, allow_private=settings.webhook_allow_private)
        status_code = _post(client, settings, aim, body, headers)
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"  # never the body: it may be an internal service's
    except RefusedURL as exc:
        error = f"refused: {exc}"[:500]
    except Exception as exc:  # whatever went wrong, it is an attempt, counted toward max_attempts
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = (time.perf_counter() - start) * 1000.0
    with store.sessions() as s, s.begin():
        delivery = webhooks.record_attempt(
            s,
            delivery_id,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            max_attempts=settings.webhook_max_attempts,
            backoff_s=settings.webhook_backoff_s,
            backoff_max_s=settings.webhook_backoff_max_s,
        )
        if delivery.status is DeliveryStatus.PENDING:
            wait = (delivery.next_attempt_at - database_now(s)).total_seconds()
            return Attempted(DeliveryStatus.PENDING, retry_in_s=max(0.0, wait))
        return Attempted(delivery.status)
