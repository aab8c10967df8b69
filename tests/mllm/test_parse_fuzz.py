"""The MLLM answer parser under fuzzing, and the verdict its judgments lead to.

1. ``parse_answer`` never raises: arbitrary text, answer-shaped text, and token log-probabilities
   that spell the text or do not, split UTF-8 characters, or hold NaN, infinities and values
   above 0; the judgments it gives always go through the real policy.
2. PASS only when every field is valid and every probability the verdict rests on is at or above
   its threshold. Answers are built here piece by piece, so that the test knows, without asking the
   parser, which object is the answer (the one naming the most fields, the last of equals), what
   each field's value is and where its characters sit in the text. Each character gets a
   probability; the text is cut into tokens at random (a token's probability is the lowest of the
   characters it touches). Decoys try to lend a value a confidence it does not have: the same
   ``"key": value`` in prose before the JSON, a sure draft object before the unsure answer, a key
   written twice, a key spelled with a JSON escape. The verdict may PASS only if person, vehicle,
   the faces and "same" are each a yes written (every time it is written) with probability at least
   ``mllm_confidence_min``, some plate in the answer reads exactly as the registered one with every
   character at least ``plate_confidence_min`` (a repaired character: the probability the model gave
   what it became), no field is missing or invalid, tokens were given and the answer was finished.
   And an answer with nothing wrong does PASS, so that the property is not vacuous.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from compliance import plates
from compliance.inspection import decide
from compliance.judgments import Judgments, Provenance, Quality
from compliance.mllm.answer import FIELDS
from compliance.mllm.backends.base import TokenLogprob
from compliance.mllm.parse import ParsedAnswer, parse_answer
from compliance.mllm.prompt import Task
from compliance.settings import Settings, Thresholds
from compliance.verdicts import Outcome, ReasonCode, Verdict

SETTINGS = Settings()
THRESHOLDS = Thresholds()
CONFIDENCE_MIN = SETTINGS.mllm_confidence_min
PLATE_MIN = THRESHOLDS.plate_confidence_min
REGISTERED = "京A01234"
GOOD_QUALITY = Quality(blur=200.0, brightness=120.0, width=1280, height=960)
FUZZ = settings(max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck))

# Probabilities straddling both thresholds, and anything in [0, 1].
PROBABILITIES = st.one_of(
    st.sampled_from((0.0, 0.3, 0.59, CONFIDENCE_MIN, 0.61, 0.79, PLATE_MIN, 0.81, 0.95, 0.99, 1.0)),
    st.floats(0.0, 1.0),
)
SURE = st.sampled_from((0.85, 0.9, 0.99, 1.0))  # above every threshold

YES = ("yes", "Yes", "YES", "是", "是的。", "有", "一致", "y", "true", True)
OTHER_ANSWERS = ("no", "unknown", "否", "不确定", False, None)
INVALID_ANSWERS = ("perhaps", "yess", "", 1, 0, 2.5, ["yes"], {"v": "yes"})
CHOICES: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]]] = {  # field: (valid values, invalid values)
    "people": ((1, 2, "两", "1个人", None), ("many", -1, 21, True, "0.5")),
    "kind": (("car", "truck", "货车", "unknown", None), ("spaceship", 3, True)),
    "color": (("blue", "蓝牌", "yellow", "unknown"), ("purple", 5, False)),
    "rows": ((1, "单层", 2, None), (3, "three", True)),
}
YES_FIELDS = ("person", "vehicle", "face", "licence_face", "same")


# -- plates: what is written, character by character, and what each character reads as -------------

# (written character, the character of the reading it becomes, or None for a dropped separator)
PlateTemplate = tuple[tuple[str, str | None], ...]


def _template(written: str, reading: str) -> PlateTemplate:
    chars: list[tuple[str, str | None]] = []
    it = iter(reading)
    for c in written:
        chars.append((c, None) if c in "·- " else (c, next(it)))
    return tuple(chars)


# Templates that read as the registered plate ("match") and others that do not.
MATCHING = (
    _template("京A01234", "京A01234"),
    _template("京A·01234", "京A01234"),
    _template("京Ａ０1234", "京A01234"),  # full-width forms fold
    _template("京a01234", "京A01234"),
    _template("京AO1234", "京A01234"),  # O is never issued: repaired to 0
    _template("京A0I234", "京A01234"),  # I likewise: repaired to 1
)
NOT_MATCHING = (
    _template("京A01235", "京A01235"),
    _template("京B01234", "京B01234"),
    _template("京A0123", "京A0123"),
    _template("沪A01234", "沪A01234"),
    _template("京A8I234", "京A81234"),
)
INVALID_PLATES = ("京A01234（蓝）", "ABC?", 12345, ["京A01234"])


# -- building an answer with every character's probability known --------------------------------


@dataclass
class Value:
    """One value as written: where its characters are, and what the oracle needs to know of it."""

    field: str
    start: int
    end: int
    value: Any
    valid: bool
    template: PlateTemplate | None = None


@dataclass
class Written:
    """One JSON object in the text: its values by field, in order (a field may be written twice)."""

    values: list[Value] = field(default_factory=list)
    plates: list[list[Value]] | None = None  # the listed plates' values, item by item

    def of(self, name: str) -> list[Value]:
        return [v for v in self.values if v.field == name]

    def shifted(self, by: int) -> Written:
        """The same object written ``by`` characters further on."""

        def move(v: Value) -> Value:
            return Value(v.field, v.start + by, v.end + by, v.value, v.valid, v.template)

        plates = None if self.plates is None else [[move(v) for v in item] for item in self.plates]
        return Written([move(v) for v in self.values], plates)

    @property
    def known(self) -> int:
        return len({v.field for v in self.values} | ({"plates"} if self.plates is not None else set()))


@dataclass
class Builder:
    text: str = ""
    probs: list[float] = field(default_factory=list)  # per character
    # per character: (the character the reading makes of it, that alternative's probability)
    alternatives: dict[int, tuple[str, float]] = field(default_factory=dict)

    def add(self, text: str, p: float | list[float]) -> tuple[int, int]:
        start = len(self.text)
        self.text += text
        self.probs += p if isinstance(p, list) else [p] * len(text)
        return start, len(self.text)


@dataclass
class Answer:
    text: str
    tokens: tuple[TokenLogprob, ...] | None
    finished: bool
    objects: list[Written]
    clean: bool  # nothing wrong anywhere: must PASS


def _quoted(value: str, style: str) -> tuple[str, int, int]:
    """``value`` as a string literal, and where its characters start and end inside it."""
    if style == "python":
        return f"'{value}'", 1, len(value) + 1
    literal = json.dumps(value, ensure_ascii=False)
    return literal, 1, len(literal) - 1


def _literal(value: Any, style: str) -> str:
    if style == "python" and isinstance(value, bool | type(None)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


@st.composite
def _choice(draw: st.DrawFn, name: str, perturbed: bool) -> tuple[Any, bool]:
    """A value for a choice field and whether it is valid; unperturbed, one a passing answer has."""
    if name in YES_FIELDS:
        if not perturbed:
            return draw(st.sampled_from(YES)), True
        return draw(
            st.one_of(
                st.sampled_from(OTHER_ANSWERS).map(lambda v: (v, True)),
                st.sampled_from(INVALID_ANSWERS).map(lambda v: (v, False)),
            )
        )
    valid, invalid = CHOICES[name]
    if not perturbed:
        return valid[0], True
    return draw(
        st.one_of(st.sampled_from(valid).map(lambda v: (v, True)), st.sampled_from(invalid).map(lambda v: (v, False)))
    )


@st.composite
def _plate(draw: st.DrawFn, perturbed: bool) -> tuple[Any, bool, PlateTemplate | None]:
    if not perturbed:
        return None, True, draw(st.sampled_from(MATCHING))
    kind = draw(st.sampled_from(("other", "none", "invalid")))
    if kind == "other":
        return None, True, draw(st.sampled_from(NOT_MATCHING))
    if kind == "none":
        return draw(st.sampled_from((None, "无", "unreadable"))), True, None
    return draw(st.sampled_from(INVALID_PLATES)), False, None


# What can be wrong with an answer, and at how many places each (the first N calls of that kind).
# What is not wrong (Python quotes, a JSON-escaped key, another field order, no "plates" key, sure
# decoys before the answer, prose after it) varies freely: an answer with nothing wrong must PASS.
SITES = {
    "low value": 16,  # a value's probability (a plate's characters each count)
    "low structure": 30,  # a brace, separator or key: a token that also holds a value's character
    "low repair": 2,  # what a repaired plate character became
    "value": 11,  # a field's value: another valid one, or an invalid one
    "plate": 1,  # not the registered plate, none, or not a plate
    "missing": 11,
    "twice": 11,
    "plates": 1,  # other plates listed
    "no tokens": 1,
    "unfinished": 1,
}


class Near:
    """Draws for one answer: everything as a passing answer has it, except at the few places drawn
    up front (so that most answers are one or two changes away from a PASS). Counts the changes."""

    def __init__(self, draw: st.DrawFn, places: dict[str, int]) -> None:
        self.draw, self.places, self.calls, self.count = draw, places, dict.fromkeys(SITES, 0), 0

    def perturb(self, kind: str) -> bool:
        call = self.calls[kind]
        self.calls[kind] += 1
        if self.places.get(kind) == call:
            self.count += 1
            return True
        return False

    def probability(self, kind: str = "low value") -> float:
        return self.draw(PROBABILITIES) if self.perturb(kind) else self.draw(SURE)


def _write_value(near: Near, b: Builder, value: Any, template: PlateTemplate | None, style: str) -> tuple[int, int]:
    """Writes a value; its characters get a probability (a plate's, one each), the quotes 1."""
    if template is not None:
        literal, inner_start, inner_end = _quoted("".join(c for c, _ in template), style)
        b.add(literal[:inner_start], 1.0)
        start = len(b.text)
        for c, becomes in template:
            at = len(b.text)
            b.add(c, near.probability())
            if becomes is not None and plates.normalise(c) != becomes:
                b.alternatives[at] = (becomes, near.probability("low repair"))
        end = len(b.text)
        b.add(literal[inner_end:], 1.0)
        return start, end
    p = near.probability()
    if isinstance(value, str):
        literal, inner_start, inner_end = _quoted(value, style)
        b.add(literal[:inner_start], 1.0)
        span = b.add(literal[inner_start:inner_end], p)
        b.add(literal[inner_end:], 1.0)
        return span
    return b.add(_literal(value, style), p)


def _object(near: Near, b: Builder, style: str, names: tuple[str, ...]) -> Written:
    """One answer object; perturbed, a field may be missing, written twice, have an escaped key, or
    come in another order."""
    draw = near.draw
    written = Written()
    order = draw(st.permutations(names)) if draw(st.integers(0, 2)) == 0 else list(names)
    b.add("{", near.probability("low structure"))
    first = True
    for name in order:
        times = 1
        if name != "plates" and near.perturb("missing"):
            times = 0
        if name != "plates" and near.perturb("twice"):
            times = 2
        for _ in range(times):
            b.add("" if first else ", ", near.probability("low structure"))
            first = False
            escaped = style == "json" and draw(st.integers(0, 9)) == 0
            key = "".join(f"\\u{ord(c):04x}" for c in name) if escaped else name
            b.add(f"'{key}': " if style == "python" else f'"{key}": ', near.probability("low structure"))
            if name == "plates":
                written.plates = _plate_list(near, b, style)
                continue
            template = None
            if name == "plate":
                value, valid, template = draw(_plate(near.perturb("plate")))
            else:
                value, valid = draw(_choice(name, near.perturb("value")))
            start, end = _write_value(near, b, value, template, style)
            written.values.append(Value(name, start, end, value, valid, template))
    b.add("}", near.probability("low structure"))
    return written


def _plate_list(near: Near, b: Builder, style: str) -> list[list[Value]]:
    """Every plate in view: none unperturbed; perturbed, up to three, any of them the registered one."""
    items: list[list[Value]] = []
    count = near.draw(st.integers(1, 3)) if near.perturb("plates") else 0
    b.add("[", 1.0)
    for i in range(count):
        b.add(", " if i else "", 1.0)
        value, valid, template = near.draw(_plate(near.draw(st.booleans())))
        key = "'plate': " if style == "python" else '"plate": '
        b.add("{" + key, 1.0)
        start, end = _write_value(near, b, value, template, style)
        b.add(", 'color': 'blue', 'rows': 1}" if style == "python" else ', "color": "blue", "rows": 1}', 1.0)
        items.append([Value("plate", start, end, value, valid, template)])
    b.add("]", 1.0)
    return items


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    kinds = draw(st.lists(st.sampled_from(sorted(SITES)), max_size=3, unique=True))
    near = Near(draw, {kind: draw(st.integers(0, SITES[kind] - 1)) for kind in kinds})
    style = draw(st.sampled_from(("json", "json", "json", "python")))
    names = draw(st.sampled_from((FIELDS, FIELDS, FIELDS, tuple(f for f in FIELDS if f != "plates"))))
    answer = Builder()
    final = _object(near, answer, style, names)
    # Decoys before the answer, sure where the answer is not: its "key": value pairs echoed in prose,
    # a draft that is the answer written surely, the plate in prose.
    b = Builder()
    objects: list[Written] = []
    for _ in range(draw(st.sampled_from((0, 0, 1, 2)))):
        decoy = draw(st.sampled_from(("echo", "draft", "plate prose", "schema")))
        if decoy == "echo":
            pairs = [answer.text[_key_start(answer.text, v.start) : v.end + 1] for v in final.values]
            b.add("Notes: " + ", ".join(pairs) + "\n", 1.0)
        elif decoy == "draft":
            b.add("Draft: ", 1.0)
            objects.append(final.shifted(len(b.text)))
            b.add(answer.text, 1.0)
            b.alternatives.update(
                {len(b.text) - len(answer.text) + i: (c, 1.0) for i, (c, _) in answer.alternatives.items()}
            )
            b.add("\nAnswer: ", 1.0)
        elif decoy == "plate prose":
            b.add(f"The plate: {REGISTERED}\n", 1.0)
        else:
            b.add('Schema: {"type": "object"}\n', 1.0)
    objects.append(final.shifted(len(b.text)))
    b.alternatives.update({len(b.text) + i: alt for i, alt in answer.alternatives.items()})
    b.add(answer.text, answer.probs)
    if draw(st.integers(0, 2)) == 0:  # (after two sure newlines: no token holds the answer's end and it)
        b.add("\n\n", 1.0)
        b.add("Hope this helps.", draw(PROBABILITIES))
    no_tokens = near.perturb("no tokens")
    finished = not near.perturb("unfinished")
    clean = near.count == 0
    tokens = None if no_tokens else _tokens(b, draw(st.randoms()), isolate_repairs=clean)
    return Answer(b.text, tokens, finished, objects, clean)


def _key_start(text: str, value_start: int) -> int:
    """Where the key before a value starts (its opening quote)."""
    colon = text.rindex(":", 0, value_start)
    quote = text[colon - 1]
    return text.rindex(quote, 0, colon - 1)


def _tokens(b: Builder, rnd: random.Random, isolate_repairs: bool) -> tuple[TokenLogprob, ...]:
    """The text cut into tokens of 1-4 bytes (UTF-8 characters may be split): each token's probability
    is the lowest of the characters it touches; a one-character token a plate repair rests on lists
    the alternative it became (``isolate_repairs``: such a character is always a token of its own)."""
    owner: list[int] = []  # byte -> character index
    starts: dict[int, int] = {}  # character index -> its first byte
    for i, c in enumerate(b.text):
        starts[i] = len(owner)
        owner += [i] * len(c.encode("utf-8"))
    data = b.text.encode("utf-8")
    repaired_bytes = sorted(starts[i] for i in b.alternatives)
    tokens, at = [], 0
    while at < len(data):
        end = min(len(data), at + rnd.choice((1, 1, 2, 3, 4)))
        if isolate_repairs:
            if owner[at] in b.alternatives:
                end = at + len(b.text[owner[at]].encode("utf-8"))
            else:
                end = min([end, *(r for r in repaired_bytes if r > at)])
        chars = sorted(set(owner[at:end]))
        p = min(b.probs[i] for i in chars)
        lp = math.log(p) if p > 0 else -math.inf
        top: tuple[tuple[bytes, float], ...] = ((data[at:end], lp),)
        whole = len(chars) == 1 and len(b.text[chars[0]].encode("utf-8")) == end - at
        if whole and chars[0] in b.alternatives:
            char, q = b.alternatives[chars[0]]
            top += ((char.encode("utf-8"), math.log(q) if q > 0 else -math.inf),)
        tokens.append(TokenLogprob(data[at:end], lp, top))
        at = end
    return tuple(tokens)


# -- the oracle ----------------------------------------------------------------------------------


def _chosen(objects: list[Written]) -> Written:
    """The answer object, by the parser's documented rule: the most fields named, the last of equals."""
    return max(reversed(objects), key=lambda o: o.known)


def _token_probabilities(answer: Answer) -> list[tuple[int, int, TokenLogprob]]:
    """Each token with the character range it touches."""
    assert answer.tokens is not None
    owner: list[int] = []
    for i, c in enumerate(answer.text):
        owner += [i] * len(c.encode("utf-8"))
    result, at = [], 0
    for token in answer.tokens:
        end = at + len(token.bytes)
        if end > at:
            result.append((owner[at], owner[end - 1] + 1, token))
        at = end
    return result


def _lowest(answer: Answer, start: int, end: int) -> float:
    return min((math.exp(t.logprob) for a, b, t in _token_probabilities(answer) if a < end and start < b), default=0.0)


def _sure_yes(answer: Answer, values: list[Value]) -> bool:
    return bool(values) and all(
        v.valid and v.value in YES and _lowest(answer, v.start, v.end) >= CONFIDENCE_MIN for v in values
    )


def _sure_registered(answer: Answer, v: Value) -> bool:
    """Reads exactly as the registered plate, every character of the reading at or above the threshold."""
    if v.template is None or v.template not in MATCHING:
        return False
    tokens = _token_probabilities(answer)
    for offset, (written, becomes) in enumerate(v.template):
        at = v.start + offset
        if becomes is None:
            continue
        if plates.normalise(written) == becomes:
            p = _lowest(answer, at, at + 1)
        else:  # repaired: what the model gave the character it became, at a step that wrote just this one
            p = next(
                (
                    math.exp(lp)
                    for a, b, t in tokens
                    if (a, b) == (at, at + 1) and t.bytes == written.encode("utf-8")
                    for alt, lp in t.top
                    if alt == becomes.encode("utf-8")
                ),
                0.0,
            )
        if p < PLATE_MIN:
            return False
    return True


def may_pass(answer: Answer) -> bool:
    if answer.tokens is None or not answer.finished:
        return False
    chosen = _chosen(answer.objects)
    if any(not chosen.of(name) for name in FIELDS if name != "plates"):
        return False  # a field missing
    if any(not v.valid for v in chosen.values):
        return False
    if any(not _sure_yes(answer, chosen.of(name)) for name in YES_FIELDS):
        return False
    main = chosen.of("plate")
    main_sure = all(_sure_registered(answer, v) for v in main)
    listed = [item[0] for item in chosen.plates or [] if item]
    return main_sure or any(v.valid and _sure_registered(answer, v) for v in listed)


# -- running the real parser and policy -----------------------------------------------------------


def _verdict(parsed: ParsedAnswer, text: str, licence: bool = True) -> Verdict:
    judgments = Judgments(
        person=parsed.person,
        vehicle=parsed.vehicle,
        plate=parsed.plate,
        plates=parsed.plates,
        face=parsed.face,
        quality=GOOD_QUALITY,
        provenance=Provenance(
            pipeline="mllm", raw_output=text, output_errors=parsed.errors, output_doubts=parsed.doubts
        ),
    )
    return decide(judgments, thresholds=THRESHOLDS, registered_plates=[REGISTERED], licence_given=licence)


def _parse(answer: Answer) -> ParsedAnswer:
    return parse_answer(
        answer.text, Task.SUBMISSION, tokens=answer.tokens, finished=answer.finished, confidence_min=CONFIDENCE_MIN
    )


@FUZZ
@given(answer=answers())
def test_pass_only_on_valid_fields_at_or_above_the_thresholds(answer: Answer) -> None:
    parsed = _parse(answer)
    verdict = _verdict(parsed, answer.text)
    if verdict.outcome is Outcome.PASS:
        assert may_pass(answer), (answer.text, parsed.errors)
        assert parsed.errors == () and parsed.doubts == ()
    # A value written below the threshold is a doubt, and a doubt is never a PASS: under a grammar,
    # where every answer is well formed, this is the gate between noise and a PASS.
    if parsed.doubts:
        assert verdict.outcome is not Outcome.PASS and ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons
    if answer.clean:
        assert verdict.outcome is Outcome.PASS, (answer.text, parsed.errors, verdict.reasons)


# -- never raises ----------------------------------------------------------------------------------

LOGPROBS = st.one_of(
    st.floats(max_value=0.0, allow_nan=False),
    st.sampled_from((0.0, -0.0, 1e-9, 0.5, 1.0, 710.0, 1e308, math.inf, -math.inf, math.nan)),
    st.floats(),
)


@st.composite
def spelled(draw: st.DrawFn, text: str) -> tuple[TokenLogprob, ...]:
    """Tokens that spell ``text``, cut anywhere (inside UTF-8 characters too), with any log-probability."""
    data = text.encode("utf-8")
    cuts = sorted(draw(st.sets(st.integers(0, len(data)), max_size=max(1, len(data)))))
    bounds = [0, *cuts, len(data)]
    tokens = []
    for a, b in itertools.pairwise(bounds):
        top = draw(st.lists(st.tuples(st.binary(max_size=4), LOGPROBS), max_size=3))
        tokens.append(TokenLogprob(data[a:b], draw(LOGPROBS), tuple(top)))
    return tuple(tokens)


ARBITRARY_TOKENS = st.lists(
    st.builds(
        TokenLogprob, st.binary(max_size=6), LOGPROBS, st.lists(st.tuples(st.binary(max_size=4), LOGPROBS), max_size=2)
    ).map(lambda t: TokenLogprob(t.bytes, t.logprob, tuple(t.top))),
    max_size=30,
)
ANSWER_LIKE = st.builds(
    lambda fields, prefix, suffix, cut: (prefix + json.dumps(fields, ensure_ascii=False) + suffix)[:cut],
    st.dictionaries(
        st.sampled_from((*FIELDS, "\\u0073ame", "Person")),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.sampled_from(YES)),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(("plate", "color", "rows")), inner)
            ),
            max_leaves=8,
        ),
    ),
    st.sampled_from(("", "```json\n", "Answer: ", '{"person": "yes"} ', "[", "{{")),
    st.sampled_from(("", "\n```", "}", "]", "}}", " 好的。")),
    st.integers(0, 600),
)


