"""Decoding a photo has a bounded cost, however it is crafted: at intake, in a worker and on the
dashboard, no photo raises a process's peak memory by more than 150 MiB. A photo whose decode would
cost more is refused from its header, before any pixel is decoded; a JPEG larger than the pipelines
need is decoded at a reduced scale.

Peak memory is measured in a fresh process (Linux: the peak is reset through /proc/self/clear_refs
and read as VmHWM), as bench/intake_memory.py measures it for every format and size.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from compliance.photos import PhotoRejected, load_photo, receive_photo, rendition
from compliance.settings import Settings

REPO = Path(__file__).resolve().parents[1]
HEIC_12MP = REPO / "tests" / "data" / "phone_12mp.heic"  # made here with heif-enc from a gradient
BOUND_MIB = 150
LIMITS = Settings().photo_limits


def _smooth(width: int, height: int, channels: int, dtype: type = np.uint8) -> np.ndarray:
    """A gradient: a few KiB in any lossless format, however many pixels it claims."""
    top = 65535 if dtype == np.uint16 else 255
    row = (np.arange(width, dtype=np.uint32) * top // (width - 1)).astype(dtype)
    image = (
        np.broadcast_to(row, (height, width))
        if channels == 1
        else np.broadcast_to(row[:, None], (height, width, channels))
    )
    return np.ascontiguousarray(image)


def _encoded(array: np.ndarray, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **options)
    return out.getvalue()


def _mpo(array: np.ndarray) -> bytes:
    first = Image.fromarray(array)
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[first.resize((first.width // 4, first.height // 4))])
    return out.getvalue()


_MEASURE = """
import json, sys
from pathlib import Path
from compliance import photos
from compliance.settings import Settings

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])

stage, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
limits = Settings().photo_limits
call = {"intake": photos.receive_photo, "worker": photos.load_photo, "dashboard": photos.rendition}[stage]
data = Path(path).read_bytes()
try:
    call(data[:64], **limits)
except photos.PhotoRejected:
    pass
Path("/proc/self/clear_refs").write_text("5")
resident = status("VmRSS")
outcomes = []

def run():
    try:
        call(data, **limits)
        outcomes.append("accepted")
    except photos.PhotoRejected as exc:
        outcomes.append(exc.code)

