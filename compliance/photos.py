"""Where photos enter: validation, decoding to BGR, quality, perceptual hash and EXIF capture time.

Every way in (CLI, API, batch audit) goes through ``load_photo``; a photo it rejects raises
``PhotoRejected`` with a one-line reason, and nothing downstream ever sees undecodable input.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Unpack

import cv2
import imagehash
import numpy as np
import pi_heif
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from compliance.judgments import Quality
from compliance.settings import PhotoLimits

# Phones save HEIC by default.
pi_heif.register_heif_opener()
# A PNG's text chunks are held in memory as they are read: 64 MiB of them by Pillow's default.
PngImagePlugin.MAX_TEXT_MEMORY = 4 * 1024 * 1024

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "HEIF"})


class PhotoRejected(ValueError):
    """A photo that cannot be judged. ``code`` is stable for APIs; ``str()`` is one line for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# Photo editors that write their name into EXIF Software, matched case-insensitively as substrings.
# The one list: PHOTO_EDITED names the first that matches.
KNOWN_EDITORS: tuple[str, ...] = (
    "美图秀秀",
    "美图",
    "Meitu",
    "MTXX",
    "醒图",
    "Xingtu",
    "轻颜",
    "Faceu",
    "B612",
    "黄油相机",
    "Photoshop",
    "Adobe",
    "Lightroom",
    "Snapseed",
    "PicsArt",
    "VSCO",
    "GIMP",
    "Canva",
    "Facetune",
    "Pixelmator",
    "Picsart",
    "Polarr",
    "泼辣修图",
    "PhotoDirector",
    "Remini",
)


def edited_by(software: str | None) -> str | None:
    """The known editor ``software`` names, or None."""
    if not software:
        return None
    folded = software.casefold()
    return next((editor for editor in KNOWN_EDITORS if editor.casefold() in folded), None)


# Longest EXIF text kept (Software, Make, Model): enough for any real value, bounded for the row.
_EXIF_TEXT_MAX = 64


