"""Photo intake under fuzzing: whatever bytes arrive, ``load_photo`` and ``receive_photo`` (with the
settings' limits) either return a photo or refuse it with ``PhotoRejected``; nothing else escapes.

Two kinds of input: arbitrary bytes (bare, and behind each accepted format's magic number, so that
every decoder is reached), and near-valid photos: a small real image of every accepted format and
of the modes each carries, encoded here with Pillow, then truncated, bit-flipped, and with the
header fields the decoders trust (width, height, bit depth, colour type, chunk and segment lengths,
TIFF tag types and counts, HEIF box sizes) set to hostile values. PNG chunks get their CRCs
recomputed half the time, so that a mutated IHDR gets past the CRC check into the decoder.
"""

from __future__ import annotations

import base64
import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from compliance.photos import ACCEPTED_FORMATS, PhotoRejected, load_photo, receive_photo
from compliance.settings import Settings

SETTINGS = Settings()
LIMITS = SETTINGS.photo_limits
LOADERS: tuple[Callable[..., Any], ...] = (load_photo, receive_photo)
FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# pi_heif decodes HEIF but cannot encode it (no HEVC encoder), so the HEIF seeds were made once with
# pillow-heif 1.9 (libheif 1.23.7, x265): a 64x48 gradient, quality 50; the second with EXIF
# (Orientation 6, DateTimeOriginal 2026:11:20 08:30:00, OffsetTimeOriginal +08:00), written as
#   pillow_heif.register_heif_opener(); image.save(buffer, "HEIF", quality=50, exif=exif.tobytes())
HEIF = base64.b64decode(
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAX1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA"
    "ACJpbG9jAAAAAERAAAEAAQAAAAABoQABAAAAAAAAAGoAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABodmMxAAAAAA5waXRt"
    "AAAAAAABAAAA/WlwcnAAAADdaXBjbwAAAHZodmNDAQNwAAAAkAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNwAAADAJAAAAMA"
    "AAMAHroCQGEAAQAqQgEBA3AAAAMAkAAAAwAAAwAeoCCBBZbq5Ka5uAhoMCAAAAMDIAAAAwAhYgABAAZEAcFzwIkAAAATY29scm5j"
    "bHgAAQANAAaAAAAAFGlzcGUAAAAAAAAAQAAAAEAAAAAoY2xhcAAAAEAAAAABAAAAMAAAAAEAAAAAAAAAAv////AAAAACAAAAEHBp"
    "eGkAAAAAAwgICAAAABhpcG1hAAAAAAAAAAEAAQWBAgMFhAAAAHJtZGF0AAAAZigBrxOA9UU+FJ2bjsn2NzRWhOxSrpAa5DtRqh2b"
    "e/L88OoQZRqiv8k67H1ryN+S2pcexKmcor3HHyt709oEOfBnYRdCRaGKyqWNcaXYYCH/p1WyEbJ6vkLvdZ/wb8eUVjhMytfO7g=="
)
HEIF_EXIF = base64.b64decode(
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAchtZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA"
    "ADRpbG9jAAAAAERAAAIAAQAAAAAB7AABAAAAAAAAAGoAAgAAAAACVgABAAAAAAAAAGoAAAA4aWluZgAAAAAAAgAAABVpbmZlAgAA"
    "AAABAABodmMxAAAAABVpbmZlAgAAAQACAABFeGlmAAAAAA5waXRtAAAAAAABAAABB2lwcnAAAADmaXBjbwAAAHZodmNDAQNwAAAA"
    "kAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNwAAADAJAAAAMAAAMAHroCQGEAAQAqQgEBA3AAAAMAkAAAAwAAAwAeoCCBBZbq"
    "5Ka5uAhoMCAAAAMDIAAAAwAhYgABAAZEAcFzwIkAAAATY29scm5jbHgAAQANAAaAAAAAFGlzcGUAAAAAAAAAQAAAAEAAAAAoY2xh"
    "cAAAAEAAAAABAAAAMAAAAAEAAAAAAAAAAv////AAAAACAAAAEHBpeGkAAAAAAwgICAAAAAlpcm90AwAAABlpcG1hAAAAAAAAAAEA"
    "AQaBAgMFhIYAAAAaaXJlZgAAAAAAAAAOY2RzYwACAAEAAQAAANxtZGF0AAAAZigBrxOA9UU+FJ2bjsn2NzRWhOxSrpAa5DtRqh2b"
    "e/L88OoQZRqiv8k67H1ryN+S2pcexKmcor3HHyt709oEOfBnYRdCRaGKyqWNcaXYYCH/p1WyEbJ6vkLvdZ/wb8eUVjhMytfO7gAA"
    "AAZFeGlmAABNTQAqAAAACAACARIAAwAAAAEABgAAh2kABAAAAAEAAAAmAAAAAAACkAMAAgAAABQAAABEkBEAAgAAAAcAAABYAAAA"
    "ADIwMjY6MTE6MjAgMDg6MzA6MDAAKzA4OjAwAAA="
)

