"""An S3 photo store that goes away and comes back: an upload meanwhile is refused with a clear 503
(Retry-After) and leaves no row; once the server is back (with its data), uploads are accepted and
the photos stored before are all still there. A private SeaweedFS, killed by its process id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.store import Store
from compliance.store.blobs import s3 as s3_store
from compliance.store.models import Submission
from tests.api.helpers import assert_error, count
from tests.s3server import S3Server
from tests.service.conftest import PASSING_PHOTO, Api, add_carrier, service_settings
from tests.service.stack import RedisServer


@pytest.fixture()
def own_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    server = S3Server(tmp_path / "s3")
    server.start()
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    # A store that is away is given up on after 2 s here, not the 30 s a request waits in production.
    monkeypatch.setattr(s3_store, "_RETRY_TIMEOUT", timedelta(seconds=2))
    yield server
    server.kill()


def test_an_upload_while_the_store_is_away_is_a_503_and_leaves_nothing(
    own_s3: S3Server, tmp_path: Path, redis_server: RedisServer
) -> None:
    settings = service_settings(
        f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, redis_server.url, blob_url=own_s3.url("p")
    )
    app = create_app(settings)
    store: Store = app.state.store
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(settings, store, client, acme, acme)
        assert api.upload().status_code == 202
        assert client.get("/readyz").json()["checks"]["photo_store"] == "ok"
        own_s3.kill()
        not_ready = client.get("/readyz")  # at once: the probe does not wait out the store's retries
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["photo_store"] == "unreachable"
        refused = api.upload(photo=PASSING_PHOTO.read_bytes() + b"\x00")  # new bytes: the put must reach the store
        error = assert_error(refused, 503, "photo_store_unavailable")
        assert "照片存储" in error["message"] and "photo store" in error["message"]
        assert refused.headers["Retry-After"] == "5"
        assert count(api, Submission) == 1
        own_s3.start()
        again = api.upload(photo=PASSING_PHOTO.read_bytes() + b"\x00")
        assert again.status_code == 202, again.text
    with store.sessions() as s:
        photos = [row.photo_sha256 for row in s.query(Submission)]
    assert len(photos) == 2 and all(store.blobs.exists(sha) for sha in photos)
    store.engine.dispose()
