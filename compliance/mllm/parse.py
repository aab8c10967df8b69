"""From a model's raw answer to judgments and a list of what was wrong with it.

Extraction is tolerant (prose around the JSON, a code fence, a cut-off answer: ``json_repair``);
validation is strict and field by field (``MllmAnswer``): a missing, malformed or out-of-range value
costs that field only, which becomes unknown/None with an error string. The errors go into
``Provenance.output_errors`` and send the photo to REVIEW. Nothing is filled in that the model did
not say.

Confidence comes from the probabilities the model gave the tokens it wrote, never from a number it
writes: a value's confidence is the lowest probability among the tokens that spell it, where the
answer object writes it (the same words in prose before it, or in a draft object, lend it nothing;
a key the object writes twice is unknown and noted). A categorical value (yes/no, kind, colour,
count, rows) below ``confidence_min`` becomes unknown and is noted as a doubt (``doubts``: the
answer is well formed, the model unsure), apart from the errors. The plate keeps one probability
per character (``char_confidences``) and their minimum as ``confidence``, which the plate check
compares with its own threshold.

The plate goes through the grammar as the baseline's readings do: ``normalise`` -> ``repair`` ->
``parse``. A reading made only of plate characters is kept even when it fits no known shape
(``known_format`` no, ``plate_type`` None), as the grammar module keeps such readings; a value with
characters no plate carries ("ABC?", "京A12345（蓝）") is not a reading: text None, raw text kept,
and an error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import json_repair
from pydantic import ValidationError

from compliance import plates
from compliance.judgments import (
    Answer,
    FaceMatch,
    PersonJudgment,
    PlateColor,
    PlateReading,
    VehicleJudgment,
    VehicleKind,
)
from compliance.mllm.answer import OPTIONAL_FIELDS, SEEN_PLATE_FIELDS, UNKNOWN, field_adapter, seen_plate_adapter
from compliance.mllm.backends.base import TokenLogprob, probability
from compliance.mllm.prompt import Task

# Fields whose value is a choice the model makes (as opposed to the plate, read character by character).
_CHOICES = ("person", "people", "vehicle", "kind", "color", "rows", "face", "licence_face", "same")


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    person: PersonJudgment
    vehicle: VehicleJudgment
    plate: PlateReading
    # Every plate the model listed, ``plate`` first when it has text.
    plates: tuple[PlateReading, ...]
    face: FaceMatch
    # What was wrong with the answer: missing, malformed, cut off, outside the grammar.
    errors: tuple[str, ...]
    # Values the model wrote but gave too low a probability to act on (each now unknown).
    doubts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Span:
    """Where a value is spelled in the answer text (inside the quotes for a string)."""

    start: int
    end: int
    closed: bool  # False: the value runs to the end of the text (a cut-off answer may have cut it)


def parse_answer(
    text: str,
    task: Task,
    *,
    tokens: Sequence[TokenLogprob] | None = None,
    finished: bool = True,
    confidence_min: float = 0.6,
) -> ParsedAnswer:
    errors: list[str] = []
    doubts: list[str] = []
    if not finished:
        errors.append("answer cut off at the token limit")
    probs = char_probabilities(text, tokens) if tokens is not None else None
    if tokens is None:
        errors.append("no token log-probabilities: confidence unknown")
    elif probs is None:
        errors.append("token log-probabilities do not spell the answer text (invalid UTF-8?): confidence unknown")

    found = _answer_object(text)
    if found is None:
        errors.append("no JSON object in the answer")
    answer, written = found or ({}, None)

    values: dict[str, Any] = {}
    spans: dict[str, _Span | None] = {}
    for name in task.fields:
        if name == "plates":
            continue  # a list, validated plate by plate below
        if name not in answer:
            if found is not None and name not in OPTIONAL_FIELDS:
                errors.append(f"{name}: missing")
            continue
        raw = answer[name]
        places = written.written(name) if written else []
        if len(places) > 1:
            errors.append(f"{name}: written {len(places)} times, taken as unknown")
            continue
        span = _span_of(text, places[0] if places else None, raw)
        if span is not None and not span.closed and not finished:
            errors.append(f"{name}: cut off ({raw!r})")
            continue
        try:
            values[name] = field_adapter(name).validate_python(raw)
        except ValidationError:
            errors.append(f"{name}: invalid value {_short(raw)}")
            continue
        spans[name] = span

    for name in _CHOICES:
        value = values.get(name)
        if value is None or value == UNKNOWN:
            continue
        if probs is None:
            continue  # already noted once for the whole answer
        confidence = _span_probability(spans.get(name), probs)
        if confidence is None:
            errors.append(f"{name}: value not found among the generated tokens: confidence unknown")
        elif confidence < confidence_min:
            doubts.append(f"{name}: {value!r} at probability {confidence:.2f} < {confidence_min:.2f}, taken as unknown")
            values[name] = None if name in ("people", "rows") else UNKNOWN

    plate, plate_errors = _plate(values, spans.get("plate"), text, tokens, probs)
    errors += plate_errors
    seen: tuple[PlateReading, ...] = (plate,) if plate.text else ()
    if "plates" in task.fields and "plates" in answer:
        places = written.written("plates") if written else []
        if len(places) > 1:
            errors.append(f"plates: written {len(places)} times, taken as unknown")
        else:
            where = places[0] if places else None
            seen = _seen_plates(plate, answer["plates"], where, text, tokens, probs, confidence_min, errors, doubts)
    person, vehicle = _person(values, errors), _vehicle(values, errors)
    face = FaceMatch(
        scene_face=Answer(values.get("face", UNKNOWN)),
        licence_face=Answer(values.get("licence_face", UNKNOWN)),
        same_person=Answer(values.get("same", UNKNOWN)),
    )
    return ParsedAnswer(
        person=person, vehicle=vehicle, plate=plate, plates=seen, face=face, errors=tuple(errors), doubts=tuple(doubts)
    )


def extract_object(text: str) -> dict[str, Any] | None:
    """The answer's JSON object, wherever it sits in the text; with several, the one that names the
    most answer fields (the last of equals: models draft, then answer)."""
    found = _answer_object(text)
    return found[0] if found else None


def _answer_object(text: str) -> tuple[dict[str, Any], _Written] | None:
    """``extract_object``'s object, with where it is written: its values' confidences are read there
    and nowhere else (not from the same words in prose before it, nor from a draft)."""
    candidates = []
    for where in _objects_written(text):
        try:
            found = json_repair.loads(text[where.start : where.end])
        except (ValueError, RecursionError):
            continue
        if isinstance(found, dict):
            candidates.append((found, where))
    if not candidates:
        return None
    known = set(Task.SUBMISSION.fields)
    return max(reversed(candidates), key=lambda c: len(known & set(c[0])))


@dataclass(frozen=True, slots=True)
class _Written:
    """A value as written in the answer text: where (inside the quotes for a string), and for an
    object or a list, what it holds. Read as tolerantly as ``json_repair`` reads values: an unclosed
    string, list or object runs to the end of the text."""

    start: int
    end: int
    closed: bool
    quote: str = ""  # a string's quote character
    members: tuple[tuple[str, _Written], ...] | None = None  # an object's keys (decoded) and values, in order
    items: tuple[_Written, ...] | None = None  # a list's values

    def written(self, key: str) -> list[_Written]:
        """Every value written for ``key`` in this object (a key written twice has two)."""
        return [value for k, value in self.members or () if k == key]


_BLANK = " \t\r\n"
_MAX_DEPTH = 32  # deeper lists and objects are read as plain text: no answer nests so deep


def _objects_written(text: str) -> list[_Written]:
    """Every top-level ``{...}`` in the text, in order."""
    found = []
    start = text.find("{")
    while start != -1:
        where, end = _container(text, start, 0)
        found.append(where)
        start = text.find("{", max(end, start + 1))
    return found


def _value(text: str, i: int, depth: int) -> tuple[_Written, int]:
    """The value written from ``i`` on (after blanks), and where reading stopped."""
    while i < len(text) and text[i] in _BLANK:
        i += 1
    if i >= len(text):
        return _Written(i, i, False), i
    if text[i] in "{[" and depth < _MAX_DEPTH:
        return _container(text, i, depth)
    if text[i] in "\"'":
        end = _string_end(text, i + 1, text[i])
        return _Written(i + 1, end, end < len(text), quote=text[i]), min(end + 1, len(text))
    stop = i
    while stop < len(text) and text[stop] not in ",}]\n":
        stop += 1
    return _Written(i, i + len(text[i:stop].rstrip()), stop < len(text)), stop


def _container(text: str, start: int, depth: int) -> tuple[_Written, int]:
    """The object or list opened at ``start``."""
    is_object = text[start] == "{"
    closing = "}" if is_object else "]"
    members: list[tuple[str, _Written]] = []
    items: list[_Written] = []
    i = start + 1
    while True:
        while i < len(text) and text[i] in _BLANK + ",":
            i += 1
        if i >= len(text) or text[i] == closing:
            closed = i < len(text)
            end = i + 1 if closed else len(text)
            if is_object:
                return _Written(start, end, closed, members=tuple(members)), end
            return _Written(start, end, closed, items=tuple(items)), end
        if text[i] in "}]":  # the other bracket, stray: skipped
            i += 1
            continue
        if not is_object:
            value, after = _value(text, i, depth + 1)
            items.append(value)
            i = max(after, i + 1)
            continue
        key, after = _key(text, i)
        while after < len(text) and text[after] in _BLANK:
            after += 1
        if after < len(text) and text[after] == ":":
            value, after = _value(text, after + 1, depth + 1)
            members.append((key, value))
        i = max(after, i + 1)


def _key(text: str, i: int) -> tuple[str, int]:
    """An object's key written at ``i`` (quoted, or bare as in ``{person: yes}``), decoded."""
    if text[i] in "\"'":
        end = _string_end(text, i + 1, text[i])
        return _decoded(text[i + 1 : end], text[i]), min(end + 1, len(text))
    stop = i
    while stop < len(text) and text[stop] not in ":,{}[]\n":
        stop += 1
    return text[i:stop].strip(), stop


