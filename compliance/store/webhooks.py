"""Carriers' webhooks, the verdicts owed to them (deliveries) and every attempt to deliver one.

A delivery is created once per (webhook, verdict) whatever runs twice, in the same database as the
verdict, so a crash between deciding and sending loses nothing: the delivery waits, pending, for a
worker or the sweeper.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from compliance.store.audit import SYSTEM, record_event
from compliance.store.db import database_now
from compliance.store.errors import InvalidRegistration, UnknownWebhook
from compliance.store.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from compliance.store.registry import get_carrier


def add_webhook(session: Session, carrier_id: int, url: str, *, actor: str = SYSTEM) -> Webhook:
    """Register a URL; its signing secret is made here and shown to the caller once."""
    carrier = get_carrier(session, carrier_id)
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise InvalidRegistration("a webhook URL is http(s) and at most 2048 characters")
    webhook = Webhook(carrier_id=carrier.id, url=url, secret="whsec_" + secrets.token_urlsafe(32), active=True)
    session.add(webhook)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="webhook.add",
        subject_type="carrier",
        subject_id=carrier.id,
        after={"webhook_id": webhook.id, "url": url},
    )
    return webhook


def get_webhook(session: Session, webhook_id: int, *, carrier_id: int | None = None) -> Webhook:
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or (carrier_id is not None and webhook.carrier_id != carrier_id):
        raise UnknownWebhook(webhook_id)
    return webhook


def list_webhooks(session: Session, carrier_id: int) -> list[Webhook]:
    return list(session.scalars(sa.select(Webhook).where(Webhook.carrier_id == carrier_id).order_by(Webhook.id)))


def deactivate_webhook(session: Session, webhook_id: int, *, carrier_id: int, actor: str = SYSTEM) -> Webhook:
    """Stop sending to it; deliveries already made stay, for the record."""
    webhook = get_webhook(session, webhook_id, carrier_id=carrier_id)
    if webhook.active:
        webhook.active = False
        session.flush()
        record_event(
            session,
            actor=actor,
            action="webhook.deactivate",
            subject_type="carrier",
            subject_id=webhook.carrier_id,
            after={"webhook_id": webhook.id},
        )
    return webhook


def queue_deliveries(
    session: Session,
    *,
    carrier_id: int,
    submission_id: str,
    verdict_id: int,
    decided_at: datetime,
    event: str,
    body: str,
) -> list[int]:
    """A pending delivery of ``body`` to each of the carrier's active webhooks that existed when the
    verdict was decided. Returns the ids of deliveries created now (none for one already queued)."""
    hooks = session.scalars(
        sa.select(Webhook.id).where(
            Webhook.carrier_id == carrier_id, Webhook.active.is_(True), Webhook.created_at <= decided_at
        )
    ).all()
    dialect = session.connection().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created = []
    now = database_now(session)
    for webhook_id in hooks:
        statement = (
            insert(WebhookDelivery.__table__)
            .values(
                webhook_id=webhook_id,
                submission_id=submission_id,
                verdict_id=verdict_id,
                event=event,
                body=body,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["webhook_id", "verdict_id"])
            .returning(WebhookDelivery.__table__.c.id)
        )
        new_id = session.execute(statement).scalar_one_or_none()
        if new_id is not None:
            created.append(new_id)
    return created


def get_delivery(session: Session, delivery_id: int, *, lock: bool = False) -> WebhookDelivery | None:
    query = sa.select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
    if lock:
        query = query.with_for_update()
    return session.scalar(query.options(selectinload(WebhookDelivery.webhook)))


def record_attempt(
    session: Session,
    delivery_id: int,
    *,
    status_code: int | None,
    error: str | None,
    duration_ms: float,
    max_attempts: int,
    backoff_s: float,
    backoff_max_s: float,
) -> WebhookDelivery:
    """Keep one attempt and move the delivery on: delivered on a 2xx; otherwise pending again after
    an exponential backoff, or failed once ``max_attempts`` are spent."""
    delivery = get_delivery(session, delivery_id, lock=True)
    if delivery is None:
        raise LookupError(f"no webhook delivery {delivery_id}")
    delivery.attempts += 1
    now = database_now(session)  # the next attempt is compared, on other hosts, with this clock
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            number=delivery.attempts,
            at=now,
            status_code=status_code,
            error=error,
            duration_ms=round(duration_ms, 2),
        )
    )
    if status_code is not None and 200 <= status_code < 300:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
    elif delivery.attempts >= max_attempts:
        delivery.status = DeliveryStatus.FAILED
    else:
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(delivery.attempts, backoff_s, backoff_max_s))
    session.flush()
    return delivery


def retry_delay(attempts: int, backoff_s: float, backoff_max_s: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: backoff, doubled each time, capped."""
    return min(backoff_max_s, backoff_s * 2 ** max(0, attempts - 1))


def due_deliveries(session: Session, *, before: datetime, limit: int) -> list[int]:
    """Pending deliveries whose next attempt was due before ``before`` (their task was lost)."""
    return list(
        session.scalars(
            sa.select(WebhookDelivery.id)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.next_attempt_at < before)
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )


def list_deliveries(session: Session, webhook_id: int, *, limit: int = 50) -> list[WebhookDelivery]:
    """Newest first, with their attempts."""
    return list(
        session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .options(selectinload(WebhookDelivery.tries))
        )
    )
