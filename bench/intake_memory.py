"""Peak memory and CPU of one photo, per format and size, where the product decodes it: at intake
(what the upload API runs to accept or refuse it), in a worker (the full decode the pipelines
read) and on the dashboard (the rendition a reviewer's browser is sent).

    PYTHONPATH=. .venv/bin/python bench/intake_memory.py [--stages intake worker dashboard] [--only png]

Each measurement is a fresh process: it imports what the real process imports, decodes a small
photo of the same format once (codecs load lazily), then reads the file and runs the one call;
"peak MiB" is how far that call raised the process's peak resident memory above what was resident
before it (Linux: the peak is reset through ``/proc/self/clear_refs``, read as ``VmHWM``), and
"CPU s" the user + system CPU it took. The photos are made once, in ``--cases`` (a temporary
folder by default): smooth content, so that even the largest stay under the upload size limit, as
an attacker's would; sizes just under, at and just over the pixel limit, and a phone's 12 MP.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

MIB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    kind: str  # how the file is made: see make()
    size: str  # "12MP", "limit", "over"
    width: int
    height: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.size}"


KINDS = [
    "jpeg-rgb",
    "jpeg-progressive-444",
    "jpeg-progressive-420",
    "jpeg-cmyk",
    "jpeg-grey",
    "mpo",
    "png-rgb8",
    "png-grey16",
    "png-rgba16",
    "png-palette",
    "png-interlaced",
    "webp-lossless",
    "webp-lossy",
    "bmp-pal8",
    "bmp-rle8",
    "tiff-deflate-rgb",
    "tiff-grey16",
    "heif",  # made with heif-enc (Debian libheif-examples): pi_heif decodes only
]


def sizes(limit: int) -> dict[str, tuple[int, int]]:
    width = 10_000
    return {
        "12MP": (4032, 3024),
        "under": (width, limit // width - 1),
        "limit": (width, limit // width),
        "over": (width, limit // width + 1),
    }


def _smooth(width: int, height: int, channels: int, dtype: type = np.uint8) -> np.ndarray:
    """A gradient with a few blocks: compresses to little in every format, as a bomb would."""
    top = 65535 if dtype == np.uint16 else 255
    x = (np.arange(width, dtype=np.uint32) * top // max(1, width - 1)).astype(dtype)
    row = np.broadcast_to(x, (height, width))
    image = np.empty((height, width, channels), dtype=dtype)
    for c in range(channels):
        image[:, :, c] = row if c % 2 == 0 else row[:, ::-1]
    image[height // 4 : height // 2, width // 4 : width // 2] = top // 3
    return image[:, :, 0] if channels == 1 else image


def _rle8_bmp(width: int, height: int) -> bytes:
    """An 8-bit run-length-encoded BMP: a few hundred KiB that claim ``width`` x ``height`` pixels."""
    row = bytearray()
    left = width
    while left:
        run = min(255, left)
        row += bytes((run, (left // 255) % 256))
        left -= run
    row += b"\x00\x00"  # end of line
    pixels = bytes(row) * height + b"\x00\x01"  # end of bitmap
    palette = b"".join(bytes((i, 255 - i, i // 2, 0)) for i in range(256))
    header_size = 14 + 40 + len(palette)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    file_header = struct.pack("<2sIHHI", b"BM", header_size + len(pixels), 0, 0, header_size)
    return file_header + info + palette + pixels


def make(case: Case) -> bytes:
    w, h, kind = case.width, case.height, case.kind
    out = io.BytesIO()
    if kind == "bmp-rle8":
        return _rle8_bmp(w, h)
    if kind in ("png-grey16", "tiff-grey16"):
        pil = Image.fromarray(_smooth(w, h, 1, np.uint16))
    elif kind == "png-rgba16":
        # Pillow cannot write 16-bit RGBA; OpenCV can.
        ok, encoded = __import__("cv2").imencode(".png", _smooth(w, h, 4, np.uint16))
        assert ok
        return encoded.tobytes()
    elif kind in ("jpeg-grey",):
        pil = Image.fromarray(_smooth(w, h, 1))
    elif kind == "jpeg-cmyk":
        pil = Image.fromarray(_smooth(w, h, 4), "CMYK")
    elif kind in ("png-palette", "bmp-pal8"):
        pil = Image.fromarray(_smooth(w, h, 1)).convert("P")
    else:
        pil = Image.fromarray(_smooth(w, h, 3))
    if kind.startswith("jpeg"):
        progressive = "progressive" in kind
        pil.save(out, "JPEG", quality=90, progressive=progressive, subsampling=0 if "444" in kind else 2)
    elif kind == "mpo":
        second = pil.resize((w // 4, h // 4))
        pil.save(out, "MPO", save_all=True, append_images=[second], quality=90)
    elif kind.startswith("png"):
        pil.save(out, "PNG", interlace="interlaced" in kind, compress_level=9)
    elif kind == "webp-lossless":
        pil.save(out, "WEBP", lossless=True, quality=100, method=0)
    elif kind == "webp-lossy":
        pil.save(out, "WEBP", quality=80, method=0)
    elif kind.startswith("bmp"):
        pil.save(out, "BMP")
    elif kind.startswith("tiff"):
        pil.save(out, "TIFF", compression="tiff_adobe_deflate")
    elif kind == "heif":
        with tempfile.TemporaryDirectory() as folder:
            png, heic = Path(folder) / "in.png", Path(folder) / "out.heic"
            pil.save(png)
            subprocess.run(["heif-enc", "-q", "50", "-o", str(heic), str(png)], check=True, capture_output=True)
            return heic.read_bytes()
    else:
        raise ValueError(kind)
    return out.getvalue()


def cases(limit: int, kinds: list[str]) -> list[Case]:
    return [Case(kind, size, w, h) for kind in kinds for size, (w, h) in sizes(limit).items()]


def ensure(case: Case, folder: Path) -> Path:
    path = folder / f"{case.name}.bin"
    if not path.exists():
        data = make(case)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


# --- the measured process ---------------------------------------------------------------------


def _stage(name: str):  # type: ignore[no-untyped-def]
    """The call each stage makes, as the product makes it, with the deployment's default settings."""
    from compliance.settings import Settings

    settings = Settings()
    limits = settings.photo_limits
    if name == "intake":
        from compliance.photos import receive_photo

        return lambda data: receive_photo(data, **limits)
    if name == "worker":
        from compliance.photos import load_photo

        return lambda data: load_photo(data, **limits)
    if name == "dashboard":
        from compliance import photos

        if hasattr(photos, "rendition"):
            return lambda data: photos.rendition(data, **limits)
        from compliance.dashboard.submissions import _image_response  # the code before renditions

        return _image_response
    raise ValueError(name)