def _decoded(written: str, quote: str) -> str:
    if quote != '"':
        return written
    try:
        decoded = json.loads(f'"{written}"')
    except ValueError:
        return written
    return decoded if isinstance(decoded, str) else written


def char_probabilities(text: str, tokens: Sequence[TokenLogprob]) -> list[float] | None:
    """Per character of ``text``, the lowest probability among the tokens that hold its bytes.
    None when the tokens do not spell the text."""
    data = b"".join(t.bytes for t in tokens)
    try:
        if data.decode("utf-8") != text:
            return None
    except UnicodeDecodeError:
        return None
    token_ends: list[tuple[int, int, float]] = []  # byte start, byte end, probability
    position = 0
    for token in tokens:
        if token.bytes:
            token_ends.append((position, position + len(token.bytes), token.probability))
            position += len(token.bytes)
    result: list[float] = []
    index = 0
    byte = 0
    for char in text:
        width = len(char.encode("utf-8"))
        while token_ends[index][1] <= byte:
            index += 1
        lowest = 1.0
        probe = index
        while probe < len(token_ends) and token_ends[probe][0] < byte + width:
            lowest = min(lowest, token_ends[probe][2])
            probe += 1
        result.append(lowest)
        byte += width
    return result


def _span_probability(span: _Span | None, probs: list[float]) -> float | None:
    if span is None or span.end <= span.start:
        return None
    return min(probs[span.start : span.end])


