"""Near-duplicate photos are found through the hash-band index, exactly, without reading every row."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from compliance.store import registry, similar
from compliance.store import submissions as subs
from tests.store.samples import Fleet

BASE = 0x8F3C0A5E91B2D476


def _hex(value: int) -> str:
    return f"{value:016x}"


def _flip(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


def _submit(session: Session, fleet: Fleet, phash: int, *, driver_id: int | None = None) -> str:
    return subs.create_submission(
        session,
        carrier_id=fleet.carrier_id,
        driver_id=driver_id or fleet.driver_id,
        photo_sha256=f"{random.getrandbits(256):064x}",
        photo_phash=_hex(phash),
        source="api",
    ).submission.id


def test_distance_5_is_found_and_12_is_not(session: Session, fleet: Fleet) -> None:
    # Five bits spread over five bands, and five bits packed in one band: either way some of the
    # 8 bands are untouched, so the exact band probe finds both.
    spread = _submit(session, fleet, _flip(BASE, [1, 9, 17, 25, 33]), driver_id=fleet.other_driver_id)
    packed = _submit(session, fleet, _flip(BASE, [56, 57, 58, 59, 60]))
    far = _submit(session, fleet, _flip(BASE, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]))
    other = registry.add_carrier(session, code="other", name="Other")
    stranger = registry.add_driver(session, carrier_id=other.id, name="Stranger")
    elsewhere = Fleet(other.id, stranger.id, stranger.id, 0)
    _submit(session, elsewhere, BASE)  # the same photo at another carrier
    session.commit()

    found = similar.find_similar_photos(session, fleet.carrier_id, _hex(BASE), 6)
    assert sorted((s.submission.id, s.distance) for s in found) == sorted([(spread, 5), (packed, 5)])
    by_id = {s.submission.id: s.submission for s in found}
    assert by_id[spread].driver_id == fleet.other_driver_id
    assert by_id[spread].created_at.tzinfo is not None
    assert far not in by_id

    assert {s.submission.id for s in similar.find_similar_photos(session, fleet.carrier_id, _hex(BASE), 12)} == {
        spread,
        packed,
        far,
    }
    assert len(similar.find_similar_photos(session, None, _hex(BASE), 6)) == 3  # across carriers
    assert [s.distance for s in similar.find_similar_photos(session, other.id, _hex(BASE), 0)] == [0]


def test_a_submission_is_not_its_own_duplicate(session: Session, fleet: Fleet) -> None:
    first = _submit(session, fleet, BASE)
    session.commit()
    cut = datetime.now(UTC)
    second = _submit(session, fleet, BASE)
    session.commit()
    assert [s.submission.id for s in similar.find_similar_photos(session, fleet.carrier_id, _hex(BASE), 6, second)] == [
        first
    ]
    # Re-deciding the first must not hold the later copy against it.
    assert similar.find_similar_photos(session, fleet.carrier_id, _hex(BASE), 6, first, created_before=cut) == []


def test_bad_queries_are_refused(session: Session, fleet: Fleet) -> None:
    with pytest.raises(ValueError):
        similar.find_similar_photos(session, fleet.carrier_id, "not-a-hash", 6)
    with pytest.raises(ValueError):
        similar.find_similar_photos(session, fleet.carrier_id, _hex(BASE), -1)


def _plan(session: Session, statement: sa.Select) -> str:
    dialect = session.get_bind().dialect
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    if dialect.name == "sqlite":
        return "\n".join(str(row[-1]) for row in session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
    session.execute(sa.text("ANALYZE photo_hash_bands"))
    return "\n".join(row[0] for row in session.execute(sa.text(f"EXPLAIN {sql}")))


def test_search_over_many_rows_uses_the_band_index_and_is_exact(session: Session, fleet: Fleet) -> None:
    rng = random.Random(20261125)
    hashes: dict[str, int] = {}
    for _ in range(1500):
        value = rng.getrandbits(64)
        hashes[_submit(session, fleet, value)] = value
    queries = [rng.getrandbits(64) for _ in range(4)]
    for query in queries:  # plant neighbours at every distance up to 16
        for distance in range(17):
            value = _flip(query, rng.sample(range(64), distance))
            hashes[_submit(session, fleet, value)] = value
    session.commit()

    for query in queries:
        for max_distance in (0, 5, 6, 7, 10, 15):
            found = similar.find_similar_photos(session, fleet.carrier_id, _hex(query), max_distance)
            expected = {sid: (v ^ query).bit_count() for sid, v in hashes.items()}
            expected = {sid: d for sid, d in expected.items() if d <= max_distance}
            assert {s.submission.id: s.distance for s in found} == expected
            assert [s.distance for s in found] == sorted(s.distance for s in found)

        # Within distance 7 the probe is one exact value per band: a few dozen candidates, not all rows.
        candidates = session.execute(similar.similar_photo_probe(fleet.carrier_id, _hex(query), 7)).all()
        assert len(candidates) < len(hashes) / 10

    plan = _plan(session, similar.similar_photo_probe(fleet.carrier_id, _hex(queries[0]), 6))
    assert "ix_photo_hash_bands_lookup" in plan, plan
    assert "SCAN photo_hash_bands" not in plan and "Seq Scan on photo_hash_bands" not in plan, plan
