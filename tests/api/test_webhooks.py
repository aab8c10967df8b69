"""Webhooks through the API: their URLs are checked, private networks refused, the secret shown once."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_error
from tests.service.conftest import Api


def test_webhook_urls_are_checked(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    client, auth = api.client, api.acme.auth
    assert_error(client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}, headers=auth), 422)
    created = client.post("/v1/webhooks", json={"url": "https://example.com/hook"}, headers=auth)
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert "secret" not in client.get("/v1/webhooks", headers=auth).json()[0]
    # Without the local allowance, URLs into private networks are refused.
    api.settings.webhook_allow_private = False
    for url in ("http://127.0.0.1:8080/x", "http://10.0.0.5/x", "http://localhost/x", "http://169.254.169.254/latest"):
        assert_error(client.post("/v1/webhooks", json={"url": url}, headers=auth), 422)
    assert client.delete(f"/v1/webhooks/{created.json()['id']}", headers=auth).status_code == 204
    assert client.get("/v1/webhooks", headers=auth).json()[0]["active"] is False
