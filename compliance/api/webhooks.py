"""``/v1/webhooks``: where a carrier's verdicts are POSTed, and every attempt to deliver them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status

from compliance.api.deps import CallerDep, SettingsDep, StoreDep, requires
from compliance.api.errors import invalid, not_found
from compliance.api.schemas import (
    DeliveryOut,
    DeliveryPage,
    ErrorResponse,
    VerdictEvent,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    links,
)
from compliance.service.webhooks import SIGNATURE_HEADER, RefusedURL, check_url
from compliance.store import webhooks
from compliance.store.errors import UnknownWebhook

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[Depends(requires("webhooks"))])

Id = Annotated[int, Path(ge=1, le=2**31 - 1)]

_ERRORS = {
    400: {"model": ErrorResponse, "description": "a body that cannot be parsed"},
    401: {"model": ErrorResponse, "description": "no valid API key"},
    403: {"model": ErrorResponse, "description": "the key lacks the 'webhooks' scope"},
    404: {"model": ErrorResponse, "description": "no such webhook for this carrier"},
    422: {
        "model": ErrorResponse,
        "description": "not an http(s) URL, an odd or unresolvable host, or one into a private network",
    },
}


# What a registered URL receives, in the spec as the registration's callback.
events = APIRouter()


@events.post("{$request.body#/url}", summary="A verdict was decided (verdict.decided)")
def verdict_decided(
    body: VerdictEvent,
    signature: Annotated[str, Header(alias=SIGNATURE_HEADER, description="sha256=<HMAC-SHA256 of the raw body>")],
) -> None:
    """The verdict's reasons as codes, and their explanations in Chinese and English. Answer 2xx;
    anything else is retried."""


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=_ERRORS,
    callbacks=events.routes,
    openapi_extra=links(
        201,
        ListDeliveries=("get", "/v1/webhooks/{webhook_id}/deliveries", "webhook_id"),
        DeleteWebhook=("delete", "/v1/webhooks/{webhook_id}", "webhook_id"),
    ),
)
def create_webhook(body: WebhookIn, caller: CallerDep, store: StoreDep, settings: SettingsDep) -> WebhookCreated:
    """Register a URL. Each decided verdict is POSTed to it as JSON, signed:
    ``X-Compliance-Signature: sha256=<HMAC-SHA256 of the body under the secret returned here>``."""
    try:
        check_url(body.url, allow_private=settings.webhook_allow_private)
    except RefusedURL as exc:
        raise invalid("invalid_value", f"url: {exc}") from None
    with store.sessions() as s, s.begin():
        hook = webhooks.add_webhook(s, caller.carrier_id, body.url, actor=caller.actor)
        return WebhookCreated(**WebhookOut.of(hook).model_dump(), secret=hook.secret)


@router.get("", response_model=list[WebhookOut], responses=_ERRORS)
def list_webhooks(caller: CallerDep, store: StoreDep) -> list[WebhookOut]:
    with store.sessions() as s:
        return [WebhookOut.of(h) for h in webhooks.list_webhooks(s, caller.carrier_id)]


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_ERRORS)
def delete_webhook(webhook_id: Id, caller: CallerDep, store: StoreDep) -> Response:
    """Stop sending to it (its deliveries stay on record)."""
    with store.sessions() as s, s.begin():
        try:
            webhooks.deactivate_webhook(s, webhook_id, carrier_id=caller.carrier_id, actor=caller.actor)
        except UnknownWebhook:
            raise not_found("webhook", webhook_id) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, responses=_ERRORS)
def list_deliveries(
    webhook_id: Id, caller: CallerDep, store: StoreDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> DeliveryPage:
    """The latest deliveries, newest first, each with every attempt made."""
    with store.sessions() as s:
        try:
            webhooks.get_webhook(s, webhook_id, carrier_id=caller.carrier_id)
        except UnknownWebhook:
            raise not_found("webhook", webhook_id) from None
        return DeliveryPage(items=[DeliveryOut.of(d) for d in webhooks.list_deliveries(s, webhook_id, limit=limit)])
