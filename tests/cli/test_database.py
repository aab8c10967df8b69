"""``compliance db upgrade`` as an operator runs it: the database at head, its password never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.helpers import run
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
