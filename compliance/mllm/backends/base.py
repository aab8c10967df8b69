"""What a multimodal LLM backend takes and gives: interleaved text and images in, the answer text
with each token's log-probability out. The pipeline does not care where the model runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
from PIL import Image as PILImage

from compliance.pipeline import Image


class MllmError(RuntimeError):
    """The backend could not produce an answer (server down after retries, out of GPU memory,
    weights not on disk). A caller may fall back to the multistage baseline."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its bytes (a token may hold part of a UTF-8 character), the natural-log
    probability the model gave it, and the most likely alternatives at that step."""

    bytes: bytes
    logprob: float
    top: tuple[tuple[bytes, float], ...] = ()

    @property
    def probability(self) -> float:
        return probability(self.logprob)


def probability(logprob: float) -> float:
    """``exp(logprob)``, always in [0, 1]. What no log-probability can be (NaN, or above 0 beyond
    rounding) is a broken server's number: it counts as 0, never as sure, and never overflows."""
    if math.isnan(logprob) or logprob > 1e-6:
        return 0.0
    return math.exp(min(logprob, 0.0))


@dataclass(frozen=True, slots=True)
class MllmRequest:
    """One prompt: text and images in the order the model should see them."""

    parts: tuple[str | Image, ...]
    # The JSON schema the answer must match; a server that supports it constrains decoding to it.
    schema: dict[str, Any] | None = None

    @property
    def images(self) -> list[Image]:
        return [p for p in self.parts if not isinstance(p, str)]


@dataclass(frozen=True, slots=True)
class MllmOutput:
    text: str
    # None when the backend gave no log-probabilities: then no answer can be trusted on its own.
    tokens: tuple[TokenLogprob, ...] | None
    # False when generation stopped at the token limit rather than at the end of the answer.
    finished: bool
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class MllmBackend(Protocol):
    name: str

    @property
    def model_name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def loaded(self) -> bool: ...

    def load(self) -> object:
        """Load an in-process model now; a server backend has nothing to load."""
        ...

    def generate(self, requests: Sequence[MllmRequest]) -> list[MllmOutput]: ...


def to_pil(image: Image) -> PILImage.Image:
    return PILImage.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def fit_pixels(image: Image, max_pixels: int) -> Image:
    """Downscale (never upscale) so that width * height <= max_pixels, keeping the aspect ratio."""
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