def _span_of(text: str, where: _Written | None, value: Any) -> _Span | None:
    """Where ``value`` is spelled, if ``where`` (the one place its key is written in the answer
    object) spells it; None when it does not (the parsed value came from elsewhere or was repaired)."""
    if where is None or where.members is not None or where.items is not None:
        return None
    written = text[where.start : where.end]
    if where.quote:
        if _decoded(written, where.quote) == value or (value is None and written == ""):
            return _Span(where.start, where.end, where.closed)
        return None
    if written and _same_literal(written, value):
        return _Span(where.start, where.end, where.closed)
    return None


def _string_end(text: str, start: int, quote: str) -> int:
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return len(text)


def _same_literal(written: str, value: Any) -> bool:
    try:
        return json.loads(written) == value and type(json.loads(written)) is type(value)
    except ValueError:
        return written.strip("'\"").lower() == str(value).lower()


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _seen_plates(
    plate: PlateReading,
    listed: Any,
    where: _Written | None,
    text: str,
    tokens: Sequence[TokenLogprob] | None,
    probs: list[float] | None,
    confidence_min: float,
    errors: list[str],
    doubts: list[str],
) -> tuple[PlateReading, ...]:
    """The listed plates, each read as the main plate is (grammar, per-character confidence, a doubtful
    colour or row count unknown); a value that fails validation is unknown and noted. The main plate
    comes first, in place of the listed plate with its text."""
    main = (plate,) if plate.text else ()
    if not isinstance(listed, list):
        errors.append(f"plates: invalid value {_short(listed)}")
        return main
    # Where each listed plate is written, when the list as written and as parsed agree item by item;
    # otherwise no spans, so no confidences.
    items = where.items if where is not None and where.items is not None else ()
    aligned = len(items) == len(listed)
    readings: list[PlateReading] = []
    for i, item in enumerate(listed):
        if not isinstance(item, dict):
            errors.append(f"plates[{i}]: invalid value {_short(item)}")
            continue
        item_where = items[i] if aligned else None
        values: dict[str, Any] = {}
        spans: dict[str, _Span | None] = {}
        for name in SEEN_PLATE_FIELDS:
            raw = item.get(name)
            places = item_where.written(name) if item_where is not None else []
            if len(places) > 1:
                errors.append(f"plates[{i}].{name}: written {len(places)} times, taken as unknown")
                continue
            span = _span_of(text, places[0], raw) if name in item and places else None
            try:
                values[name] = seen_plate_adapter(name).validate_python(raw)
            except ValidationError:
                errors.append(f"plates[{i}].{name}: invalid value {_short(raw)}")
                continue
            spans[name] = span
            if name != "plate" and values[name] not in (None, UNKNOWN) and probs is not None:
                confidence = _span_probability(span, probs)
                if confidence is None:
                    errors.append(f"plates[{i}].{name}: value not found among the generated tokens: confidence unknown")
                    values[name] = None if name == "rows" else UNKNOWN
                elif confidence < confidence_min:
                    doubts.append(
                        f"plates[{i}].{name}: {values[name]!r} at probability {confidence:.2f}, taken as unknown"
                    )
                    values[name] = None if name == "rows" else UNKNOWN
        reading, reading_errors = _plate(values, spans.get("plate"), text, tokens, probs)
        errors += [f"plates[{i}].{e}" for e in reading_errors]
        readings.append(reading)
    others = [r for r in readings if not (plate.text and r.text == plate.text)]
    return (*main, *others)


