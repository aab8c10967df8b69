"""Where photos enter: validation, decoding to BGR, quality, perceptual hash and EXIF capture time.

Every way in (CLI, API, batch audit) goes through ``load_photo``; a photo it rejects raises
``PhotoRejected`` with a one-line reason, and nothing downstream ever sees undecodable input.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import imagehash
import numpy as np
from pi_heif import register_heif_opener
from PIL import Image, ImageOps, UnidentifiedImageError

from compliance.judgments import Quality

# Phones save HEIC by default.
register_heif_opener()

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "TIFF", "MPO", "HEIF"})


class PhotoRejected(ValueError):
    """A photo that cannot be judged. ``code`` is stable for APIs; ``str()`` is one line for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    sha256: str
    image: np.ndarray  # HxWx3 uint8 BGR, EXIF orientation applied
    format: str
    capture_time: datetime | None

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def phash(self) -> str:
        return perceptual_hash(self.image)


def read_photo_file(path: Path, *, max_bytes: int, max_pixels: int) -> Photo:
    if not path.exists():
        raise PhotoRejected("not_found", f"{path}: no such file")
    if not path.is_file():
        raise PhotoRejected("not_a_file", f"{path}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise PhotoRejected("too_large", f"{path}: {size} bytes is over the {max_bytes}-byte limit")
    try:
        return load_photo(path.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)
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


def load_photo(data: bytes, *, max_bytes: int, max_pixels: int) -> Photo:
    """Validate and decode a photo at full resolution, for the pipelines."""
    pil, fmt, capture_time, _ = _decoded(data, max_bytes=max_bytes, max_pixels=max_pixels, smallest_side=None)
    bgr = cv2.cvtColor(_to_rgb8(pil), cv2.COLOR_RGB2BGR)
    return Photo(data=data, sha256=hashlib.sha256(data).hexdigest(), image=bgr, format=fmt, capture_time=capture_time)


def receive_photo(data: bytes, *, max_bytes: int, max_pixels: int) -> ReceivedPhoto:
    """Validate a photo as ``load_photo`` does, for intake. Every byte is still decoded (a truncated
    or corrupt file is refused alike), but a JPEG is decoded at a reduced scale: the upload API
    accepts photos at a fraction of the cost, and the workers decode them in full later."""
    pil, fmt, capture_time, (width, height) = _decoded(
        data, max_bytes=max_bytes, max_pixels=max_pixels, smallest_side=PHASH_SIDE
    )
    # Hashed from luminance: the same pixels perceptual_hash sees after its own conversion to grey.
    preview = np.asarray(pil) if pil.mode == "L" else _hash_preview(pil)
    return ReceivedPhoto(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        format=fmt,
        width=width,
        height=height,
        capture_time=capture_time,
        phash=_perceptual_hash_rgb(preview),
    )


def _decoded(
    data: bytes, *, max_bytes: int, max_pixels: int, smallest_side: int | None
) -> tuple[Image.Image, str, datetime | None, tuple[int, int]]:
    """The checks every way in shares, then the decoded image with EXIF orientation applied, its
    format, capture time and full-resolution size (as turned). With ``smallest_side`` a JPEG is
    decoded at the largest reduction whose sides stay at least that long."""
    if not data:
        raise PhotoRejected("empty", "the file is empty")
    if len(data) > max_bytes:
        raise PhotoRejected("too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit")
    try:
        with warnings.catch_warnings():
            # The header alone gives the size: refuse bombs before any pixel is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pil = Image.open(io.BytesIO(data))
            fmt = pil.format or "unknown"
            if fmt not in ACCEPTED_FORMATS:
                raise PhotoRejected("unsupported_format", f"{fmt} images are not accepted")
            w, h = pil.size
            if w * h > max_pixels:
                raise PhotoRejected(
                    "too_many_pixels", f"{w}x{h} is over the {max_pixels}-pixel limit (decompression bomb?)"
                )
            if w < 16 or h < 16:
                raise PhotoRejected("too_small", f"{w}x{h} is too small to judge")
            if smallest_side is not None and fmt in ("JPEG", "MPO"):
                # Intake hashes luminance only: a colour JPEG decodes straight to its Y channel
                # (every byte still entropy-decoded), skipping chroma upsampling and colour conversion.
                pil.draft("L" if pil.mode in ("RGB", "L") else pil.mode, (smallest_side, smallest_side))
            pil.load()
            capture_time = _exif_capture_time(pil)
            orientation = _orientation(pil)
            turned = orientation in (5, 6, 7, 8)
            if orientation not in (None, 1):  # exif_transpose would only copy the pixels
                pil = ImageOps.exif_transpose(pil)
    except PhotoRejected:
        raise
    except UnidentifiedImageError:
        raise PhotoRejected("not_an_image", "not an image (or a format that cannot be read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected("too_many_pixels", "decompression bomb: too many pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # Pillow reports truncated and corrupt data as OSError/SyntaxError with its own wording.
        raise PhotoRejected("corrupt", f"the image data is truncated or corrupt ({exc})") from None
    return pil, fmt, capture_time, ((h, w) if turned else (w, h))


def _to_rgb8(pil: Image.Image) -> np.ndarray:
    """Any accepted mode (CMYK, 16-bit, palette, alpha, grey) to 8-bit RGB."""
    if pil.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(pil, dtype=np.float64)
        peak = 65535.0 if pil.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        grey = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if pil.mode == "F":
        arr = np.asarray(pil, dtype=np.float64)
        grey = np.clip(arr, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([grey] * 3, axis=-1))
    if _has_alpha(pil):
        # Flatten transparency onto white rather than black: black would read as "dark photo".
        rgba = pil.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        pil = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(pil.convert("RGB"), dtype=np.uint8))


def _hash_preview(pil: Image.Image) -> np.ndarray:
    """``_to_rgb8``, but a photo with transparency is flattened onto white after it is shrunk to the
    hash's size, not before: premultiplied colour and alpha shrink by area averaging, which is linear,
    so the small image is the shrunk flat one (to rounding) at a fraction of the cost."""
    if not _has_alpha(pil):
        return _to_rgb8(pil)
    rgba = np.asarray(pil.convert("RGBA"))
    h, w = rgba.shape[:2]
    scale = PHASH_SIDE / max(h, w)
    alpha = np.ascontiguousarray(rgba[:, :, 3])
    premultiplied = cv2.multiply(np.ascontiguousarray(rgba[:, :, :3]), cv2.merge([alpha] * 3), scale=1 / 255)
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        premultiplied = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return cv2.add(premultiplied, cv2.merge([255 - alpha] * 3))


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
