"""Every way a photo can be bad is refused with a clear reason; odd-but-valid photos are judged."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from compliance.photos import (
    PhotoRejected,
    hash_distance,
    load_photo,
    measure_quality,
    perceptual_hash,
    read_photo_file,
    receive_photo,
)

LIMITS = dict(max_bytes=20 * 1024 * 1024, max_pixels=50_000_000)
Loader = Callable[..., Any]
# Both ways in refuse bad photos alike: the full decode (pipelines, CLI) and intake's (upload API).
LOADERS = pytest.mark.parametrize("load", [load_photo, receive_photo], ids=["load_photo", "receive_photo"])


def _jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming a huge size: a decompression bomb in a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture()
def scene_bytes(dev_dir: Path) -> bytes:
    return (dev_dir / "plates" / "ccpd_demo_0.jpg").read_bytes()


def test_real_photo_loads_as_bgr(scene_bytes: bytes) -> None:
    photo = load_photo(scene_bytes, **LIMITS)
    assert photo.image.dtype == np.uint8 and photo.image.shape == (1160, 720, 3)
    assert photo.format == "JPEG" and len(photo.sha256) == 64


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PhotoRejected, match="no such file") as exc:
        read_photo_file(tmp_path / "nope.jpg", **LIMITS)
    assert exc.value.code == "not_found"


@LOADERS
@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"%PDF-1.4 this is not an image at all" * 10, "not_an_image"),
        (b"GIF89a" + b"\x00" * 100, "corrupt"),
    ],
)
def test_non_images_are_refused(data: bytes, code: str, load: Loader) -> None:
    with pytest.raises(PhotoRejected) as exc:
        load(data, **LIMITS)
    assert exc.value.code in {code, "not_an_image", "corrupt", "unsupported_format"}
    assert "\n" not in str(exc.value)


@LOADERS
def test_truncated_jpeg_is_refused(scene_bytes: bytes, load: Loader) -> None:
    with pytest.raises(PhotoRejected) as exc:
        load(scene_bytes[: len(scene_bytes) // 2], **LIMITS)
    assert exc.value.code == "corrupt"


@LOADERS
def test_decompression_bomb_is_refused_before_decoding(load: Loader) -> None:
    bomb = _png_header_only(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(PhotoRejected) as exc:
        load(bomb, **LIMITS)
    assert exc.value.code == "too_many_pixels"


@LOADERS
def test_oversized_upload_is_refused(scene_bytes: bytes, load: Loader) -> None:
    with pytest.raises(PhotoRejected) as exc:
        load(scene_bytes, max_bytes=1000, max_pixels=LIMITS["max_pixels"])
    assert exc.value.code == "too_large"


def test_cmyk_jpeg_is_judged_as_rgb(dev_dir: Path) -> None:
    rgb = Image.open(dev_dir / "plates" / "ccpd_demo_0.jpg").convert("RGB")
    photo = load_photo(_jpeg(rgb.convert("CMYK")), **LIMITS)
    assert photo.image.shape == (rgb.height, rgb.width, 3)
    # Colours survive the conversion (JPEG loss aside).
    reference = np.asarray(rgb, dtype=np.float32)[..., ::-1]
    assert np.abs(photo.image.astype(np.float32) - reference).mean() < 20


def test_16_bit_png_is_scaled_not_clipped() -> None:
    ramp = (np.linspace(0, 65535, 256 * 64).reshape(64, 256)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, "PNG")
    photo = load_photo(buf.getvalue(), **LIMITS)
    grey = photo.image[..., 0]
    assert grey.min() == 0 and grey.max() == 255
    assert len(np.unique(grey)) > 200  # a ramp, not a white sheet


def test_exif_capture_time_with_offset_is_read() -> None:
    img = Image.new("RGB", (64, 64), (120, 120, 120))
    exif = Image.Exif()
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2026:11:20 08:30:00"
    ifd[0x9011] = "+08:00"
    photo = load_photo(_jpeg(img, exif=exif), **LIMITS)
    assert photo.capture_time == datetime(2026, 11, 20, 8, 30, tzinfo=timezone(timedelta(hours=8)))


def test_photo_without_exif_has_no_capture_time(scene_bytes: bytes) -> None:
    assert load_photo(scene_bytes, **LIMITS).capture_time is None


def test_perceptual_hash_survives_reencoding_and_differs_between_photos(dev_dir: Path) -> None:
    a = load_photo((dev_dir / "plates" / "ccpd_demo_0.jpg").read_bytes(), **LIMITS)
    smaller = Image.open(io.BytesIO(a.data)).resize((360, 580))
    a2 = load_photo(_jpeg(smaller, quality=60), **LIMITS)
    b = load_photo((dev_dir / "scenes" / "yolov5_bus.jpg").read_bytes(), **LIMITS)
    assert hash_distance(perceptual_hash(a.image), perceptual_hash(a2.image)) <= 4
    assert hash_distance(perceptual_hash(a.image), perceptual_hash(b.image)) > 16


def test_quality_separates_sharp_from_blurred_and_dark(scene_bytes: bytes) -> None:
    import cv2

    photo = load_photo(scene_bytes, **LIMITS)
    sharp = measure_quality(photo.image)
    blurred = measure_quality(cv2.GaussianBlur(photo.image, (0, 0), 6))
    dark = measure_quality((photo.image * 0.15).astype(np.uint8))
    assert blurred.blur is not None and sharp.blur is not None and blurred.blur < sharp.blur / 10
    assert dark.brightness is not None and sharp.brightness is not None and dark.brightness < sharp.brightness / 4
    assert (sharp.width, sharp.height) == (720, 1160)


def _rotated_jpeg(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2026:11:20 08:30:00"
    return _jpeg(img, exif=exif.tobytes(), quality=92)


def test_intake_keeps_what_a_full_decode_would(dev_dir: Path) -> None:
    """Intake decodes a JPEG at a reduced scale; size, capture time and digest are the full decode's,
    and the perceptual hash stays within a bit or two, far below the duplicate threshold (6)."""
    scene = Image.open(dev_dir / "scenes" / sorted(p.name for p in (dev_dir / "scenes").glob("*.jpg"))[0])
    cases = [(dev_dir / "plates" / "ccpd_demo_0.jpg").read_bytes(), _rotated_jpeg(scene.convert("RGB"), 6)]
    cases += [_jpeg(scene.convert("CMYK")), (dev_dir / "plates" / "ccpd_demo_3.jpg").read_bytes()]
    cases += [p.read_bytes() for p in sorted((dev_dir / "scenes").glob("*.jpg"))[:6]]
    for data in cases:
        full, received = load_photo(data, **LIMITS), receive_photo(data, **LIMITS)
        assert (received.width, received.height) == (full.width, full.height)
        assert (received.sha256, received.format, received.capture_time) == (
            full.sha256,
            full.format,
            full.capture_time,
        )
        assert hash_distance(received.phash, full.phash) <= 2
    turned = receive_photo(cases[1], **LIMITS)
    assert (turned.width, turned.height) == (scene.height, scene.width)
    assert turned.capture_time == datetime(2026, 11, 20, 8, 30)