@dataclass(frozen=True, slots=True)
class ExifFacts:
    """What the photo's EXIF says of where and how it was made. Read at intake, never fatally: a
    value that cannot be read is None, and a GPS block that is there but unreadable is
    ``gps_malformed`` (its position unknown). ``read`` is False where no EXIF was looked at."""

    latitude: float | None = None
    longitude: float | None = None
    gps_time: datetime | None = None  # the fix's time, UTC, where the phone wrote one
    gps_malformed: bool = False
    software: str | None = None
    camera_make: str | None = None
    camera_model: str | None = None
    read: bool = True

    @property
    def has_position(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def has_camera(self) -> bool:
        return bool(self.camera_make or self.camera_model)

    def findings(self) -> dict[str, object]:
        """The JSON kept on the submission beside the position columns."""
        return {
            "software": self.software,
            "camera_make": self.camera_make,
            "camera_model": self.camera_model,
            "gps_malformed": self.gps_malformed,
        }

    @classmethod
    def stored(
        cls,
        findings: dict[str, object] | None,
        latitude: float | None,
        longitude: float | None,
        gps_time: datetime | None,
    ) -> ExifFacts:
        """From a submission's columns; no findings (rows from before EXIF was read): not read."""
        if findings is None:
            return cls(read=False)

        def text(key: str) -> str | None:
            value = findings.get(key)
            return value if isinstance(value, str) else None

        return cls(
            latitude=latitude,
            longitude=longitude,
            gps_time=gps_time,
            gps_malformed=bool(findings.get("gps_malformed")),
            software=text("software"),
            camera_make=text("camera_make"),
            camera_model=text("camera_model"),
        )


NO_EXIF_READ = ExifFacts(read=False)


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    sha256: str
    image: np.ndarray  # HxWx3 uint8 BGR, EXIF orientation applied
    format: str
    capture_time: datetime | None
    exif: ExifFacts = NO_EXIF_READ

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def phash(self) -> str:
        return perceptual_hash(self.image)


MIB = 1024 * 1024
# What one photo's decode may cost, by default (the deployment's come from settings.photo_limits):
# the memory it may take at its peak, how many pixels the pipelines work on (a larger photo is
# decoded at a reduced size), and how many photos a process decodes at once.
MAX_DECODE_BYTES = 112 * MIB  # settings.max_decode_mib
WORKING_PIXELS = 16_000_000
CONCURRENT_DECODES = 2
# Pixels converted at a time: bounds the temporary copies to a few MiB whatever the photo's size.
_STRIP_PIXELS = 1 << 20


def read_photo_file(path: Path, **limits: Unpack[PhotoLimits]) -> Photo:
    if not path.exists():
        raise PhotoRejected("not_found", f"{path}: no such file")
    if not path.is_file():
        raise PhotoRejected("not_a_file", f"{path}: not a file")
    size, max_bytes = path.stat().st_size, limits["max_bytes"]
    if size > max_bytes:
        raise PhotoRejected("too_large", f"{path}: {size} bytes is over the {max_bytes}-byte limit")
    try:
        return load_photo(path.read_bytes(), **limits)
    except PhotoRejected as exc:
        raise PhotoRejected(exc.code, f"{path}: {exc}") from None


@dataclass(frozen=True, slots=True)
class ReceivedPhoto:
    """A photo checked at intake (decodable, within the limits) and what is kept of it to store and
    queue it: its bytes, digest, perceptual hash and capture time, not its full pixels."""

    data: bytes
    sha256: str
    format: str
    width: int
    height: int
    capture_time: datetime | None
    phash: str
    exif: ExifFacts = NO_EXIF_READ


def load_photo(data: bytes, **limits: Unpack[PhotoLimits]) -> Photo:
    """Validate and decode a photo for the pipelines: in full, or, when it has more than
    ``working_pixels``, at the largest reduction (1/2, 1/4, …) that keeps at least that many."""
    bounds = _Bounds.of(limits)
    with _refusals():
        pil, factor = _opened(data, bounds)
        with _decode_gate(bounds.concurrent_decodes), _trimmed(pil.width * pil.height // factor**2):
            _reduce_jpeg(pil, factor)
            pixels = _pixels(pil, data)
            capture_time, orientation = _exif_capture_time(pil), _orientation(pil)
            facts = exif_facts(pil)
            w, h = pil.size
            image = _converted(pixels, _factor(w * h, bounds.working_pixels), grey=False)
            del pixels
            pil.close()  # frees the decoded pixels before the copy turning them may make
            image = _turned(image, orientation)
    return Photo(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        image=image,
        format=_format(pil),
        capture_time=capture_time,
        exif=facts,
    )


def receive_photo(data: bytes, **limits: Unpack[PhotoLimits]) -> ReceivedPhoto:
    """Validate a photo as ``load_photo`` does, for intake. Every byte is still decoded (a truncated
    or corrupt file is refused alike), and a photo a worker could not decode within the same bounds
    is refused here; but only a small luminance image is kept, and a JPEG is decoded at a reduced
    scale: the upload API accepts photos at a fraction of the cost."""
    bounds = _Bounds.of(limits)
    with _refusals():
        pil, _ = _opened(data, bounds)
        w, h = pil.size
        decoded = w * h // (64 if _format(pil) in _JPEG else 1)
        with _decode_gate(bounds.concurrent_decodes), _trimmed(decoded):
            if _format(pil) in _JPEG:
                # A colour JPEG decodes straight to its Y channel (every byte still entropy-decoded),
                # skipping chroma upsampling and colour conversion.
                pil.draft("L" if pil.mode in ("RGB", "L") else pil.mode, (PHASH_SIDE, PHASH_SIDE))
            pixels = _pixels(pil, data)
            capture_time, orientation = _exif_capture_time(pil), _orientation(pil)
            facts = exif_facts(pil)
            # Hashed from luminance: the same pixels perceptual_hash sees after its own conversion.
            small = _converted(pixels, max(1, max(pil.size) // PHASH_SIDE), grey=True)
            del pixels
            pil.close()
    turned = orientation in (5, 6, 7, 8)
    return ReceivedPhoto(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=_format(pil),
        width=h if turned else w,
        height=w if turned else h,
        capture_time=capture_time,
        phash=_perceptual_hash_rgb(_turned(small, orientation)),
        exif=facts,
    )


# Formats every browser shows as they are (an MPO is a JPEG followed by more pictures).
_SHOWN_AS_IS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp"}


def rendition(data: bytes, *, max_side: int = 2048, **limits: Unpack[PhotoLimits]) -> tuple[bytes, str]:
    """What a reviewer's browser is sent, and its image type: the stored bytes when a browser shows
    them as the pipelines saw them (JPEG, PNG, WebP, upright), else an upright JPEG of at most
    ``max_side`` a side, decoded within the same bounds as a worker's."""
    bounds = _Bounds.of(limits)
    with _refusals():
        pil, _ = _opened(data, bounds)
        kind = _SHOWN_AS_IS.get(_format(pil))
        if kind is not None and _header_orientation(pil) in (None, 1):
            return data, kind
    photo = load_photo(data, **{**limits, "working_pixels": min(bounds.working_pixels, max_side * max_side)})
    image = photo.image
    h, w = image.shape[:2]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise PhotoRejected("corrupt", "the image could not be shown")
    return encoded.tobytes(), "jpeg"


_JPEG = ("JPEG", "MPO")


def _format(pil: Image.Image) -> str:
    return pil.format or "unknown"


@contextmanager
def _refusals() -> Iterator[None]:
    """Whatever a decoder raises over bad bytes, as the one refusal the callers handle."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except PhotoRejected:
        raise
    except UnidentifiedImageError:
        raise PhotoRejected("not_an_image", "not an image (or a format that cannot be read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected("too_many_pixels", "decompression bomb: too many pixels") from None
    except MemoryError:
        raise PhotoRejected("too_many_pixels", "the image is too large to decode") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        struct.error,
        EOFError,
        RuntimeError,
    ) as exc:
        # Pillow and its plugins (libheif's are RuntimeErrors) report truncated and corrupt data in
        # their own words and types; the words are not passed on (they may span lines).
        raise PhotoRejected("corrupt", f"the image data is truncated or corrupt ({type(exc).__name__})") from None


@dataclass(frozen=True, slots=True)
class _Bounds:
    max_bytes: int
    max_pixels: int
    max_decode_bytes: int
    working_pixels: int
    concurrent_decodes: int

    @classmethod
    def of(cls, limits: PhotoLimits) -> _Bounds:
        return cls(
            max_bytes=limits["max_bytes"],
            max_pixels=limits["max_pixels"],
            max_decode_bytes=limits.get("max_decode_bytes", MAX_DECODE_BYTES),
            working_pixels=limits.get("working_pixels", WORKING_PIXELS),
            concurrent_decodes=limits.get("concurrent_decodes", CONCURRENT_DECODES),
        )


def _opened(data: bytes, bounds: _Bounds) -> tuple[Image.Image, int]:
    """The checks every way in shares, from the header alone (no pixel is decoded yet): the photo
    opened, and the JPEG decoder's scale its decode may use (1 for other formats)."""
    max_bytes, max_pixels = bounds.max_bytes, bounds.max_pixels
    if not data:
        raise PhotoRejected("empty", "the file is empty")
    if len(data) > max_bytes:
        raise PhotoRejected("too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    pil = Image.open(io.BytesIO(data))
    fmt = _format(pil)
    if fmt not in ACCEPTED_FORMATS:
        raise PhotoRejected("unsupported_format", f"{fmt} images are not accepted")
    w, h = pil.size
    if w * h > max_pixels:
        raise PhotoRejected("too_many_pixels", f"{w}x{h} is over the {max_pixels}-pixel limit (decompression bomb?)")
    # Pillow's size is a HEIF's picture after its crop; libheif decodes the whole coded image.
    coded = _heif_coded_pixels(data) if fmt == "HEIF" else 0
    if coded > max_pixels:
        raise PhotoRejected("too_many_pixels", f"the coded image is over the {max_pixels}-pixel limit")
    if w < 16 or h < 16:
        raise PhotoRejected("too_small", f"{w}x{h} is too small to judge")
    return pil, _check_cost(pil, data, bounds, coded)


def _heif_coded_pixels(data: bytes) -> int:
    """The largest image a HEIF file says it codes (its 'ispe' boxes: the grid and every tile)."""
    largest, at = 0, data.find(b"ispe")
    while 0 <= at <= len(data) - 16:
        width = int.from_bytes(data[at + 8 : at + 12], "big")
        height = int.from_bytes(data[at + 12 : at + 16], "big")
        largest = max(largest, width * height)
        at = data.find(b"ispe", at + 4)
    return largest


def _pixel_bytes(mode: str) -> int:
    """Bytes a pixel takes in Pillow's memory (three bands take four)."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


@dataclass(frozen=True, slots=True)
class _Array:
    """Pixels a decoder other than Pillow's gave: HxWx3 or HxWx4, in ``order``."""

    pixels: np.ndarray
    order: str  # "RGB" or "BGR"
    owner: object = None  # what holds the memory ``pixels`` views (libheif's image): kept alive with it


def _pixels(pil: Image.Image, data: bytes) -> Image.Image | _Array:
    """The decoded pixels. WebP and HEIF bypass Pillow's image, which would be one more full copy
    (four bytes a pixel) on top of the decoder's own: OpenCV decodes a WebP straight into its
    array, and libheif's RGB image is read where it lies."""
    fmt = _format(pil)
    if fmt == "WEBP":
        flags = cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION  # EXIF is applied by _turned
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if decoded is None or decoded.ndim != 3 or decoded.dtype != np.uint8:
            raise PhotoRejected("corrupt", "the image data is truncated or corrupt (WebP)")
        return _Array(decoded, "BGR")
    if fmt == "HEIF":
        heif = pi_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
        decoded = np.asarray(heif)  # a view of libheif's image: no copy
        if decoded.ndim != 3 or decoded.dtype != np.uint8:
            raise PhotoRejected("corrupt", "the image data is truncated or corrupt (HEIF)")
        return _Array(decoded, "RGB", heif)
    pil.load()
    return pil


def _decoder_bytes(pil: Image.Image, decoded: int, kept: int) -> int:
    """The decoder's memory at its peak and the converted image's, in bytes."""
    fmt = _format(pil)
    channels = 4 if _has_alpha(pil) else 3
    if fmt == "WEBP":
        # libwebp's lossless canvas (4 bytes a pixel), OpenCV's array; a copy only to flatten or shrink.
        copied = kept * 3 if channels == 4 or kept < decoded else 0
        return decoded * (4 + channels) + copied
    if fmt == "HEIF":
        # libheif's planes while it converts them to RGB, then its RGB beside the converted image.
        return decoded * channels + max(decoded * 3, kept * 3)
    if fmt == "BMP" and pil.info.get("compression") in (1, 2):
        # Pillow's run-length decoder gathers the pixels in a buffer, then copies them: twice more.
        return decoded * 3 * _pixel_bytes(pil.mode) + kept * 4
    return decoded * _pixel_bytes(pil.mode) + kept * 4


def decode_cost(
    pil: Image.Image, data_bytes: int, working_pixels: int, jpeg_factor: int, *, scans: int, coded_pixels: int
) -> int:
    """What decoding the photo for a worker costs at its peak, in bytes, from its header: the file,
    the decoder's buffers (a progressive JPEG's coefficients all at once), the decoded image (a
    JPEG's at 1/``jpeg_factor``) and the converted one. Intake costs less; an accepted photo must be
    decodable by a worker, so intake is held to this."""
    w, h = pil.size
    fmt = _format(pil)
    factor = jpeg_factor if fmt in _JPEG else 1
    decoded = max(-(-w // factor) * -(-h // factor), coded_pixels)
    kept = decoded // _factor(decoded, working_pixels) ** 2
    cost = data_bytes + _decoder_bytes(pil, decoded, kept)
    if fmt in _JPEG and (scans > 1 or pil.info.get("progressive") or pil.info.get("progression")):
        # More than one scan (progressive, or baseline one component at a time): the decoder keeps
        # every coefficient until the last scan.
        cost += _coefficient_bytes(pil)
    return cost


def _check_cost(pil: Image.Image, data: bytes, bounds: _Bounds, coded: int) -> int:
    """The JPEG decoder's scale to use (1 for other formats), or ``PhotoRejected`` when even the
    smallest decode would cost more than ``max_decode_bytes``. A JPEG too costly in full (a large
    progressive one) is decoded at a further reduced scale rather than refused."""
    max_decode_bytes, working_pixels = bounds.max_decode_bytes, bounds.working_pixels
    w, h = pil.size
    factors, scans = [1], 1
    if _format(pil) in _JPEG:
        first = _jpeg_factor(w, h, working_pixels)
        factors = [f for f in (1, 2, 4, 8) if f >= first]
        total, scans = _jpeg_scans(data)
        if total > MAX_JPEG_SCANS:
            # Each scan passes over every block again: 50,000 scans of a 12 MP photo fit in 1 MiB
            # and cost 10 s of CPU. Cameras and encoders write 1 to about 12 a picture.
            raise PhotoRejected("too_complex", f"a JPEG of {total} scans (at most {MAX_JPEG_SCANS} are decoded)")
    cost = 0
    for factor in factors:
        cost = decode_cost(pil, len(data), working_pixels, factor, scans=scans, coded_pixels=coded)
        if cost <= max_decode_bytes:
            return factor
    raise PhotoRejected(
        "too_many_pixels",
        f"a {w}x{h} {_format(pil)} ({pil.mode}) needs about {cost // MIB} MiB to decode, over the "
        f"{max_decode_bytes // MIB} MiB limit: send it as a JPEG, or smaller",
    )


MAX_JPEG_SCANS = 64
_SOS, _EOI = b"\xff\xda", b"\xff\xd9"


def _jpeg_scans(data: bytes) -> tuple[int, int]:
    """How many scans the JPEG has in all, and in its first picture (what is decoded): its
    start-of-scan markers from the first on. Segments before the first scan are skipped by their
    length, so an EXIF thumbnail's scans are not counted; inside entropy-coded data 0xFF is always
    stuffed, so no marker is counted that is not one. An MPO's further pictures follow the first's
    end-of-image marker."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return 1, 1  # not a marker where one must be: the decoder will refuse it
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1  # fill byte
            continue
        if marker == 0xDA:
            total = data.count(_SOS, position)
            if total == 1:
                return 1, 1  # an ordinary baseline JPEG: one pass over the file
            end = data.find(_EOI, position)
            return total, data.count(_SOS, position, end if end >= 0 else len(data))
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    return 1, 1


def _coefficient_bytes(pil: Image.Image) -> int:
    """A progressive JPEG is decoded from all its DCT coefficients at once (2 bytes each), at any scale."""
    layers = getattr(pil, "layer", None) or [("", 1, 1, 0)] * len(pil.getbands())
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    w, h = pil.size
    total = 0
    for _, h_samp, v_samp, _ in layers:
        blocks_w = -(-w * h_samp // h_max) // 8 + 1
        blocks_h = -(-h * v_samp // v_max) // 8 + 1
        total += blocks_w * blocks_h * 64 * 2
    return total


def _jpeg_factor(w: int, h: int, working_pixels: int) -> int:
    """The JPEG decoder's scale (1, 2, 4 or 8) that keeps at most ``working_pixels``, or 8."""
    for factor in (1, 2, 4, 8):
        if -(-w // factor) * -(-h // factor) <= working_pixels:
            return factor
    return 8


def _factor(pixels: int, working_pixels: int) -> int:
    """The integer reduction that brings ``pixels`` to at most ``working_pixels``."""
    factor = 1
    while pixels // (factor * factor) > working_pixels:
        factor += 1
    return factor


def _reduce_jpeg(pil: Image.Image, factor: int) -> None:
    """Ask the JPEG decoder for a reduced scale (when the photo is larger than the pipelines need,
    or too costly to decode in full)."""
    if _format(pil) in _JPEG and factor > 1:
        w, h = pil.size
        # Pillow picks the scale from the floor of size / requested size.
        pil.draft(pil.mode, (w // factor, h // factor))


def _converted(source: Image.Image | _Array, factor: int, *, grey: bool) -> np.ndarray:
    """The decoded image as 8-bit BGR (or grey), shrunk by ``factor`` (area average), converted a
    strip at a time: whatever the mode (CMYK, 16-bit, palette, alpha), no full-size temporary copy
    is made, and the arithmetic is integer."""
    if isinstance(source, _Array):
        h, w = source.pixels.shape[:2]
        if source.order == "BGR" and source.pixels.shape[2] == 3 and factor == 1 and not grey:
            return source.pixels  # OpenCV's array is already what the pipelines read
    else:
        if factor > 1 and source.mode in _REDUCIBLE:
            # Pillow's box reduction in C, into an image factor² smaller: cheaper than strips.
            source, factor = source.reduce(factor), 1
        w, h = source.size
    out_w, out_h = max(1, w // factor), max(1, h // factor)
    out = np.empty((out_h, out_w) if grey else (out_h, out_w, 3), dtype=np.uint8)
    rows = factor * max(1, _STRIP_PIXELS // (w * factor))
    peak = 255 if isinstance(source, _Array) else _peak(source)
    for top in range(0, out_h * factor, rows):
        bottom = min(top + rows, out_h * factor)
        if isinstance(source, _Array):
            rgb = _array_rgb8(source, source.pixels[top:bottom, : out_w * factor])
            strip = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY if grey else cv2.COLOR_RGB2BGR)
        elif grey and source.mode == "L":  # intake's JPEG, decoded straight to luminance
            strip = np.asarray(source.crop((0, top, out_w * factor, bottom)))
        else:
            rgb = _rgb8(source.crop((0, top, out_w * factor, bottom)), peak)
            if factor == 1 and not grey:
                cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR, dst=out[top:bottom])  # straight into place
                continue
            strip = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY if grey else cv2.COLOR_RGB2BGR)
        if factor > 1:
            strip = cv2.resize(strip, (out_w, (bottom - top) // factor), interpolation=cv2.INTER_AREA)
        out[top // factor : bottom // factor] = strip
    return out


# Modes Pillow's reduce() takes (not palette, 1-bit or 16-bit ones).
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I", "F"})


def _peak(pil: Image.Image) -> int:
    """The value that maps to white: 16-bit modes span 65535; 32-bit integer ones as they are used."""
    if pil.mode.startswith("I;16"):
        return 65535
    if pil.mode == "I":
        extrema = pil.getextrema()
        high = extrema[1] if isinstance(extrema, tuple) else 255
        return 65535 if int(high) > 255 else 255  # type: ignore[arg-type]
    return 255


def _rgb8(pil: Image.Image, peak: int) -> np.ndarray:
    """One strip, any accepted mode, as 8-bit RGB."""
    if pil.mode.startswith("I") or pil.mode == "F":
        values = np.asarray(pil)
        if pil.mode == "F":
            values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0).astype(np.int64)
        values = np.clip(values.astype(np.int64), 0, peak)
        grey = ((values * 255 + peak // 2) // peak).astype(np.uint8)
        return cv2.cvtColor(np.ascontiguousarray(grey), cv2.COLOR_GRAY2RGB)
    if _has_alpha(pil):
        return _on_white(np.asarray(pil.convert("RGBA")))
    return np.asarray(pil if pil.mode == "RGB" else pil.convert("RGB"), dtype=np.uint8)


def _array_rgb8(source: _Array, strip: np.ndarray) -> np.ndarray:
    """A strip of a decoder's array as 8-bit RGB, transparency flattened onto white."""
    strip = _on_white(strip) if strip.shape[2] == 4 else np.ascontiguousarray(strip)
    return cv2.cvtColor(strip, cv2.COLOR_BGR2RGB) if source.order == "BGR" else strip


def _on_white(strip: np.ndarray) -> np.ndarray:
    """Three colour channels and alpha, flattened onto white (not black: black would read as a dark
    photo), in integer arithmetic; the channels keep their order."""
    alpha = strip[:, :, 3:4].astype(np.uint16)
    colour = strip[:, :, :3].astype(np.uint16)
    return ((colour * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def _turned(image: np.ndarray, orientation: int | None) -> np.ndarray:
    """The image as the camera was held (EXIF orientation 2-8), as numpy views made contiguous once."""
    views = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    view = views.get(orientation or 1)
    return image if view is None else np.ascontiguousarray(view(image))


@functools.cache
def _decode_gate(slots: int) -> threading.BoundedSemaphore:
    """How many photos this process decodes at once; the rest wait (their memory not yet taken)."""
    return threading.BoundedSemaphore(max(1, slots))


# Decodes of more pixels than this hand the memory they freed back to the system (a fraction of a
# millisecond): each thread allocates from its own malloc arena, which would otherwise keep a large
# decode's worth of memory per thread. Intake's reduced JPEG decodes stay under it.
_TRIM_PIXELS = 2_000_000


@contextmanager
def _trimmed(pixels: int) -> Iterator[None]:
    try:
        yield
    finally:
        if pixels > _TRIM_PIXELS:
            _trim()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None  # another C library: nothing to trim


def _trim() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _has_alpha(pil: Image.Image) -> bool:
    return pil.mode in ("RGBA", "LA", "PA") or (pil.mode == "P" and "transparency" in pil.info)


_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME_ORIGINAL = 0x9011
_DATETIME = 0x0132


def _orientation(pil: Image.Image) -> int | None:
    try:
        return pil.getexif().get(_ORIENTATION)
    except Exception:  # unreadable EXIF: the photo is kept as stored
        return None


def _header_orientation(pil: Image.Image) -> int | None:
    """The EXIF orientation the header carries, without decoding (Pillow's ``getexif`` decodes a
    whole PNG to look for EXIF after its pixels)."""
    raw = pil.info.get("exif")
    if not isinstance(raw, bytes):
        return None
    try:
        exif = Image.Exif()
        exif.load(raw)
        return exif.get(_ORIENTATION)
    except Exception:  # unreadable EXIF: shown as stored
        return None


def _exif_capture_time(pil: Image.Image) -> datetime | None:
    """DateTimeOriginal, with its offset when the camera wrote one; naive (camera-local) otherwise."""
    try:
        exif = pil.getexif()
    except Exception:
        return None
    ifd = exif.get_ifd(_EXIF_IFD) if exif else {}
    raw = ifd.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME) if exif else None
    if not isinstance(raw, str):
        return None
    try:
        when = datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = ifd.get(_OFFSET_TIME_ORIGINAL)
    if isinstance(offset, str) and len(offset) >= 6 and offset[0] in "+-":
        try:
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            delta = timedelta(hours=hours, minutes=minutes)
            when = when.replace(tzinfo=timezone(delta if offset[0] == "+" else -delta))
        except ValueError:
            pass
    return when


_GPS_IFD = 0x8825
_SOFTWARE = 0x0131
_MAKE = 0x010F
_MODEL = 0x0110
_GPS_LATITUDE_REF, _GPS_LATITUDE, _GPS_LONGITUDE_REF, _GPS_LONGITUDE = 1, 2, 3, 4
_GPS_TIMESTAMP, _GPS_DATESTAMP = 7, 29


def exif_facts(pil: Image.Image) -> ExifFacts:
    """Position, Software and camera make/model from EXIF; never raises (unreadable is unknown)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns of corrupt EXIF, and reads what it can
        try:
            exif = pil.getexif()
        except Exception:
            return ExifFacts()
        if not exif:
            return ExifFacts()
        try:
            gps = exif.get_ifd(_GPS_IFD)
        except Exception:
            gps = {}
    # IFD0 points at a GPS block that holds nothing readable: there, but unknown.
    malformed = _GPS_IFD in exif and not gps
    latitude = longitude = None
    gps_time = None
    if gps:
        latitude = _degrees(gps.get(_GPS_LATITUDE), gps.get(_GPS_LATITUDE_REF), "NS", 90)
        longitude = _degrees(gps.get(_GPS_LONGITUDE), gps.get(_GPS_LONGITUDE_REF), "EW", 180)
        if latitude is None or longitude is None:
            # A GPS block without a readable position: malformed, unless it holds none at all.
            malformed = malformed or any(k in gps for k in (_GPS_LATITUDE, _GPS_LONGITUDE))
            latitude = longitude = None
        else:
            gps_time = _gps_time(gps.get(_GPS_DATESTAMP), gps.get(_GPS_TIMESTAMP))
    return ExifFacts(
        latitude=latitude,
        longitude=longitude,
        gps_time=gps_time,
        gps_malformed=malformed,
        software=_exif_text(exif.get(_SOFTWARE)),
        camera_make=_exif_text(exif.get(_MAKE)),
        camera_model=_exif_text(exif.get(_MODEL)),
    )


def _exif_text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    if not value.isascii():
        # EXIF text is ASCII by the standard; Chinese apps write UTF-8, which Pillow reads as Latin-1.
        try:
            value = value.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
    # Control characters (a NUL pad, a stray byte) never reach a row or a page.
    text = "".join(c for c in value if c.isprintable()).strip()
    return text[:_EXIF_TEXT_MAX] or None


def _degrees(value: object, ref: object, hemispheres: str, limit: float) -> float | None:
    """Degrees, minutes, seconds (three rationals) and N/S or E/W, as signed decimal degrees."""
    if not isinstance(value, tuple | list):
        return None
    try:
        parts = [float(part) for part in value]
    except Exception:
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    hemisphere = ref.strip("\x00 ").upper() if isinstance(ref, str) else ""
    if len(parts) != 3 or hemisphere not in tuple(hemispheres):
        return None
    degrees, minutes, seconds = parts
    if not all(0 <= p < 1e6 for p in parts) or minutes > 60 or seconds > 60:
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if decimal > limit:
        return None
    return -decimal if hemisphere == hemispheres[1] else decimal


def _gps_time(date: object, time: object) -> datetime | None:
    """The fix's time (GPS date stamp and time stamp are UTC), or None."""
    try:
        day = datetime.strptime(str(date).strip().rstrip("\x00"), "%Y:%m:%d")
        h, m, s = (float(part) for part in time)  # type: ignore[attr-defined]
        return day.replace(tzinfo=timezone.utc) + timedelta(hours=h, minutes=m, seconds=s)
    except Exception:
        return None


# Perceptual hashes are taken from the photo shrunk to fit this many pixels a side, whatever its size,
# so that a full decode (CLI) and intake's reduced JPEG decode hash a photo alike.
PHASH_SIDE = 256


def perceptual_hash(image: np.ndarray) -> str:
    """64-bit DCT perceptual hash as 16 hex digits: survives re-encoding and resizing."""
    return _perceptual_hash_rgb(image[:, :, ::-1])


def _perceptual_hash_rgb(rgb: np.ndarray) -> str:
    """``perceptual_hash`` of an RGB (not BGR) or grey image: the hash is taken from luminance, so
    the channels' order does not matter, and a JPEG's own Y channel hashes as its RGB does."""
    h, w = rgb.shape[:2]
    scale = PHASH_SIDE / max(h, w)
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return str(imagehash.phash(Image.fromarray(np.ascontiguousarray(rgb)), hash_size=8))


def hash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def measure_quality(image: np.ndarray) -> Quality:
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    # Blur is measured at a fixed scale so that big photos are not favoured over small ones.
    scale = 640.0 / max(h, w)
    if scale < 1.0:
        grey_small = cv2.resize(grey, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    else:
        grey_small = grey
    blur = float(cv2.Laplacian(grey_small, cv2.CV_64F).var())
    return Quality(blur=round(blur, 2), brightness=round(float(grey.mean()), 2), width=w, height=h)
