"""Reading a labelled manifest (the format of ``shared/eval/dev/manifest.csv``) into typed rows."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path


class ManifestError(ValueError):
    """A manifest or pairs file that cannot be read; one line for people."""


REQUIRED_COLUMNS = ("file", "kind", "plate_text", "plate_color", "person_count", "vehicle_class")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    path: Path
    file: str
    kind: str
    plate_text: str | None  # None where unlabelled or illegible ("?")
    plate_color: str | None  # first word: blue, yellow, green, white, black
    person_present: bool | None
    vehicle_present: bool | None
    identity: str | None = None  # the person's identity for faces; ';' between several

    @property
    def province(self) -> str | None:
        return self.plate_text[0] if self.plate_text else None


@dataclass(frozen=True, slots=True)
class FacePair:
    a: Path
    b: Path
    same: bool


_LEADING_NUMBER = re.compile(r"^\s*[≈~]?\s*(\d+)")


def _person_present(cell: str) -> bool | None:
    match = _LEADING_NUMBER.match(cell)
    return None if match is None else int(match.group(1)) > 0


def _vehicle_present(cell: str) -> bool | None:
    cell = cell.strip().lower()
    if not cell:
        return None
    return not cell.startswith("none")


def read_manifest(path: Path) -> list[ManifestRow]:
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    try:
        return _read_manifest(path)
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None


def _read_manifest(path: Path) -> list[ManifestRow]:
    base = path.parent
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing columns {', '.join(missing)}")
        rows = []
        for record in reader:
            text = (record["plate_text"] or "").strip()
            color = (record["plate_color"] or "").strip().split(" ")[0].lower() or None
            rows.append(
                ManifestRow(
                    path=base / record["file"],
                    file=record["file"],
                    kind=record["kind"].strip(),
                    plate_text=text if text and "?" not in text else None,
                    plate_color=color if text and "?" not in text else None,
                    person_present=_person_present(record["person_count"] or ""),
                    vehicle_present=_vehicle_present(record["vehicle_class"] or ""),
                    identity=(record.get("identity") or "").strip() or None,
                )
            )
    return rows


def read_face_pairs(path: Path) -> list[FacePair]:
    if not path.is_file():
        raise ManifestError(f"{path}: no such face-pairs file")
    base = path.parent
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("file_a", "file_b", "same") if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing columns {', '.join(missing)}")
        return [FacePair(base / r["file_a"], base / r["file_b"], r["same"].strip() == "1") for r in reader]


def has_columns(path: Path, columns: tuple[str, ...]) -> bool:
    """Whether the CSV at ``path`` has every one of ``columns`` in its header: how the kinds of
    manifest (labelled, submissions, spoof) are told apart."""
    try:
        with path.open("rb") as fh:
            first = fh.readline(64 * 1024).decode("utf-8-sig", errors="replace")
        header = next(csv.reader([first]), [])
    except (OSError, csv.Error):
        return False
    return all(c in header for c in columns)
