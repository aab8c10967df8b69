"""Hostile photos through the upload API: each input the intake fuzzing pins (tests/test_photo_fuzz.py),
near-valid files of every accepted format with a header field or their length made wrong, is a 4xx
``photo_*`` error with a one-line message that stores nothing; never a 5xx."""

from __future__ import annotations

from compliance.store.models import Submission
from tests.api.helpers import blob_files, count
from tests.service.conftest import Api
from tests.test_photo_fuzz import hostile


def test_every_hostile_photo_is_a_4xx_and_stores_nothing(api: Api) -> None:
    before = blob_files(api)
    wrong = {}
    for name, data in hostile().items():
        response = api.upload(photo=data, filename="photo.bin")
        error = response.json().get("error", {})
        if not (
            400 <= response.status_code < 500 and error["code"].startswith("photo_") and "\n" not in error["message"]
        ):
            wrong[name] = (response.status_code, error)
    assert not wrong, wrong
    assert count(api, Submission) == 0 and blob_files(api) == before
