"""Every plate read is drawn over the scene, the one the verdict rests on first."""

from __future__ import annotations

from compliance.judgments import Answer, Box, PlateReading
from compliance.reports.overlay import scene_shapes
from tests.checks.test_policy import good_judgments


def test_both_vehicles_plates_are_drawn_once_each() -> None:
    own = PlateReading(text="皖A195K9", confidence=0.97, known_format=Answer.YES, box=Box(x1=500, y1=0, x2=600, y2=30))
    other = PlateReading(text="苏E5YR23", confidence=0.95, known_format=Answer.YES, box=Box(x1=0, y1=0, x2=100, y2=30))
    shapes = [s for s in scene_shapes(good_judgments(plate=own, plates=(other, own))) if s.category == "plate"]
    assert [s.label for s in shapes] == ["皖A195K9 0.97", "苏E5YR23 0.95"]
