"""Verdicts POSTed to carriers' webhooks: the body, its HMAC-SHA256 signature, one attempt.

The receiver checks ``X-Compliance-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
under the webhook's secret (``verify_signature``). Delivery is at least once: a receiver
de-duplicates by the body's ``verdict.id`` (or the ``X-Compliance-Delivery`` header).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from compliance.settings import Settings
from compliance.store import Store, submissions, webhooks
from compliance.store.models import DeliveryStatus, Submission, VerdictRecord, utcnow

EVENT = "verdict.decided"
SIGNATURE_HEADER = "X-Compliance-Signature"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, body), header)


def verdict_event(submission: Submission, verdict: VerdictRecord) -> str:
    """The JSON body announcing ``verdict`` (compact, UTF-8, keys sorted: the bytes that are signed)."""
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


class PrivateAddress(ValueError):
    pass


def check_public(url: str, *, resolve: bool = True) -> None:
    """Refuse a URL whose host is (or resolves to) a loopback, private, link-local or reserved
    address: a webhook must not reach into the service's own network."""
    host = urlsplit(url).hostname or ""
    if host.lower() in ("localhost", "localhost.localdomain"):
        raise PrivateAddress(f"{host} is this machine")
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except OSError:
            return  # unresolvable: the POST will fail and say so
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if not address.is_global:
            raise PrivateAddress(f"{host} is a non-public address ({address})")


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
        now = utcnow()
        if delivery.next_attempt_at > now + timedelta(seconds=1):
            return Attempted(None)  # a duplicate message: the real one is scheduled
        if not delivery.webhook.active:
            delivery.status = DeliveryStatus.FAILED
            return Attempted(DeliveryStatus.FAILED)
        # A lease: a duplicate of this message arriving while the POST runs finds it not due.
        delivery.next_attempt_at = now + timedelta(seconds=settings.webhook_timeout_s + 30)
        url, secret, body = delivery.webhook.url, delivery.webhook.secret, delivery.body.encode()
    status_code: int | None = None
    error: str | None = None
    start = time.perf_counter()
    try:
        if not settings.webhook_allow_private:
            check_public(url)
        response = client.post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(secret, body),
                "X-Compliance-Event": EVENT,
                "X-Compliance-Delivery": str(delivery_id),
            },
            timeout=settings.webhook_timeout_s,
            follow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}: {response.text[:200]}"
    except (httpx.HTTPError, PrivateAddress) as exc:
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
            wait = (delivery.next_attempt_at - utcnow()).total_seconds()
            return Attempted(DeliveryStatus.PENDING, retry_in_s=max(0.0, wait))
        return Attempted(delivery.status)
