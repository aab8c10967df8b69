"""A decision in the dashboard's review queue reaches the carrier's webhooks, as the API's does: both
go through one use case (``compliance.service.reviews``). A real browser decides; a private Redis
is the broker the delivery is published to."""

from __future__ import annotations

import json

import pytest
import redis
import sqlalchemy as sa

from compliance.store import webhooks
from compliance.store.models import WebhookDelivery
from compliance.verdicts import Outcome
from tests.dashboard.site import Site
from tests.service.stack import RedisServer

pytestmark = pytest.mark.timeout(300)


def test_a_review_in_the_dashboard_is_announced_to_the_carriers_webhooks(
    brokered_site: Site, broker: RedisServer, browser: object
) -> None:
    from tests.dashboard.conftest import Visitor

    site = brokered_site
    with site.store.sessions() as s, s.begin():
        hook = webhooks.add_webhook(s, site.carriers["ACME"], "https://hooks.acme.example/verdicts")
        hook_id = hook.id
    tab = Visitor(browser, site)
    try:
        tab.sign_in("acme.reviewer")
        tab.go("/dashboard/review")
        tab.page.wait_for_selector("form#decision")
        assert site.review_taxi in tab.page.inner_text(".heading")
        with tab.page.expect_navigation():
            tab.page.keyboard.press("a")  # approve: the reviewer's PASS replaces the machine's REVIEW
    finally:
        tab.close()

    with site.store.sessions() as s:
        deliveries = list(
            s.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.submission_id == site.review_taxi))
        )
    assert len(deliveries) == 1, "the reviewer's verdict was not announced"
    (delivery,) = deliveries
    body = json.loads(delivery.body)
    assert delivery.webhook_id == hook_id
    assert body["verdict"]["outcome"] == Outcome.PASS.value and body["verdict"]["decided_by"] == "acme.reviewer"
    # ... and published for a webhook worker to send.
    assert int(redis.Redis(port=broker.port).llen("webhooks")) == 1
