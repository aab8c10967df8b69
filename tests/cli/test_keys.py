"""``compliance keys`` as an operator meets it: keys made, listed and revoked, and the API
honouring that at once."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.settings import get_settings
from tests.cli.helpers import assert_one_line_error
from tests.cli.helpers import run_words as run


def test_keys_create_list_and_revoke(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME")[0] == 0
    code, token, stderr = run("keys", "create", "ACME", "--name", "driver app")
    assert code == 0, stderr
    assert token.startswith("cmp_") and "not shown again" in stderr
    key_id = token.split("_")[1]
    code, listed, _ = run("keys", "list", "ACME")
    assert code == 0 and key_id in listed and "driver app" in listed and token not in listed

    client = TestClient(create_app(get_settings()))
    # A new key may upload and read submissions (scope submit), nothing more.
    assert client.get("/v1/submissions", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/v1/drivers", headers={"Authorization": f"Bearer {token}"}).status_code == 403
    code, _, stderr = run("keys", "revoke", token)  # the whole token or just its id
    assert code == 0, stderr
    time.sleep(get_settings().api_key_cache_s)  # the API trusts a key it verified for this long
    assert client.get("/v1/submissions", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    code, _, stderr = run("keys", "revoke", "ffffffffffff")
    assert code == 2 and "no API key" in stderr
    code, _, stderr = run("keys", "create", "NOPE")
    assert code == 2 and "no carrier" in stderr


def test_keys_create_with_scopes(isolated_env: Path) -> None:
    assert run("registry", "add-carrier", "ACME")[0] == 0
    code, token, stderr = run("keys", "create", "ACME", "--name", "office", "--scope", "registry", "--scope", "review")
    assert code == 0, stderr
    assert "registry,review" in stderr
    code, listed, _ = run("keys", "list", "ACME")
    assert code == 0 and "registry review" in listed
    client = TestClient(create_app(get_settings()))
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/drivers", headers=auth).status_code == 200
    assert client.get("/v1/submissions", headers=auth).status_code == 403
    assert client.post("/v1/audits", json={}, headers=auth).json()["error"]["code"] == "forbidden"

    code, _, stderr = run("keys", "create", "ACME", "--scope", "everything")
    assert_one_line_error(code, stderr, "unknown scope", "'everything'")
    code, listed, _ = run("keys", "list", "ACME")
    assert listed.count("office") == 1 and "api " not in listed  # the refused key was not made