# Each accepted format's magic number (TIFF both byte orders, BMP, and RIFF/ftyp containers).
MAGICS = (
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe1",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",  # BigTIFF
    b"\x00\x00\x00\x18ftypheic",
    b"\x00\x00\x00\x18ftypmif1",
)


# -- seeds: one small real image per format and mode ---------------------------------------------


def _picture(width: int = 40, height: int = 32) -> Image.Image:
    """A gradient with some noise: compresses like a photo, small enough to decode in microseconds."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 40, (height, width))
    rgb = np.stack([x * 6 + noise, y * 7, (x + y) * 3 + noise], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turned
    exif[0x0132] = "2026:11:20 08:29:00"
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2026:11:20 08:30:00"
    ifd[0x9011] = "+08:00"
    return exif


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@functools.cache
def seeds() -> dict[str, tuple[str, bytes]]:
    """name -> (the format Pillow must report, bytes)."""
    rgb = _picture()
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette_transparent = palette.copy()
    palette_transparent.info["transparency"] = 0
    exif = _exif()
    made: dict[str, tuple[str, bytes]] = {
        "jpeg-rgb": ("JPEG", _encoded(rgb, "JPEG", quality=80)),
        "jpeg-exif": ("JPEG", _encoded(rgb, "JPEG", quality=80, exif=exif.tobytes())),
        "jpeg-progressive": ("JPEG", _encoded(rgb, "JPEG", progressive=True, quality=70)),
        "jpeg-grey": ("JPEG", _encoded(rgb.convert("L"), "JPEG")),
        "jpeg-cmyk": ("JPEG", _encoded(rgb.convert("CMYK"), "JPEG")),
        "jpeg-444": ("JPEG", _encoded(rgb, "JPEG", subsampling=0)),
        "mpo": (
            "MPO",
            _encoded(rgb, "MPO", save_all=True, append_images=[rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]),
        ),
        "png-rgb": ("PNG", _encoded(rgb, "PNG")),
        "png-rgba": ("PNG", _encoded(rgba, "PNG")),
        "png-grey": ("PNG", _encoded(rgb.convert("L"), "PNG")),
        "png-grey-alpha": ("PNG", _encoded(rgba.convert("LA"), "PNG")),
        "png-16bit": ("PNG", _encoded(grey16, "PNG")),
        "png-palette": ("PNG", _encoded(palette_transparent, "PNG")),
        "png-bilevel": ("PNG", _encoded(rgb.convert("1"), "PNG")),
        "png-interlaced-exif": ("PNG", _encoded(rgb, "PNG", exif=exif.tobytes())),
        "webp-lossy": ("WEBP", _encoded(rgb, "WEBP", quality=60)),
        "webp-lossless": ("WEBP", _encoded(rgb, "WEBP", lossless=True)),
        "webp-alpha-exif": ("WEBP", _encoded(rgba, "WEBP", quality=60, exif=exif.tobytes())),
        "bmp-rgb": ("BMP", _encoded(rgb, "BMP")),
        "bmp-grey": ("BMP", _encoded(rgb.convert("L"), "BMP")),
        "bmp-palette": ("BMP", _encoded(palette, "BMP")),
        "bmp-bilevel": ("BMP", _encoded(rgb.convert("1"), "BMP")),
        "bmp-rle8": ("BMP", _encoded(palette, "BMP", compression=1) if _can_rle() else _encoded(palette, "BMP")),
        "tiff-rgb": ("TIFF", _encoded(rgb, "TIFF")),
        "tiff-rgba-deflate": ("TIFF", _encoded(rgba, "TIFF", compression="tiff_adobe_deflate")),
        "tiff-grey-lzw": ("TIFF", _encoded(rgb.convert("L"), "TIFF", compression="tiff_lzw")),
        "tiff-bilevel-g4": ("TIFF", _encoded(rgb.convert("1"), "TIFF", compression="group4")),
        "tiff-16bit": ("TIFF", _encoded(grey16, "TIFF")),
        "tiff-float": ("TIFF", _encoded(rgb.convert("F"), "TIFF")),
        "tiff-int32": ("TIFF", _encoded(rgb.convert("I"), "TIFF")),
        "tiff-cmyk": ("TIFF", _encoded(rgb.convert("CMYK"), "TIFF")),
        "tiff-ycbcr": ("TIFF", _encoded(rgb.convert("YCbCr"), "TIFF")),
        "tiff-jpeg": ("TIFF", _encoded(rgb, "TIFF", compression="jpeg")),
        "tiff-packbits": ("TIFF", _encoded(rgb, "TIFF", compression="packbits")),
        "tiff-exif": ("TIFF", _encoded(rgb, "TIFF", exif=exif)),
        "tiff-palette": ("TIFF", _encoded(palette, "TIFF")),
        "heif": ("HEIF", HEIF),
        "heif-exif": ("HEIF", HEIF_EXIF),
    }
    return made


def _can_rle() -> bool:
    try:
        _encoded(Image.new("P", (4, 4)), "BMP", compression=1)
    except Exception:  # an older Pillow writes no RLE BMP
        return False
    return True


# -- the header fields each format's decoder trusts ----------------------------------------------


@dataclass(frozen=True)
class Field:
    offset: int
    size: int  # bytes
    order: str  # ">" or "<"
    what: str


def _u(data: bytes, offset: int, size: int, order: str) -> int:
    return int.from_bytes(data[offset : offset + size], "big" if order == ">" else "little")


def _png_fields(data: bytes) -> list[Field]:
    fields, at = [], 8
    while at + 8 <= len(data):
        length, kind = _u(data, at, 4, ">"), data[at + 4 : at + 8]
        fields.append(Field(at, 4, ">", f"{kind!r} length"))
        if kind == b"IHDR":
            fields += [Field(at + 8, 4, ">", "width"), Field(at + 12, 4, ">", "height")]
            fields += [
                Field(at + 16 + i, 1, ">", n) for i, n in enumerate(("depth", "colour", "comp", "filter", "lace"))
            ]
        at += 12 + length
    return fields


def _jpeg_fields(data: bytes) -> list[Field]:
    fields, at = [], 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker, length = data[at + 1], _u(data, at + 2, 2, ">")
        fields.append(Field(at + 2, 2, ">", f"marker {marker:#x} length"))
        if marker in (0xC0, 0xC1, 0xC2):
            fields += [Field(at + 4, 1, ">", "precision"), Field(at + 5, 2, ">", "height")]
            fields += [Field(at + 7, 2, ">", "width"), Field(at + 9, 1, ">", "components")]
            fields += [
                Field(at + 11 + 3 * i, 1, ">", f"sampling {i}")
                for i in range(data[at + 9] if at + 9 < len(data) else 0)
            ]
        if marker == 0xE2 and data[at + 4 : at + 8] == b"MPF\x00":
            fields += _ifd_fields(data, at + 8)
        if marker == 0xE1 and data[at + 4 : at + 10] == b"Exif\x00\x00":
            fields += _ifd_fields(data, at + 10)
        if marker == 0xDA:  # entropy-coded data follows: its markers are not segments
            break
        at += 2 + length
    return fields


def _ifd_fields(data: bytes, base: int) -> list[Field]:
    """The entries of a TIFF-structured block's first IFD (TIFF files, EXIF, MPF), offsets from ``base``."""
    if data[base : base + 2] not in (b"II", b"MM"):
        return []
    order = "<" if data[base : base + 2] == b"II" else ">"
    fields = [Field(base + 4, 4, order, "first IFD offset")]
    ifd = base + _u(data, base + 4, 4, order)
    if ifd + 2 > len(data):
        return fields
    count = _u(data, ifd, 2, order)
    fields.append(Field(ifd, 2, order, "IFD entry count"))
    for i in range(min(count, 64)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(data):
            break
        tag = _u(data, entry, 2, order)
        fields += [Field(entry + 2, 2, order, f"tag {tag} type"), Field(entry + 4, 4, order, f"tag {tag} count")]
        fields += [Field(entry + 8, 4, order, f"tag {tag} value"), Field(entry + 8, 2, order, f"tag {tag} short")]
    return fields


def _bmp_fields(data: bytes) -> list[Field]:
    names = {2: ("file size", 4), 10: ("pixel offset", 4), 14: ("header size", 4), 18: ("width", 4)}
    names |= {22: ("height", 4), 26: ("planes", 2), 28: ("bits", 2), 30: ("compression", 4)}
    names |= {34: ("image size", 4), 46: ("colours used", 4)}
    return [Field(o, s, "<", n) for o, (n, s) in names.items()]


def _webp_fields(data: bytes) -> list[Field]:
    fields, at = [Field(4, 4, "<", "RIFF size")], 12
    while at + 8 <= len(data):
        kind, length = data[at : at + 4], _u(data, at + 4, 4, "<")
        fields.append(Field(at + 4, 4, "<", f"{kind!r} size"))
        if kind == b"VP8X":
            fields += [Field(at + 8, 1, "<", "flags"), Field(at + 12, 3, "<", "canvas width")]
            fields += [Field(at + 15, 3, "<", "canvas height")]
        elif kind == b"VP8 ":
            fields += [Field(at + 14, 2, "<", "width"), Field(at + 16, 2, "<", "height")]
        elif kind == b"VP8L":
            fields.append(Field(at + 9, 4, "<", "packed size"))
        elif kind == b"EXIF":
            fields += _ifd_fields(data, at + 8)
        at += 8 + length + (length & 1)
    return fields


def _tiff_fields(data: bytes) -> list[Field]:
    return _ifd_fields(data, 0)


def _heif_fields(data: bytes) -> list[Field]:
    """Box sizes through the containers libheif walks, the image's declared size and bit depths."""
    fields: list[Field] = []

    def walk(start: int, end: int) -> None:
        at = start
        while at + 8 <= end:
            size, kind = _u(data, at, 4, ">"), data[at + 4 : at + 8]
            fields.append(Field(at, 4, ">", f"{kind!r} box size"))
            if size < 8:
                return
            if kind == b"meta":
                walk(at + 12, at + size)
            elif kind in (b"iprp", b"ipco", b"iinf"):
                walk(at + 8 + (6 if kind == b"iinf" else 0), at + size)
            elif kind == b"ispe":
                fields.extend([Field(at + 12, 4, ">", "ispe width"), Field(at + 16, 4, ">", "ispe height")])
            elif kind == b"pixi":
                fields.extend(Field(at + 13 + i, 1, ">", "pixi depth") for i in range(3))
            elif kind == b"iloc":
                fields.extend(Field(o, 4, ">", "iloc word") for o in range(at + 12, at + size - 3, 2))
            at += size

    walk(0, len(data))
    return fields


FIELD_FINDERS: dict[str, Callable[[bytes], list[Field]]] = {
    "JPEG": _jpeg_fields,
    "MPO": _jpeg_fields,
    "PNG": _png_fields,
    "WEBP": _webp_fields,
    "BMP": _bmp_fields,
    "TIFF": _tiff_fields,
    "HEIF": _heif_fields,
}


def _with_png_crcs(data: bytes) -> bytes:
    """Every chunk's CRC made right again, so that a mutated chunk reaches the decoder."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        length = _u(bytes(out), at, 4, ">")
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(bytes(out[at + 4 : end])))
        at = end + 4
    return bytes(out)


# -- mutations -----------------------------------------------------------------------------------

HOSTILE = (0, 1, 2, 3, 7, 8, 15, 16, 17, 255, 256, 4095, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000)


@st.composite
def _field_value(draw: st.DrawFn, size: int, original: int) -> int:
    top = (1 << (8 * size)) - 1
    value = draw(
        st.one_of(
            st.sampled_from(HOSTILE),
            st.sampled_from((original + 1, original - 1, original * 2, original * 1000, top, top - 1)),
            st.integers(0, top),
        )
    )
    return value & top


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(seeds())))
    fmt, seed = seeds()[name]
    data = bytearray(seed)
    fields = FIELD_FINDERS[fmt](seed)
    steps = draw(st.integers(1, 4))
    for _ in range(steps):
        kind = draw(st.sampled_from(("field", "field", "field", "flip", "byte", "truncate", "splice", "cut")))
        if kind == "field" and fields:
            field = draw(st.sampled_from(fields))
            if field.offset + field.size > len(data):
                continue
            original = _u(bytes(data), field.offset, field.size, field.order)
            value = draw(_field_value(field.size, original))
            data[field.offset : field.offset + field.size] = value.to_bytes(
                field.size, "big" if field.order == ">" else "little"
            )
        elif kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            at = draw(st.integers(0, min(len(data), 512) - 1))  # headers sit near the start
            data[at] = draw(st.integers(0, 255))
        elif kind == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "splice" and data:
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "cut" and data:
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + draw(st.integers(1, 64))] = b""
    if fmt == "PNG" and draw(st.booleans()):
        data = bytearray(_with_png_crcs(bytes(data)))
    return name, bytes(data)


def _set(data: bytes, offset: int, value: int, size: int, order: str = ">") -> bytes:
    out = bytearray(data)
    out[offset : offset + size] = value.to_bytes(size, "big" if order == ">" else "little")
    return bytes(out)


def _ifd_entry(data: bytes, tag: int) -> int:
    """Where a little-endian TIFF's first-IFD entry for ``tag`` starts."""
    ifd = _u(data, 4, 4, "<")
    for i in range(_u(data, ifd, 2, "<")):
        if _u(data, ifd + 2 + 12 * i, 2, "<") == tag:
            return ifd + 2 + 12 * i
    raise LookupError(tag)


@functools.cache
def hostile() -> dict[str, bytes]:
    """Inputs the fuzzing found or that each decoder must survive, named by what was done to which
    seed: the API refuses each with a 4xx, and intake with PhotoRejected."""
    s = {name: data for name, (_, data) in seeds().items()}
    tiff = s["tiff-rgb"]  # 40x32 RGB, uncompressed, little-endian, one strip
    strip_offsets = _ifd_entry(tiff, 273)
    png = s["png-rgb"]
    # iloc v0: size, type, version/flags, field sizes (2), item count (2), item ID (2), data reference
    # (2), then the item's base offset (4 bytes) at +20: 0x1a1, where its HEVC data starts in mdat.
    heif_iloc = HEIF.index(b"iloc") - 4
    heif_ispe = HEIF.index(b"ispe") - 4
    return {
        "garbage": bytes(range(256)) * 4,
        "jpeg truncated to half": s["jpeg-exif"][: len(s["jpeg-exif"]) // 2],
        "jpeg SOF width 0": _set(s["jpeg-rgb"], _jpeg_sof(s["jpeg-rgb"]) + 7, 0, 2),
        "png IHDR 2^31-1 wide, CRC fixed": _with_png_crcs(_set(png, 16, 0x7FFFFFFF, 4)),
        "png bit depth 3, CRC fixed": _with_png_crcs(_set(png, 24, 3, 1)),
        "bmp 0 bits per pixel": _set(s["bmp-rgb"], 28, 0, 2, "<"),
        "bmp 2^31-1 wide": _set(s["bmp-rgb"], 18, 0x7FFFFFFF, 4, "<"),
        "webp RIFF size 2^32-1": _set(s["webp-lossy"], 4, 0xFFFFFFFF, 4, "<"),
        "mpo truncated inside its first frame": s["mpo"][: len(s["mpo"]) // 3],
        # TIFF StripOffsets (tag 273) typed RATIONAL (5), ASCII (2) or FLOAT (11) instead of LONG (4):
        # Pillow seeks to a non-integer and raises TypeError.
        "tiff StripOffsets typed RATIONAL": _set(tiff, strip_offsets + 2, 5, 2, "<"),
        "tiff StripOffsets typed ASCII": _set(tiff, strip_offsets + 2, 2, 2, "<"),
        "tiff StripOffsets typed FLOAT": _set(tiff, strip_offsets + 2, 11, 2, "<"),
        # HEIF: the image item's iloc base offset one byte short (0x1a1 -> 0x1a0): EOFError from
        # pi_heif; one byte long (0x1a2): PhotoRejected, but with libheif's trailing newline in it.
        "heif iloc base offset -1": _set(HEIF, heif_iloc + 20, 0x1A0, 4),
        "heif iloc base offset +1": _set(HEIF, heif_iloc + 20, 0x1A2, 4),
        # HEIF: ispe height 2^31-1 (Pillow's size, from the decoder's header, stays 64x48 and passes
        # the pixel limit): RuntimeError "Security limit exceeded" from libheif at decode.
        "heif ispe height 2^31-1": _set(HEIF, heif_ispe + 16, 0x7FFFFFFF, 4),
    }


def _jpeg_sof(data: bytes) -> int:
    """Where a JPEG's SOF segment starts (its marker)."""
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):
        at += 2 + _u(data, at + 2, 2, ">")
    return at


def _only_refused(data: bytes) -> None:
    """Each way in returns or raises PhotoRejected with a one-line reason; anything else fails,
    naming the input so that it can be reproduced."""
    for load in LOADERS:
        try:
            load(data, **LIMITS)
        except PhotoRejected as exc:
            assert exc.code and "\n" not in str(exc), (load.__name__, exc.code, str(exc))
        except Exception as exc:
            raise AssertionError(
                f"{load.__name__} raised {type(exc).__name__}: {exc} for the {len(data)} bytes {data!r}"
            ) from exc


# -- the properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(seeds()))
def test_every_seed_is_a_photo_intake_accepts(name: str) -> None:
    """The mutations start from valid photos of every accepted format, each accepted as that format."""
    fmt, data = seeds()[name]
    assert fmt in ACCEPTED_FORMATS
    for load in LOADERS:
        assert load(data, **LIMITS).format == fmt
    assert FIELD_FINDERS[fmt](data), "no header field found to mutate"


def test_the_hostile_inputs_are_what_they_say() -> None:
    """The pinned inputs below mutate what their names say (not, by a shifted offset, something else)."""
    h = hostile()
    assert (
        _u(h["tiff StripOffsets typed RATIONAL"], _ifd_entry(h["tiff StripOffsets typed RATIONAL"], 273) + 2, 2, "<")
        == 5
    )
    iloc = HEIF.index(b"iloc") - 4
    assert _u(HEIF, iloc + 20, 4, ">") == 0x1A1 and _u(h["heif iloc base offset -1"], iloc + 20, 4, ">") == 0x1A0
    assert HEIF[0x1A1 - 4 : 0x1A1] == b"mdat"  # the base offset points just past mdat's header
    ispe = HEIF.index(b"ispe") - 4
    assert (_u(HEIF, ispe + 12, 4, ">"), _u(HEIF, ispe + 16, 4, ">")) == (64, 64)
    assert _u(h["heif ispe height 2^31-1"], ispe + 16, 4, ">") == 0x7FFFFFFF
    png = h["png IHDR 2^31-1 wide, CRC fixed"]
    assert png[12:16] == b"IHDR" and _u(png, 16, 4, ">") == 0x7FFFFFFF
    assert _u(png, 29, 4, ">") == zlib.crc32(png[12:29])


@pytest.mark.parametrize("name", sorted(hostile()))
def test_pinned_hostile_inputs_are_refused(name: str) -> None:
    """What the fuzzing found, kept: each refused with PhotoRejected (never another exception) and a
    one-line reason."""
    for load in LOADERS:
        with pytest.raises(PhotoRejected) as refused:
            load(hostile()[name], **LIMITS)
        assert "\n" not in str(refused.value), str(refused.value)


def test_the_seeds_cover_every_accepted_format() -> None:
    assert {fmt for fmt, _ in seeds().values()} == ACCEPTED_FORMATS


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_or_accepted(data: bytes) -> None:
    _only_refused(data)


@FUZZ
@given(magic=st.sampled_from(MAGICS), rest=st.binary(max_size=2048))
def test_arbitrary_bytes_behind_a_magic_number_are_refused_or_accepted(magic: bytes, rest: bytes) -> None:
    _only_refused(magic + rest)


@settings(max_examples=1200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(case=near_valid())
def test_near_valid_photos_are_refused_or_accepted(case: tuple[str, bytes]) -> None:
    _only_refused(case[1])
