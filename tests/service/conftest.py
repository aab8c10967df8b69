"""Fixtures for the service: the real API app over a fresh database (SQLite and PostgreSQL), a
private Redis it publishes to, and two carriers with their keys, drivers and vehicles. tests/api
imports the fixtures into its conftest; tests/workers, tests/cli and the benches import the helpers."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from compliance.api.app import create_app
from compliance.demo import samples_dir
from compliance.settings import Settings
from compliance.store import Store, keys, registry
from tests.conftest import paired_blob_url
from tests.service.stack import RedisServer

SAMPLES = samples_dir()
PASSING_PHOTO = SAMPLES / "a_by_car_wanAUJ299.jpg"  # driver A by car 皖AUJ299


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming a huge size: a decompression bomb in a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def cmyk_jpeg(source: Path = PASSING_PHOTO) -> bytes:
    buffer = io.BytesIO()
    Image.open(source).convert("CMYK").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def png16(source: Path = PASSING_PHOTO) -> bytes:
    """A 16-bit greyscale PNG of a real photo."""
    grey = np.asarray(Image.open(source).convert("L"), dtype=np.uint16) * 257
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Carrier:
    id: int
    code: str
    token: str
    key_id: str
    driver_id: int
    driver_ref: str
    vehicle_id: int
    plate: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def add_carrier(
    store: Store, code: str, driver_ref: str, licence: str, plate: str, scopes: tuple[str, ...] = ("admin",)
) -> Carrier:
    """A carrier with a driver, a vehicle and a key (``admin`` unless told: the tests of each router
    reach every route; tests/api/test_scopes.py narrows them)."""
    sha = store.blobs.put((SAMPLES / licence).read_bytes())
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code=code, name=code.title())
        vehicle = registry.add_vehicle(s, carrier_id=carrier.id, registered_plate=plate, plate_color="blue")
        driver = registry.add_driver(
            s, carrier_id=carrier.id, name=driver_ref, external_ref=driver_ref, licence_sha256=sha
        )
        key, token = keys.create_key(s, carrier.id, name="tests", scopes=scopes)
        return Carrier(carrier.id, code, token, key.key_id, driver.id, driver_ref, vehicle.id, plate)


@dataclass
class Api:
    settings: Settings
    store: Store
    client: TestClient
    acme: Carrier
    other: Carrier

    def upload(
        self,
        carrier: Carrier | None = None,
        photo: bytes | None = None,
        *,
        filename: str = "photo.jpg",
        key: str | None = None,
        **fields: object,
    ) -> object:
        carrier = carrier or self.acme
        data = {"driver_id": carrier.driver_id, "vehicle_id": carrier.vehicle_id, **fields}
        data = {k: str(v) for k, v in data.items() if v is not None}
        headers = dict(carrier.auth)
        if key is not None:
            headers["Idempotency-Key"] = key
        content = photo if photo is not None else PASSING_PHOTO.read_bytes()
        return self.client.post(
            "/v1/submissions", data=data, files={"photo": (filename, content, "image/jpeg")}, headers=headers
        )


def service_settings(database_url: str, tmp_path: Path, broker_url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        broker_url=broker_url,
        broker_connect_timeout_s=0.5,
        webhook_allow_private=True,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture()
def api(request: pytest.FixtureRequest, database_url: str, tmp_path: Path, redis_server: RedisServer) -> Iterator[Api]:
    """The real app, as ``compliance api`` builds it, over a fresh database and photo store (the
    folder beside SQLite, S3 beside PostgreSQL); tasks go to a private Redis."""
    settings = service_settings(
        database_url,
        tmp_path,
        redis_server.url,
        max_upload_bytes=2_000_000,
        metrics_token="metrics-scraper-token",
        blob_url=paired_blob_url(request, database_url, tmp_path),
    )
    app = create_app(settings)
    store: Store = app.state.store
    acme = add_carrier(store, "ACME", "A-1", "licence_a.jpg", "皖AUJ299")
    other = add_carrier(store, "OTHER", "B-1", "licence_b.jpg", "皖A195K9")
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(settings, store, client, acme, other)
    store.engine.dispose()
