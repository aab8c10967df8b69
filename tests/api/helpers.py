"""What the API's tests check after a call: the error body every router answers with, and what
was stored (rows, blob files)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import photo_names
from tests.service.conftest import Api


def count(api: Api, model: type) -> int:
    with api.store.sessions() as s:
        return s.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def blob_files(api: Api) -> set[str]:
    return photo_names(api.store.blobs)


def assert_error(response: object, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