@FUZZ
@given(
    text=st.one_of(st.text(max_size=300), ANSWER_LIKE),
    how=st.sampled_from(("spelled", "arbitrary", "none")),
    data=st.data(),
    finished=st.booleans(),
    task=st.sampled_from(tuple(Task)),
    confidence_min=st.floats(0.0, 1.0),
)
@example(
    text='{"plate": "京A01234"}', how="spelled", data=None, finished=True, task=Task.SUBMISSION, confidence_min=0.6
)
def test_parse_never_raises(
    text: str, how: str, data: st.DataObject | None, finished: bool, task: Task, confidence_min: float
) -> None:
    if data is None:
        tokens: tuple[TokenLogprob, ...] | None = tuple(
            TokenLogprob(c.encode("utf-8"), 710.0, ((b"0", 1e308),)) for c in text
        )
    elif how == "spelled":
        tokens = data.draw(spelled(text))
    elif how == "arbitrary":
        tokens = tuple(data.draw(ARBITRARY_TOKENS))
    else:
        tokens = None
    parsed = parse_answer(text, task, tokens=tokens, finished=finished, confidence_min=confidence_min)
    for reading in (parsed.plate, *parsed.plates):
        assert reading.confidence is None or 0.0 <= reading.confidence <= 1.0
        assert all(0.0 <= c <= 1.0 for c in reading.char_confidences or ())
    verdict = _verdict(parsed, text, licence=task is Task.SUBMISSION)
    if verdict.outcome is Outcome.PASS:
        assert tokens is not None and finished and parsed.errors == ()
