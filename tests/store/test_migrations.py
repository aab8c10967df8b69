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
from sqlalchemy.orm import Session

from compliance.store import db, keys
from compliance.store.models import Base

REPO = Path(__file__).resolve().parents[2]
# Every table the ORM declares; test_orm_matches_the_migrations checks that the migrations create them alike.
TABLES = set(Base.metadata.tables)


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


def test_upgrading_copies_each_current_verdict_onto_its_submission(database_url: str) -> None:
    """Revision 0003 backfills outcome, decision time, decider and reasons from verdicts kept before it."""

    from compliance.store import registry, verdicts
    from compliance.store import submissions as subs
    from compliance.verdicts import Outcome, ReasonCode
    from tests.store.samples import verdict

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    with db.session_factory(engine)() as session, session.begin():
        carrier = registry.add_carrier(session, code="acme", name="ACME")
        driver = registry.add_driver(session, carrier_id=carrier.id, name="Li Wei")
        ids = [
            subs.create_submission(
                session,
                carrier_id=carrier.id,
                driver_id=driver.id,
                photo_sha256=f"{i:064x}",
                photo_phash="8f3c0a5e91b2d476",
                source="api",
            ).submission.id
            for i in range(3)
        ]
        verdicts.record_verdict(session, ids[0], verdict(Outcome.FAIL, reasons=(ReasonCode.PLATE_MISMATCH,)))
        verdicts.record_verdict(session, ids[1], verdict(Outcome.PASS))
        verdicts.record_review(
            session, ids[1], reviewer="rev-1", outcome="FAIL", note="wrong truck", reasons=["PLATE_MISMATCH"]
        )
    # Back to before the copy existed, then up again: the copy is rebuilt from the verdicts.
    db.downgrade(database_url, "0002")
    db.upgrade(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, outcome, decided_by, decided_at FROM submissions ORDER BY id")
        ).all()
        reasons = connection.execute(sa.text("SELECT submission_id, reason FROM submission_reasons")).all()
    engine.dispose()
    got = {r.id: (r.outcome, r.decided_by, r.decided_at is not None) for r in rows}
    assert got == {ids[0]: ("FAIL", "machine", True), ids[1]: ("FAIL", "rev-1", True), ids[2]: (None, None, False)}
    assert sorted(reasons) == sorted([(ids[0], "PLATE_MISMATCH"), (ids[1], "PLATE_MISMATCH")])


def test_keys_made_before_scopes_keep_what_they_could_do(database_url: str) -> None:
    """0006: a key made before keys had scopes gets ``admin`` (it could do everything); a new one
    gets ``submit``."""
    db.upgrade(database_url, "0005")
    engine = db.make_engine(database_url)
    with engine.begin() as c:
        c.execute(
            sa.text("INSERT INTO carriers (id, code, name, created_at) VALUES (1, 'ACME', 'Acme', :t)"),
            {"t": "2026-11-30 08:00:00+00:00"},
        )
        c.execute(
            sa.text(
                "INSERT INTO api_keys (key_id, carrier_id, name, secret_sha256, created_at) "
                "VALUES ('0123456789ab', 1, 'driver app', :h, :t)"
            ),
            {"h": "0" * 64, "t": "2026-11-30 08:00:00+00:00"},
        )
    db.upgrade(database_url)
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT scopes FROM api_keys WHERE key_id = '0123456789ab'")) == "admin"
    with Session(engine) as s, s.begin():
        key, _ = keys.create_key(s, 1, name="new")
        assert key.scopes == "submit"
    db.downgrade(database_url, "0005")
    with engine.connect() as c:
        assert "scopes" not in {col["name"] for col in sa.inspect(c).get_columns("api_keys")}
    engine.dispose()


def test_sites_upgrade_keeps_submissions_and_their_free_text_site(database_url: str) -> None:
    """0007_sites: submissions from before keep their free-text site and get no EXIF findings (not
    read: no check on EXIF applies to them); downgrading drops the sites and the new columns only."""
    from compliance.store import registry
    from compliance.store import submissions as subs

    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    with db.session_factory(engine)() as session, session.begin():
        carrier = registry.add_carrier(session, code="acme", name="ACME")
        driver = registry.add_driver(session, carrier_id=carrier.id, name="Li Wei")
        made = subs.create_submission(
            session,
            carrier_id=carrier.id,
            driver_id=driver.id,
            photo_sha256="a" * 64,
            photo_phash="8f3c0a5e91b2d476",
            source="api",
            site="Hefei depot",
        ).id
    db.downgrade(database_url, "0006")
    with engine.connect() as c:
        assert "sites" not in sa.inspect(c).get_table_names()
        assert "gps_latitude" not in {col["name"] for col in sa.inspect(c).get_columns("submissions")}
    db.upgrade(database_url)
    with engine.connect() as c:
        row = c.execute(
            sa.text("SELECT site, gps_latitude, gps_time, exif_findings FROM submissions WHERE id = :id"), {"id": made}
        ).one()
    assert tuple(row) == ("Hefei depot", None, None, None)
    with db.session_factory(engine)() as session, session.begin():
        site = registry.add_site(
            session,
            carrier_id=registry.get_carrier(session, "acme").id,
            code="SH-JD",
            name="上海嘉定",
            latitude=31.37,
            longitude=121.25,
        )
        assert site.radius_m == registry.DEFAULT_SITE_RADIUS_M
    engine.dispose()
