"""Photos are served as the pipelines saw them: turned by their EXIF orientation, so boxes fit."""

from __future__ import annotations

import io

from PIL import Image

from compliance.dashboard.submissions import oriented_size
from compliance.photos import rendition
from compliance.settings import Settings

LIMITS = Settings().photo_limits


def jpeg(width: int, height: int, orientation: int | None) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height))  # left half blue: shows which way it turned
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_a_photo_taken_sideways_is_turned_before_it_is_served() -> None:
    data = jpeg(80, 40, orientation=6)  # the camera was turned a quarter: show it 40 wide, 80 high
    assert oriented_size(data) == (40, 80)
    served, kind = rendition(data, **LIMITS)
    assert kind == "jpeg"
    with Image.open(io.BytesIO(served)) as image:
        assert image.size == (40, 80) and image.format == "JPEG"
        assert image.getpixel((20, 5))[2] > 150  # the blue half is on top now


def test_an_upright_photo_is_served_as_stored() -> None:
    data = jpeg(80, 40, orientation=None)
    assert oriented_size(data) == (80, 40)
    assert rendition(data, **LIMITS) == (data, "jpeg")
