"""The schema is Alembic's: it upgrades and downgrades on both databases and matches the ORM."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from compliance.store import db
from compliance.store.models import Base

REPO = Path(__file__).resolve().parents[2]
TABLES = {
    "carriers",
    "vehicles",
    "drivers",
    "submissions",
    "photo_hash_bands",
    "judgments",
    "verdicts",
    "audit_events",
}


def _tables(url: str) -> set[str]:
    engine = db.make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_then_downgrade_to_base(database_url: str) -> None:
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES | {"alembic_version"}
    engine = db.make_engine(database_url)
    assert db.current_revision(engine) == db.head_revision()

    db.downgrade(database_url)
    assert _tables(database_url) == {"alembic_version"}
    assert db.current_revision(engine) is None

    # And back up again: the downgrade left nothing behind that blocks a fresh upgrade.
    db.upgrade(database_url)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_upgrade_at_head_changes_nothing(database_url: str) -> None:
    db.upgrade(database_url)
    db.upgrade(database_url)
    assert _tables(database_url) == TABLES | {"alembic_version"}


def test_orm_matches_the_migrations(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def _ini_config() -> Config:
    cfg = Config(str(REPO / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    return cfg


def test_alembic_ini_takes_the_url_from_settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLIANCE_DATABASE_URL", database_url)
    command.upgrade(_ini_config(), "head")
    assert _tables(database_url) == TABLES | {"alembic_version"}


def test_alembic_ini_takes_the_url_from_x_argument(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The environment points elsewhere: -x url must win.
    elsewhere = tmp_path / "elsewhere.db"
    monkeypatch.setenv("COMPLIANCE_DATABASE_URL", f"sqlite:///{elsewhere}")
    cfg = _ini_config()
    cfg.cmd_opts = argparse.Namespace(x=[f"url={database_url}"])
    command.upgrade(cfg, "head")
    assert _tables(database_url) == TABLES | {"alembic_version"}
    assert not elsewhere.exists()
