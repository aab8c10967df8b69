"""With ``COMPLIANCE_DATABASE_READ_URL`` the dashboard's pages read from a replica, and signing in
(and every write) stays on the primary. The replica here is a copy of the primary's SQLite file
taken at one moment, so what each page read from is plain to see."""

from __future__ import annotations

import shutil
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from compliance.api.app import create_app
from compliance.demo import samples_dir
from compliance.photos import read_photo_file
from compliance.service import registry as registering
from compliance.settings import Settings
from compliance.store import Store, users
from compliance.store.models import Role
from tests.dashboard.test_security import PASSWORD, sign_in


def test_pages_read_the_replica_and_sign_in_reads_the_primary(tmp_path: Path) -> None:
    primary, replica = tmp_path / "primary.db", tmp_path / "replica.db"
    base = Settings(database_url=f"sqlite:///{primary}", blob_dir=tmp_path / "blobs")
    store = Store.open(base)
    registering.add_carrier(store, code="ACME", name="ACME Logistics", actor="tests")
    licence = read_photo_file(samples_dir() / "licence_a.jpg", max_bytes=20_000_000, max_pixels=50_000_000)
    driver = registering.add_driver(store, "ACME", name="张伟", ref="A-1", licence=licence, actor="tests").id
    store.engine.dispose()
    shutil.copyfile(primary, replica)  # the replica, as of now

    # The primary moves on: the driver renamed, a new person who may sign in.
    store = Store.open(base)
    with store.sessions() as s, s.begin():
        s.execute(sa.text("UPDATE drivers SET name = '李娜' WHERE id = :i"), {"i": driver})
        users.add_user(s, username="ops", password=PASSWORD, role=Role.ADMIN, carrier_id=None)
    store.engine.dispose()

    settings = base.model_copy(
        update={"database_read_url": f"sqlite:///{replica}", "session_secret_file": tmp_path / "secret"}
    )
    with TestClient(create_app(settings)) as client:
        assert sign_in(client, "ops").status_code == 303  # "ops" is on the primary only
        page = client.get(f"/dashboard/drivers/{driver}")
        assert page.status_code == 200
        assert "张伟" in page.text and "李娜" not in page.text  # as the replica has it

    # Without a read URL, the same page reads the primary.
    with TestClient(create_app(base.model_copy(update={"session_secret_file": tmp_path / "secret"}))) as client:
        assert sign_in(client, "ops").status_code == 303
        assert "李娜" in client.get(f"/dashboard/drivers/{driver}").text
