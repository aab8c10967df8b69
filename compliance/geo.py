"""Positions on the earth: the distance between two, and China's map datum.

EXIF GPS records WGS-84. Map apps in mainland China (Amap/高德, Tencent, Apple Maps in China) show
GCJ-02, the WGS-84 position shifted by a published obfuscation formula by 100-700 m. A site's
position may be entered in either; it is kept in WGS-84.

No maintained, small library on PyPI does this (``pyproj`` does not know GCJ-02; ``eviltransform``
and ``coord-convert`` are last released in 2018-2019), so the formula is here: the widely published
WGS-84 -> GCJ-02 transform (as in eviltransform, gcoord and coordtransform; Krasovsky 1940
ellipsoid constants, outside mainland China no shift), and its inverse by fixed-point iteration,
which converges to well under a centimetre in a few steps. ``tests/test_geo.py`` checks published
reference pairs and the round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG): haversine distances within 0.5% of the ellipsoid's

# The GCJ-02 formula's constants: the Krasovsky 1940 ellipsoid's semi-major axis and eccentricity².
_A = 6378245.0
_EE = 0.00669342162296594323


class Datum(StrEnum):
    WGS84 = "wgs84"
    GCJ02 = "gcj02"


@dataclass(frozen=True, slots=True)
class Position:
    """A WGS-84 position in decimal degrees."""

    latitude: float
    longitude: float


def valid_position(latitude: float, longitude: float) -> bool:
    return math.isfinite(latitude) and math.isfinite(longitude) and -90 <= latitude <= 90 and -180 <= longitude <= 180


def distance_m(a: Position, b: Position) -> float:
    """Great-circle (haversine) distance in metres."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat, dlon = lat2 - lat1, math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def outside_china(latitude: float, longitude: float) -> bool:
    """The formula's own bounding box: outside it, GCJ-02 is WGS-84."""
    return not (73.66 < longitude < 135.05 and 3.86 < latitude < 53.55)


def _shift_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _shift_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(position: Position) -> Position:
    lat, lon = position.latitude, position.longitude
    if outside_china(lat, lon):
        return position
    dlat = _shift_lat(lon - 105.0, lat - 35.0)
    dlon = _shift_lon(lon - 105.0, lat - 35.0)
    radlat = math.radians(lat)
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return Position(lat + dlat, lon + dlon)


def gcj02_to_wgs84(position: Position, *, tolerance_deg: float = 1e-10, max_steps: int = 30) -> Position:
    """The WGS-84 position whose GCJ-02 is ``position``: the shift is smooth and small, so
    subtracting the shift's error again and again converges (to 1e-10° ≈ 0.01 mm)."""
    if outside_china(position.latitude, position.longitude):
        return position
    lat, lon = position.latitude, position.longitude
    for _ in range(max_steps):
        there = wgs84_to_gcj02(Position(lat, lon))
        dlat, dlon = there.latitude - position.latitude, there.longitude - position.longitude
        lat, lon = lat - dlat, lon - dlon
        if abs(dlat) < tolerance_deg and abs(dlon) < tolerance_deg:
            break
    return Position(lat, lon)


def to_wgs84(position: Position, datum: Datum | str) -> Position:
    return gcj02_to_wgs84(position) if Datum(datum) is Datum.GCJ02 else position
