"""Several pipelines' judgments of one photo as rows of one table, with the rows that differ marked.

Rows a verdict rests on (person and vehicle present, plate text, same person: the fields
compliance.agreement compares, read the same way) are ``decisive``: a difference there is a
disagreement between the pipelines; elsewhere it is a detail (a confidence, a latency).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from compliance.judgments import Judgments


@dataclass(frozen=True, slots=True)
class Row:
    group: str
    label: str
    values: tuple[str, ...]  # one per pipeline, in the order given
    decisive: bool

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1

    @property
    def disagreement(self) -> bool:
        return self.decisive and self.differs


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _text(value: object | None) -> str:
    return "—" if value is None or value == "" else str(getattr(value, "value", value))


# (group, label, read, decisive)
_ROWS: tuple[tuple[str, str, Callable[[Judgments], str], bool], ...] = (
    ("person", "present", lambda j: j.person.present.value, True),
    ("person", "count", lambda j: _text(j.person.count), False),
    ("vehicle", "present", lambda j: j.vehicle.present.value, True),
    ("vehicle", "kind", lambda j: j.vehicle.kind.value, False),
    ("plate", "text", lambda j: j.plate.text or "unread", True),
    ("plate", "colour", lambda j: j.plate.color.value, False),
    ("plate", "rows", lambda j: _text(j.plate.rows), False),
    ("plate", "confidence", lambda j: _number(j.plate.confidence), False),
    ("plate", "known format", lambda j: j.plate.known_format.value, False),
    ("face", "face in scene", lambda j: j.face.scene_face.value, False),
    ("face", "face on licence", lambda j: j.face.licence_face.value, False),
    ("face", "similarity", lambda j: _number(j.face.similarity, 3), False),
    ("face", "same person", lambda j: j.face.same_person.value, True),
    ("face", "活体 live", lambda j: j.face.live.value, False),
    ("face", "live score", lambda j: _number(j.face.live_score), False),
    ("quality", "blur (Laplacian var.)", lambda j: _number(j.quality.blur, 0), False),
    ("quality", "brightness", lambda j: _number(j.quality.brightness, 0), False),
    ("quality", "size", lambda j: f"{j.quality.width}×{j.quality.height}" if j.quality.width else "—", False),
    ("provenance", "time (ms)", lambda j: _number(j.total_ms, 0), False),
    ("provenance", "output errors", lambda j: ", ".join(j.provenance.output_errors) or "none", False),
    ("provenance", "unsure values", lambda j: ", ".join(j.provenance.output_doubts) or "none", False),
)


def judgment_rows(judgments: Sequence[Judgments]) -> list[Row]:
    return [Row(group, label, tuple(read(j) for j in judgments), decisive) for group, label, read, decisive in _ROWS]
