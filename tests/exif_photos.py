"""Photos with real EXIF, written by Pillow's EXIF writer (``Image.Exif``, the library the project
already decodes with): a camera's make and model, an editor's Software tag, a GPS block (position
and fix time), or a GPS block that is there but cannot be read."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

from PIL import Image, TiffImagePlugin

_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_MAKE, _MODEL, _SOFTWARE = 0x010F, 0x0110, 0x0131
_DATETIME_ORIGINAL = 0x9003


def _dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    """Degrees, minutes and seconds as EXIF rationals (seconds to 1/10000)."""
    tenths_of_ms = round(abs(value) * 3600 * 10000)  # the position in 1/10000 arc-seconds
    degrees, rest = divmod(tenths_of_ms, 3600 * 10000)
    minutes, rest = divmod(rest, 60 * 10000)
    seconds = Fraction(rest, 10000)
    return (
        TiffImagePlugin.IFDRational(degrees, 1),
        TiffImagePlugin.IFDRational(minutes, 1),
        TiffImagePlugin.IFDRational(seconds.numerator, seconds.denominator),
    )


def exif_jpeg(
    source: Path | None = None,
    *,
    make: str | None = None,
    model: str | None = None,
    software: str | None = None,
    gps: tuple[float, float] | None = None,
    gps_fix: tuple[str, tuple[int, int, int]] | None = None,
    malformed_gps: bool = False,
    taken: str | None = None,
    size: tuple[int, int] = (640, 480),
) -> bytes:
    """A JPEG (``source`` re-encoded, or a plain grey picture) carrying the EXIF asked for."""
    image = Image.open(source).convert("RGB") if source is not None else Image.new("RGB", size, (120, 130, 140))
    exif = Image.Exif()
    if make is not None:
        exif[_MAKE] = make
    if model is not None:
        exif[_MODEL] = model
    if software is not None:
        exif[_SOFTWARE] = software if software.isascii() else software.encode()  # as Chinese apps write it
    if taken is not None:
        exif.get_ifd(_EXIF_IFD)[_DATETIME_ORIGINAL] = taken
    if gps is not None or malformed_gps:
        block = exif.get_ifd(_GPS_IFD)
        block[0] = b"\x02\x02\x00\x00"  # GPSVersionID
        if malformed_gps:
            # A latitude of one value, not three, in a hemisphere that is none; a longitude over zero.
            block[1], block[2] = "Q", (TiffImagePlugin.IFDRational(31, 1),)
            block[3] = "E"
            block[4] = tuple(TiffImagePlugin.IFDRational(v, 0) for v in (121, 5, 7))
        else:
            assert gps is not None
            lat, lon = gps
            block[1], block[2] = ("N" if lat >= 0 else "S"), _dms(lat)
            block[3], block[4] = ("E" if lon >= 0 else "W"), _dms(lon)
        if gps_fix is not None:
            day, (h, m, s) = gps_fix
            block[29] = day
            block[7] = tuple(TiffImagePlugin.IFDRational(v, 1) for v in (h, m, s))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def with_gps_pointer_broken(photo: bytes) -> bytes:
    """The photo with IFD0's pointer to its GPS block aimed far past the end of the EXIF."""
    entry = b"\x88\x25\x00\x04\x00\x00\x00\x01"  # tag 0x8825, LONG, count 1 (Pillow writes big-endian)
    at = photo.index(entry) + len(entry)
    return photo[:at] + b"\x7f\xff\xff\x00" + photo[at + 4 :]