def _person(values: dict[str, Any], errors: list[str]) -> PersonJudgment:
    present = Answer(values.get("person", UNKNOWN))
    count = values.get("people")
    if count is not None and ((present is Answer.NO and count > 0) or (present is Answer.YES and count == 0)):
        errors.append(f"people: {count} contradicts person={present.value}")
        count = None
    return PersonJudgment(present=present, count=count)


def _vehicle(values: dict[str, Any], errors: list[str]) -> VehicleJudgment:
    present = Answer(values.get("vehicle", UNKNOWN))
    kind = VehicleKind(values.get("kind", UNKNOWN))
    if present is Answer.NO and kind is not VehicleKind.UNKNOWN:
        errors.append(f"kind: {kind.value} contradicts vehicle=no")
        kind = VehicleKind.UNKNOWN
    return VehicleJudgment(present=present, kind=kind)


def _plate(
    values: dict[str, Any],
    span: _Span | None,
    text: str,
    tokens: Sequence[TokenLogprob] | None,
    probs: list[float] | None,
) -> tuple[PlateReading, list[str]]:
    color = PlateColor(values.get("color", UNKNOWN))
    rows = values.get("rows")
    raw = values.get("plate")
    if raw is None:
        return PlateReading(color=color, rows=rows), []
    normalised = plates.normalise(raw)
    reading = plates.repair(normalised)
    if not reading:
        return PlateReading(raw_text=raw, color=color, rows=rows), []
    foreign = "".join(dict.fromkeys(c for c in reading if c not in plates.CHARSET))
    if foreign:
        error = f"plate: {raw!r} is not a plate reading (no plate carries {foreign!r})"
        return PlateReading(raw_text=raw, color=color, rows=rows), [error]
    errors: list[str] = []
    parsed = plates.parse(reading)
    if parsed.valid and color is not PlateColor.UNKNOWN and color.value not in parsed.expected_colors:
        errors.append(f"color: {color.value} plates are not issued for {parsed.plate_type} plates like {reading}")
    confidences: tuple[float, ...] | None = None
    if probs is not None:
        confidences = _plate_confidences(raw, normalised, reading, span, text, tokens or (), probs)
        if confidences is None:
            errors.append("plate: characters not found among the generated tokens: confidence unknown")
    return (
        PlateReading(
            text=reading,
            raw_text=raw,
            color=color,
            rows=rows,
            confidence=min(confidences) if confidences else None,
            char_confidences=confidences,
            plate_type=parsed.plate_type.value if parsed.valid and parsed.plate_type else None,
            known_format=Answer.of(parsed.valid),
        ),
        errors,
    )


