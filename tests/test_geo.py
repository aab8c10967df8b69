"""GCJ-02 (Chinese map apps) to and from WGS-84 (GPS), and distances."""

from __future__ import annotations

import itertools

import pytest

from compliance import geo

# Published reference pairs (WGS-84 → GCJ-02), as eviltransform's test suite lists them.
REFERENCE = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),  # Shanghai
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),  # Shenzhen
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),  # Beijing
]


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_published_pairs(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    got = geo.wgs84_to_gcj02(geo.Position(*wgs))
    assert geo.distance_m(got, geo.Position(*gcj)) < 0.01


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_inverse_recovers_the_gps_position(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    back = geo.gcj02_to_wgs84(geo.Position(*gcj))
    assert geo.distance_m(back, geo.Position(*wgs)) < 0.01
    # The shift itself is what the issue says it is: hundreds of metres.
    assert 100 < geo.distance_m(geo.Position(*wgs), geo.Position(*gcj)) < 700


def test_inverse_matches_gcoord() -> None:
    # gcoord's test: GCJ-02 (45, 123) is WGS-84 (44.99804071, 122.99395597) to 5 decimals.
    back = geo.gcj02_to_wgs84(geo.Position(45.0, 123.0))
    assert back.latitude == pytest.approx(44.99804071, abs=5e-6)
    assert back.longitude == pytest.approx(122.99395597, abs=5e-6)


def test_round_trip_under_a_metre_across_china() -> None:
    worst = 0.0
    for lat, lon in itertools.product(range(18, 54, 3), range(74, 135, 4)):
        wgs = geo.Position(lat + 0.37, lon + 0.61)
        if geo.outside_china(wgs.latitude, wgs.longitude):
            continue
        back = geo.gcj02_to_wgs84(geo.wgs84_to_gcj02(wgs))
        worst = max(worst, geo.distance_m(back, wgs))
    assert worst < 1.0


def test_outside_china_nothing_moves() -> None:
    paris = geo.Position(48.8566, 2.3522)
    assert geo.wgs84_to_gcj02(paris) == paris == geo.gcj02_to_wgs84(paris)
    assert geo.to_wgs84(paris, "gcj02") == paris


def test_distance() -> None:
    # One degree of latitude is about 111.2 km; a point is 0 m from itself.
    assert geo.distance_m(geo.Position(31.0, 121.0), geo.Position(32.0, 121.0)) == pytest.approx(111_195, rel=1e-3)
    assert geo.distance_m(geo.Position(31.0, 121.0), geo.Position(31.0, 121.0)) == 0.0