import threading
workers = [threading.Thread(target=run) for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps({"outcomes": outcomes, "peak_mib": (status("VmHWM") - resident) / 1024}))
"""


def _peak(stage: str, data: bytes, tmp_path: Path, *, threads: int = 1, env: dict[str, str] | None = None) -> dict:
    path = tmp_path / "photo.bin"
    path.write_bytes(data)
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, stage, str(path), str(threads)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **(env or {})},
        timeout=300,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


# The attacks: a 16-bit PNG and a lossless WebP of a few KiB that claim 49 MP, under the pixel
# limit (they cost 1.2 GiB and 750 MiB before); and a progressive JPEG at the limit, whose decoder
# holds every coefficient at once (300 MiB), at any scale.
ATTACKS = {
    "png-16-bit-7000x7000": lambda: _encoded(_smooth(7000, 7000, 1, np.uint16), "PNG"),
    "webp-lossless-7000x7000": lambda: _encoded(_smooth(7000, 7000, 3), "WEBP", lossless=True, method=0),
    "jpeg-progressive-444-at-the-limit": lambda: _encoded(
        _smooth(10_000, 5_000, 3), "JPEG", progressive=True, subsampling=0, quality=90
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_photo_too_costly_to_decode_is_refused_from_its_header(attack: str, tmp_path: Path) -> None:
    data = ATTACKS[attack]()
    assert len(data) < 2 * 1024 * 1024  # small files: the size limit does not stop them
    for stage in ("intake", "worker", "dashboard"):
        measured = _peak(stage, data, tmp_path)
        assert measured["outcomes"] == ["too_many_pixels"], (stage, measured)
        assert measured["peak_mib"] < 20, (stage, measured)  # refused before any pixel is decoded
    with pytest.raises(PhotoRejected, match="MiB to decode"):
        receive_photo(data, **LIMITS)


# What drivers' phones send, and the largest JPEG the pixel limit allows: accepted, within the bound.
ACCEPTED = {
    "jpeg-at-the-pixel-limit": lambda: _encoded(_smooth(10_000, 5_000, 3), "JPEG", quality=90),
    "jpeg-just-under-the-pixel-limit": lambda: _encoded(_smooth(10_000, 4_999, 3), "JPEG", quality=90),
    # A phone's MPO: a JPEG followed by more pictures (their scans are not the first picture's).
    "mpo-at-the-pixel-limit": lambda: _mpo(_smooth(10_000, 5_000, 3)),
    "png-12mp": lambda: _encoded(_smooth(4032, 3024, 3), "PNG"),
    "webp-12mp": lambda: _encoded(_smooth(4032, 3024, 3), "WEBP", quality=80, method=0),
    "heic-12mp": HEIC_12MP.read_bytes,
}


@pytest.mark.parametrize("photo", sorted(ACCEPTED))
def test_accepted_photos_decode_within_the_bound_everywhere(photo: str, tmp_path: Path) -> None:
    data = ACCEPTED[photo]()
    for stage in ("intake", "worker", "dashboard"):
        measured = _peak(stage, data, tmp_path)
        assert measured["outcomes"] == ["accepted"], (stage, measured)
        assert measured["peak_mib"] <= BOUND_MIB, (stage, measured)


def test_a_jpeg_larger_than_the_pipelines_need_is_decoded_at_a_reduced_scale() -> None:
    data = ACCEPTED["jpeg-at-the-pixel-limit"]()
    photo = load_photo(data, **LIMITS)
    assert photo.image.shape == (2500, 5000, 3)  # 1/2: at most working_pixels (16 MP)
    received = receive_photo(data, **LIMITS)
    assert (received.width, received.height) == (10_000, 5_000)  # the photo's own size is recorded
    shown, kind = rendition(_encoded(_smooth(4032, 3024, 3), "TIFF", compression="tiff_adobe_deflate"), **LIMITS)
    assert kind == "jpeg" and 1024 <= max(Image.open(io.BytesIO(shown)).size) <= 2048


def test_decodes_at_once_are_capped(tmp_path: Path) -> None:
    """Four uploads of a 12 MP PNG at once: with two decodes at a time (the default) the peak is about
    two decodes', not four; with one, one's."""
    data = ACCEPTED["png-12mp"]()
    one = _peak("worker", data, tmp_path)["peak_mib"]
    capped = _peak("worker", data, tmp_path, threads=4, env={"COMPLIANCE_CONCURRENT_DECODES": "1"})
    assert capped["outcomes"] == ["accepted"] * 4
    assert capped["peak_mib"] < one * 1.5, (one, capped)
    uncapped = _peak("worker", data, tmp_path, threads=4, env={"COMPLIANCE_CONCURRENT_DECODES": "4"})
    assert uncapped["peak_mib"] > one * 2, (one, uncapped)  # the cap, not luck, kept it down


def _with_repeated_scan(jpeg: bytes, copies: int) -> bytes:
    """The JPEG with one of its scans (the smallest) repeated before the last: every copy makes the
    decoder pass over every block again, for a few bytes each."""
    sos = [i for i in range(len(jpeg) - 1) if jpeg[i] == 0xFF and jpeg[i + 1] == 0xDA]
    ends = [*sos[1:], jpeg.rindex(b"\xff\xd9")]
    smallest = min(zip(sos, ends, strict=True), key=lambda span: span[1] - span[0])
    return jpeg[: sos[-1]] + jpeg[smallest[0] : smallest[1]] * copies + jpeg[sos[-1] :]


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    """50,000 repeats of a scan of a 12 MP photo fit in 1 MiB and cost 10 s of CPU to decode."""
    progressive = _encoded(_smooth(4032, 3024, 3), "JPEG", progressive=True, quality=90)
    assert receive_photo(progressive, **LIMITS).width == 4032  # its own ten scans are fine
    bomb = _with_repeated_scan(progressive, 5000)
    for decode in (receive_photo, load_photo, rendition):
        with pytest.raises(PhotoRejected) as refused:
            decode(bomb, **LIMITS)
        assert refused.value.code == "too_complex"


def test_a_png_of_many_text_chunks_is_refused(tmp_path: Path) -> None:
    """Each compressed text chunk may hold 1 MiB once inflated; Pillow keeps up to 64 of them."""
    info = PngImagePlugin.PngInfo()
    for i in range(40):
        info.add_text(f"k{i}", "x" * 1_000_000, zip=True)
    data = _encoded(_smooth(64, 64, 3), "PNG", pnginfo=info)
    assert len(data) < 200_000
    measured = _peak("intake", data, tmp_path)
    assert measured["outcomes"] == ["corrupt"], measured
    assert measured["peak_mib"] < 20, measured