def child(path: Path, stage: str, warmup: Path) -> dict[str, object]:
    import gc
    import resource

    from compliance.photos import PhotoRejected

    call = _stage(stage)
    try:
        call(warmup.read_bytes())
    except PhotoRejected:
        pass
    gc.collect()
    # The peak so far may be a passing one of the imports: start it again from what is resident now.
    Path("/proc/self/clear_refs").write_text("5")
    resident = _status_kib("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    outcome = "accepted"
    try:
        call(path.read_bytes())
    except PhotoRejected as exc:
        outcome = f"refused: {exc.code}"
    except Exception as exc:  # what the bench exists to find
        outcome = f"ERROR {type(exc).__name__}: {exc}"[:120]
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "outcome": outcome,
        "peak_mib": max(0, _status_kib("VmHWM") - resident) / 1024,
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    }


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def measure(path: Path, stage: str, warmup: Path) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--stage", stage, "--warmup", str(warmup)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    if run.returncode != 0:
        return {
            "outcome": f"CRASH rc={run.returncode} {run.stderr.strip()[-100:]}",
            "peak_mib": float("nan"),
            "cpu_s": 0.0,
        }
    return json.loads(run.stdout.strip().splitlines()[-1])


def _cells(row: dict[str, object], stages: list[str]) -> list[str]:
    cells = [str(row["case"]), str(row["pixels"]), str(row["KiB"])]
    for stage in stages:
        result = row[stage]
        assert isinstance(result, dict)
        cells += [str(result["outcome"]), f"{result['peak_mib']:.0f}", f"{result['cpu_s']:.2f}"]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", nargs="+", default=["intake", "worker", "dashboard"])
    parser.add_argument("--only", nargs="*", default=[], help="kinds whose name contains one of these")
    parser.add_argument("--sizes", nargs="+", default=["12MP", "under", "limit", "over"])
    parser.add_argument("--cases", type=Path, default=Path(tempfile.gettempdir()) / "compliance-intake-cases")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.stage, args.warmup)))
        return

    from rich.console import Console
    from rich.table import Table

    from compliance.settings import Settings

    settings = Settings()
    kinds = [k for k in KINDS if not args.only or any(o in k for o in args.only)]
    args.cases.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in cases(settings.max_image_pixels, kinds):
        if case.size not in args.sizes:
            continue
        path = ensure(case, args.cases)
        warmup = ensure(Case(case.kind, "tiny", 64, 48), args.cases)
        row: dict[str, object] = {
            "case": case.name,
            "pixels": f"{case.width}x{case.height}",
            "KiB": path.stat().st_size // 1024,
        }
        for stage in args.stages:
            result = measure(path, stage, warmup)
            row[stage] = result
        rows.append(row)
        if not (args.json or args.markdown):
            print(row, file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    if args.markdown:
        print("| photo | size | KiB | " + " | ".join(f"{s} outcome | {s} MiB | {s} CPU s" for s in args.stages) + " |")
        print("|---|---|---:|" + "---|---:|---:|" * len(args.stages))
        for row in rows:
            print("| " + " | ".join(_cells(row, args.stages)) + " |")
        return
    table = Table(
        title=f"peak memory (MiB) and CPU (s) per photo; limits {settings.max_image_pixels:,} px, "
        f"{settings.max_upload_bytes // MIB} MiB"
    )
    for column in ("photo", "size", "KiB"):
        table.add_column(column)
    for stage in args.stages:
        table.add_column(f"{stage} outcome")
        table.add_column(f"{stage} MiB", justify="right")
        table.add_column(f"{stage} CPU s", justify="right")
    for row in rows:
        table.add_row(*_cells(row, args.stages))
    Console(width=250).print(table)


if __name__ == "__main__":
    main()
