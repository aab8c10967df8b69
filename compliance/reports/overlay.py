"""What to draw over a photo: each pipeline's boxes, as plain shapes in the photo's pixels.

Drawing is kept apart from predicting: pipelines fill ``Judgments``; this turns stored judgments
into shapes, and the dashboard renders them as an SVG layer over the photo (the photo itself is
never redrawn, so the shapes can be toggled per pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from compliance.judgments import Box, Judgments, Point

Category = Literal["person", "vehicle", "plate", "face"]
CATEGORIES: tuple[Category, ...] = ("person", "vehicle", "plate", "face")


@dataclass(frozen=True, slots=True)
class Shape:
    pipeline: str
    category: Category
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    # The plate's four corners where the locator gave them: drawn as a polygon inside the box.
    corners: tuple[Point, ...] | None = None

    @property
    def width(self) -> float:
        return max(0.0, self.x2 - self.x1)

    @property
    def height(self) -> float:
        return max(0.0, self.y2 - self.y1)

    @property
    def polygon(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.corners or ())


def _score(box: Box) -> str:
    return f" {box.score:.2f}" if box.score is not None else ""


def _shape(pipeline: str, category: Category, box: Box, label: str, corners: tuple[Point, ...] | None = None) -> Shape:
    return Shape(pipeline, category, box.x1, box.y1, box.x2, box.y2, label, corners)


def scene_shapes(judgments: Judgments) -> list[Shape]:
    """The boxes one pipeline found in the scene photo: persons, vehicles, the plate, the face."""
    pipeline = judgments.provenance.pipeline
    shapes = [_shape(pipeline, "person", b, f"person{_score(b)}") for b in judgments.person.boxes]
    shapes += [
        _shape(pipeline, "vehicle", b, f"{b.label or judgments.vehicle.kind.value}{_score(b)}")
        for b in judgments.vehicle.boxes
    ]
    # Every plate read (two vehicles in a frame: two boxes), the one the verdict rests on first.
    for plate in dict.fromkeys((judgments.plate, *judgments.plates)):
        if plate.box is not None:
            reading = plate.text or "unread"
            confidence = f" {plate.confidence:.2f}" if plate.confidence is not None else ""
            shapes.append(_shape(pipeline, "plate", plate.box, f"{reading}{confidence}", plate.corners))
    face = judgments.face
    if face.scene_box is not None:
        similarity = f" sim {face.similarity:.2f}" if face.similarity is not None else ""
        shapes.append(_shape(pipeline, "face", face.scene_box, f"face{similarity}"))
    return shapes


def licence_shapes(judgments: Judgments) -> list[Shape]:
    """The face one pipeline found on the driver's licence photo."""
    box = judgments.face.licence_box
    if box is None:
        return []
    return [_shape(judgments.provenance.pipeline, "face", box, f"licence face{_score(box)}")]
