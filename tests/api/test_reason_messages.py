"""Reasons as people read them: the API keeps ``reasons`` as stable codes and adds ``reason_messages``
beside them, in the same order, in the language the request's Accept-Language asks for (English by
default); a webhook carries the codes and their messages in both languages. The messages come from
the one table, ``compliance.messages``; the real app answers."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from compliance.api.schemas import VerdictEvent
from compliance.messages import MESSAGES
from compliance.store.models import WebhookDelivery
from tests.service.conftest import Api

REASONS = ["PLATE_MISMATCH", "FACE_MISMATCH"]


def reviewed(api: Api) -> str:
    """A submission whose current verdict is a person's FAIL for two reasons (no model runs)."""
    submission = api.upload().json()["id"]
    review = {"outcome": "FAIL", "note": "another car, another driver", "reasons": REASONS}
    response = api.client.post(f"/v1/submissions/{submission}/review", json=review, headers=api.acme.auth)
    assert response.status_code == 201, response.text
    return submission


def in_(language: str) -> list[str]:
    return [getattr(MESSAGES[code], language) for code in REASONS]


@pytest.mark.parametrize(
    ("accept", "language", "tag"),
    [
        (None, "en", "en"),
        ("zh-CN", "zh", "zh-CN"),
        ("zh-Hans;q=0.9, en;q=0.8", "zh", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en", "en"),
        ("de, zh;q=0.5", "zh", "zh-CN"),
        ("zh;q=0, en", "en", "en"),
        ("fr", "en", "en"),
    ],
)
def test_reason_messages_follow_accept_language(api: Api, accept: str | None, language: str, tag: str) -> None:
    submission = reviewed(api)
    headers = dict(api.acme.auth) | ({"Accept-Language": accept} if accept else {})
    response = api.client.get(f"/v1/submissions/{submission}", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Language"] == tag
    assert "accept-language" in response.headers["Vary"].lower()
    detail = response.json()
    # The codes never change with the language; the messages stand beside them, in their order.
    assert detail["reasons"] == detail["verdict"]["reasons"] == REASONS
    assert detail["reason_messages"] == detail["verdict"]["reason_messages"] == in_(language)
    (person,) = detail["history"]  # queued, never judged: the person's verdict is the only one
    assert person["reason_messages"] == in_(language)

    listed = api.client.get("/v1/submissions", headers=headers).json()["items"]
    (item,) = [i for i in listed if i["id"] == submission]
    assert item["reasons"] == REASONS and item["reason_messages"] == in_(language)


def test_the_review_answers_in_the_callers_language(api: Api) -> None:
    submission = api.upload().json()["id"]
    response = api.client.post(
        f"/v1/submissions/{submission}/review",
        json={"outcome": "REVIEW", "note": "a second look", "reasons": ["FACE_UNCERTAIN"]},
        headers=api.acme.auth | {"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["reason_messages"] == [MESSAGES["FACE_UNCERTAIN"].zh]
    assert response.headers["Content-Language"] == "zh-CN"


def test_a_webhook_carries_the_codes_and_both_languages(api: Api) -> None:
    created = api.client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/verdicts"}, headers=api.acme.auth)
    assert created.status_code == 201, created.text
    submission = reviewed(api)
    with api.store.sessions() as s:
        (delivery,) = s.scalars(sa.select(WebhookDelivery).where(WebhookDelivery.submission_id == submission))
        body = json.loads(delivery.body)
    verdict = body["verdict"]
    assert verdict["reasons"] == REASONS
    assert verdict["reason_messages"] == {"zh-CN": in_("zh"), "en": in_("en")}
    VerdictEvent.model_validate(body)  # the body the spec documents (the registration's callback)


def test_the_spec_documents_the_messages_and_the_header(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for model in ("SubmissionSummary", "SubmissionDetail", "VerdictOut"):
        field = schemas[model]["properties"]["reason_messages"]
        assert field["type"] == "array" and "Accept-Language" in field["description"], model
        assert "reason_messages" in schemas[model]["required"], model
    for path, method in (
        ("/v1/submissions", "get"),
        ("/v1/submissions/{submission_id}", "get"),
        ("/v1/submissions/{submission_id}/review", "post"),
    ):
        (header,) = [p for p in spec["paths"][path][method]["parameters"] if p["name"] == "Accept-Language"]
        assert header["in"] == "header" and "zh" in header["description"], path
    # A webhook's body, as the registration's callback: codes, and messages in both languages.
    (callback,) = spec["paths"]["/v1/webhooks"]["post"]["callbacks"].values()
    (operation,) = [path["post"] for path in callback.values()]
    event = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    verdict = schemas[schemas[event]["properties"]["verdict"]["$ref"].rsplit("/", 1)[1]]
    assert verdict["properties"]["reason_messages"]["type"] == "object"
    assert "zh-CN" in verdict["properties"]["reason_messages"]["description"]
