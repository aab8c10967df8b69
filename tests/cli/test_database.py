"""``compliance db`` as an operator runs it: the database at head, its password never printed; photo
files nothing refers to swept, and what was kept and removed said."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.cli.helpers import run, run_words
from tests.conftest import POSTGRES_URL, postgres_unavailable
from tests.databases import postgres_schema


def test_upgrade_names_the_database_without_its_password(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    with postgres_schema(POSTGRES_URL, "cli_db") as url:
        # The local server trusts any password; an operator's URL carries one.
        with_password = url.replace("postgres@", "postgres:s3cret-Pa55@", 1)
        monkeypatch.setenv("COMPLIANCE_DATABASE_URL", with_password)
        code, stdout, stderr = run("db", "upgrade")
    assert code == 0, stderr
    assert "database at head" in stderr and "127.0.0.1" in stderr
    assert "s3cret-Pa55" not in stdout + stderr and "***" in stderr


def test_sweep_photos_says_what_it_kept_and_removed(isolated_env: Path) -> None:
    from compliance.settings import get_settings
    from compliance.store import Store, registry

    store = Store.open(get_settings())
    licence = store.blobs.put(b"\xff\xd8 a licence photo")
    orphan = store.blobs.put(b"\xff\xd8 a photo whose row never committed")  # 36 bytes
    young = store.blobs.put(b"\xff\xd8 a photo just written")
    with store.sessions() as s, s.begin():
        carrier = registry.add_carrier(s, code="ACME", name="Acme")
        registry.add_driver(s, carrier_id=carrier.id, name="Li", licence_sha256=licence)
    old = time.time() - 3 * 24 * 3600
    for sha in (licence, orphan):
        os.utime(store.blobs.path(sha), (old, old))
    store.engine.dispose()

    code, stdout, stderr = run_words("db", "sweep-photos", "--dry-run")
    assert code == 0, stderr
    assert "kept 2 photo(s): 1 referenced, 1 newer than 24 h" in stdout
    assert "would remove 1 photo(s) and 0 stale temporary file(s), freeing 36 bytes" in stdout
    assert store.blobs.exists(orphan)

    code, stdout, stderr = run_words("db", "sweep-photos")
    assert code == 0, stderr
    assert "removed 1 photo(s) and 0 stale temporary file(s), freeing 36 bytes" in stdout
    assert not store.blobs.exists(orphan) and store.blobs.exists(licence) and store.blobs.exists(young)