def _plate_confidences(
    raw: str,
    normalised: str,
    reading: str,
    span: _Span | None,
    text: str,
    tokens: Sequence[TokenLogprob],
    probs: list[float],
) -> tuple[float, ...] | None:
    """One probability per character of the (normalised, repaired) reading.

    Normalising drops separators and folds full-width forms character by character, so each
    reading character traces back to the character the model wrote. A character the grammar
    repaired (O -> 0) is only as sure as the model was of what it became: the probability of that
    character among the step's alternatives, 0 when it was not among them.
    """
    if span is None or text[span.start : span.end] != raw:
        return None
    pieces = [plates.normalise(c) for c in raw]
    if "".join(pieces) != normalised or len(reading) != len(normalised):
        return None
    origin = [i for i, piece in enumerate(pieces) for _ in piece]
    result: list[float] = []
    for i, (became, was) in enumerate(zip(reading, normalised, strict=True)):
        where = span.start + origin[i]
        if became == was:
            result.append(probs[where])
        else:
            result.append(_alternative(text, where, became, tokens))
    return tuple(result)


def _alternative(text: str, index: int, char: str, tokens: Sequence[TokenLogprob]) -> float:
    """The probability the model gave ``char`` at the step that wrote text[index], if that step wrote
    exactly that one character; 0 otherwise."""
    start = len(text[:index].encode("utf-8"))
    end = start + len(text[index].encode("utf-8"))
    position = 0
    for token in tokens:
        token_end = position + len(token.bytes)
        if position == start and token_end == end:
            wanted = char.encode("utf-8")
            return next((probability(lp) for b, lp in token.top if b == wanted), 0.0)
        if token_end > start:
            return 0.0
        position = token_end
    return 0.0
