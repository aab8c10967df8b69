"""Parsing real-looking model answers: what each must become, and what it must be flagged for.

Token probabilities come from a real byte-level BPE tokenizer (the tiny checkpoint's), so that
Chinese characters split across tokens the way they do in Qwen's vocabulary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from compliance.inspection import decide
from compliance.judgments import Answer, PlateColor, VehicleKind
from compliance.mllm.answer import answer_schema
from compliance.mllm.backends.base import TokenLogprob
from compliance.mllm.backends.transformers import token_bytes
from compliance.mllm.parse import char_probabilities, extract_object, parse_answer
from compliance.mllm.prompt import Task, instruction
from compliance.mllm.tiny import build_tokenizer
from compliance.settings import Thresholds
from compliance.verdicts import Outcome, ReasonCode

Tokenise = Callable[..., tuple[TokenLogprob, ...]]


@pytest.fixture(scope="module")
def tokenise() -> Tokenise:
    tokenizer = build_tokenizer()
    table = token_bytes(tokenizer)

    def run(text: str, probability: float = 0.99, low: dict[str, float] | None = None) -> tuple[TokenLogprob, ...]:
        """``text`` as the tokenizer splits it, every token at ``probability`` except those that
        overlap the first occurrence of a key of ``low``, which get its value."""
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces = [table[i] for i in ids]
        assert b"".join(pieces) == text.encode("utf-8")
        ranges = []
        for snippet, p in (low or {}).items():
            start = len(text[: text.index(snippet)].encode("utf-8"))
            ranges.append((start, start + len(snippet.encode("utf-8")), p))
        tokens, position = [], 0
        for piece in pieces:
            end = position + len(piece)
            p = min([probability] + [q for s, e, q in ranges if s < end and position < e])
            tokens.append(TokenLogprob(bytes=piece, logprob=math.log(p), top=((piece, math.log(p)),)))
            position = end
        return tuple(tokens)

    return run


FULL = {
    "person": "yes",
    "people": 1,
    "vehicle": "yes",
    "kind": "truck",
    "plate": "京A12345",
    "color": "blue",
    "rows": 1,
    "face": "yes",
    "licence_face": "yes",
    "same": "yes",
}


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    expect: dict[str, Any]
    errors: tuple[str, ...] = ()  # prefixes of the expected errors, in any order
    finished: bool = True
    task: Task = Task.SUBMISSION
    notes: str = field(default="")


CASES = [
    Case(
        "code fence, Chinese values, separator dot",
        '```json\n{"person":"是","people":1,"vehicle":"有","kind":"货车","plate":"京A·12345","color":"蓝牌",'
        '"rows":"单层","face":"是","licence_face":"是","same":"否"}\n```',
        {
            "person": Answer.YES,
            "count": 1,
            "vehicle": Answer.YES,
            "kind": VehicleKind.TRUCK,
            "plate": "京A12345",
            "raw": "京A·12345",
            "plate_type": "standard",
            "known": Answer.YES,
            "color": PlateColor.BLUE,
            "rows": 1,
            "face": Answer.YES,
            "licence_face": Answer.YES,
            "same": Answer.NO,
        },
    ),
    Case(
        "prose around the JSON, full-width plate",
        'Sure. Here is my answer:\n{"person": "yes", "people": 2, "vehicle": "yes", "kind": "car", '
        '"plate": "皖ＡＵＪ２９９", "color": "blue", "rows": 1, "face": "no", "licence_face": "yes", '
        '"same": "unknown"}\nLet me know if you need more.',
        {
            "person": Answer.YES,
            "count": 2,
            "kind": VehicleKind.CAR,
            "plate": "皖AUJ299",
            "raw": "皖ＡＵＪ２９９",
            "known": Answer.YES,
            "face": Answer.NO,
            "same": Answer.UNKNOWN,
        },
    ),
    Case(
        "cut off inside the plate",
        '{"person": "yes", "people": 1, "vehicle": "yes", "kind": "truck", "plate": "京A12',
        {
            "person": Answer.YES,
            "kind": VehicleKind.TRUCK,
            "plate": None,
            "raw": None,
            "color": PlateColor.UNKNOWN,
            "same": Answer.UNKNOWN,
        },
        errors=(
            "answer cut off",
            "plate: cut off",
            "color: missing",
            "rows: missing",
            "face: missing",
            "licence_face: missing",
            "same: missing",
        ),
        finished=False,
    ),
    Case(
        "wrong types and out-of-range values",
        '{"person": 1, "people": "many", "vehicle": "perhaps", "kind": "spaceship", "plate": 12345, '
        '"color": "purple", "rows": 3, "face": true, "licence_face": "yes", "same": ["yes"]}',
        {
            "person": Answer.UNKNOWN,
            "count": None,
            "vehicle": Answer.UNKNOWN,
            "kind": VehicleKind.UNKNOWN,
            "plate": None,
            "color": PlateColor.UNKNOWN,
            "rows": None,
            "face": Answer.YES,
            "licence_face": Answer.YES,
            "same": Answer.UNKNOWN,
        },
        errors=(
            "person: invalid",
            "people: invalid",
            "vehicle: invalid",
            "kind: invalid",
            "plate: invalid",
            "color: invalid",
            "rows: invalid",
            "same: invalid",
        ),
        notes="true is an unambiguous yes; 1 is not",
    ),
    Case(
        "no JSON at all",
        "I am sorry, I cannot see the image clearly.",
        {"person": Answer.UNKNOWN, "vehicle": Answer.UNKNOWN, "plate": None, "same": Answer.UNKNOWN},
        errors=("no JSON object",),
    ),
    Case(
        "not a plate reading",
        '{"person":"yes","people":1,"vehicle":"yes","kind":"car","plate":"京A12345（蓝）","color":"blue",'
        '"rows":1,"face":"yes","licence_face":"yes","same":"yes"}',
        {"plate": None, "raw": "京A12345（蓝）", "known": Answer.UNKNOWN, "color": PlateColor.BLUE},
        errors=("plate: '京A12345（蓝）' is not a plate reading",),
    ),
    Case(
        "a reading of no known shape is kept and flagged by the grammar",
        '{"person":"yes","people":1,"vehicle":"yes","kind":"car","plate":"京A1234","color":"blue",'
        '"rows":1,"face":"yes","licence_face":"yes","same":"yes"}',
        {"plate": "京A1234", "known": Answer.NO, "plate_type": None},
    ),
    Case(
        "plate not readable, said in Chinese",
        '{"person":"否","people":0,"vehicle":"是","kind":"小汽车","plate":"看不清","color":"不确定",'
        '"rows":null,"face":"否","licence_face":"是","same":"不确定"}',
        {
            "person": Answer.NO,
            "count": 0,
            "kind": VehicleKind.CAR,
            "plate": None,
            "raw": None,
            "color": PlateColor.UNKNOWN,
            "rows": None,
            "face": Answer.NO,
            "same": Answer.UNKNOWN,
        },
    ),
    Case(
        "traditional characters and lower case",
        '{"person":"yes","people":"两","vehicle":"yes","kind":"bus","plate":"粵b12345","color":"黄色",'
        '"rows":2,"face":"yes","licence_face":"yes","same":"是的。"}',
        {
            "count": 2,
            "kind": VehicleKind.BUS,
            "plate": "粤B12345",
            "color": PlateColor.YELLOW,
            "rows": 2,
            "same": Answer.YES,
        },
    ),
    Case(
        "new-energy plate in the wrong colour",
        '{"person":"yes","people":1,"vehicle":"yes","kind":"car","plate":"沪AD12345","color":"blue",'
        '"rows":1,"face":"yes","licence_face":"yes","same":"yes"}',
        {"plate": "沪AD12345", "plate_type": "new_energy_small", "color": PlateColor.BLUE},
        errors=("color: blue plates are not issued",),
    ),
    Case(
        "two objects: the one that answers wins",
        'Schema: {"type": "object"}\nAnswer: {"person":"no","people":0,"vehicle":"yes","kind":"van",'
        '"plate":null,"color":"unknown","rows":null,"face":"no","licence_face":"yes","same":"unknown"}',
        {"person": Answer.NO, "vehicle": Answer.YES, "kind": VehicleKind.VAN, "plate": None},
    ),
    Case(
        "contradictions are not resolved by guessing",
        '{"person":"no","people":3,"vehicle":"no","kind":"truck","plate":null,"color":"unknown","rows":null,'
        '"face":"no","licence_face":"yes","same":"no"}',
        {"person": Answer.NO, "count": None, "vehicle": Answer.NO, "kind": VehicleKind.UNKNOWN},
        errors=("people: 3 contradicts", "kind: truck contradicts"),
    ),
    Case(
        "Python-style quotes and no licence asked",
        "{'person': 'yes', 'people': 1, 'vehicle': 'yes', 'kind': 'truck', 'plate': '鲁B·A1234', "
        "'color': 'yellow', 'rows': 2, 'face': 'yes', 'same': 'yes'}",
        {
            "person": Answer.YES,
            "plate": "鲁BA1234",
            "known": Answer.YES,
            "rows": 2,
            "same": Answer.UNKNOWN,
            "licence_face": Answer.UNKNOWN,
        },
        task=Task.SCENE_ONLY,
        notes="same is not asked without a licence photo, so the model's 'yes' is ignored",
    ),
]


def _actual(parsed: Any) -> dict[str, Any]:
    return {
        "person": parsed.person.present,
        "count": parsed.person.count,
        "vehicle": parsed.vehicle.present,
        "kind": parsed.vehicle.kind,
        "plate": parsed.plate.text,
        "raw": parsed.plate.raw_text,
        "plate_type": parsed.plate.plate_type,
        "known": parsed.plate.known_format,
        "color": parsed.plate.color,
        "rows": parsed.plate.rows,
        "face": parsed.face.scene_face,
        "licence_face": parsed.face.licence_face,
        "same": parsed.face.same_person,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_answers_parse_to_judgments(case: Case, tokenise: Tokenise) -> None:
    parsed = parse_answer(case.text, case.task, tokens=tokenise(case.text), finished=case.finished)
    actual = _actual(parsed)
    assert {k: actual[k] for k in case.expect} == case.expect
    assert len(parsed.errors) == len(case.errors), parsed.errors
    for prefix in case.errors:
        assert any(e.startswith(prefix) for e in parsed.errors), (prefix, parsed.errors)
    # Answers without the list of plates (written before it) list the one plate read, if any.
    assert parsed.plates == ((parsed.plate,) if parsed.plate.text else ())
    # The MLLM is not asked whether the face is live: it fills the field as unknown.
    assert parsed.face.live is Answer.UNKNOWN and parsed.face.live_score is None
    if parsed.plate.text is not None:
        # Confident tokens give confident characters, one per character of the reading.
        assert parsed.plate.char_confidences is not None
        assert len(parsed.plate.char_confidences) == len(parsed.plate.text)
        assert parsed.plate.confidence == pytest.approx(0.99)


def test_an_answer_with_errors_never_passes(tokenise: Tokenise) -> None:
    text = CASES[3].text  # wrong types
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text))
    from compliance.judgments import Judgments, Provenance

    judgments = Judgments(
        person=parsed.person,
        vehicle=parsed.vehicle,
        plate=parsed.plate,
        face=parsed.face,
        provenance=Provenance(pipeline="mllm", raw_output=text, output_errors=parsed.errors),
    )
    verdict = decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)
    assert verdict.outcome is Outcome.REVIEW
    assert ReasonCode.INVALID_MODEL_OUTPUT in verdict.reasons


def _answer(**changes: Any) -> str:
    import json

    return json.dumps(FULL | changes, ensure_ascii=False)


def test_an_unsure_yes_becomes_unknown(tokenise: Tokenise) -> None:
    text = _answer(same="yes")
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text, low={'"same": "yes"': 0.4}), confidence_min=0.6)
    assert parsed.face.same_person is Answer.UNKNOWN
    assert parsed.person.present is Answer.YES  # the others were sure
    assert any(e.startswith("same: 'yes' at probability 0.40 < 0.60") for e in parsed.doubts) and not parsed.errors

    sure = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text, low={'"same": "yes"': 0.7}), confidence_min=0.6)
    assert sure.face.same_person is Answer.YES and sure.errors == () and sure.doubts == ()


def test_plate_confidence_is_per_character_with_the_weakest_as_the_whole(tokenise: Tokenise) -> None:
    text = _answer(plate="京A12345")
    # The digit 3 is the only doubtful character: one digit is one token in Qwen's pre-tokenizer.
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text, low={"3": 0.55}))
    confidences = parsed.plate.char_confidences
    assert confidences is not None and len(confidences) == 7
    assert confidences[4] == pytest.approx(0.55)
    assert parsed.plate.confidence == pytest.approx(0.55)
    assert all(c == pytest.approx(0.99) for i, c in enumerate(confidences) if i != 4)
    # The plate is kept (the plate check weighs its confidence); nothing else is affected.
    assert parsed.plate.text == "京A12345" and parsed.errors == ()


def test_a_repaired_character_is_as_sure_as_the_model_was_of_what_it_became() -> None:
    text = '{"plate":"京AO1234"}'
    tokens = []
    for char in text:
        if char == "O":
            # The model wrote O (never issued) at 0.7 and gave 0 a probability of 0.2.
            tokens.append(TokenLogprob(b"O", math.log(0.7), ((b"O", math.log(0.7)), (b"0", math.log(0.2)))))
        else:
            raw = char.encode("utf-8")
            tokens.append(TokenLogprob(raw, math.log(0.95), ((raw, math.log(0.95)),)))
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokens)
    assert parsed.plate.text == "京A01234" and parsed.plate.raw_text == "京AO1234"
    assert parsed.plate.char_confidences is not None
    assert parsed.plate.char_confidences[2] == pytest.approx(0.2)
    assert parsed.plate.confidence == pytest.approx(0.2)


def test_a_character_split_over_tokens_takes_the_weakest_token() -> None:
    text = "京"
    raw = text.encode("utf-8")
    tokens = [TokenLogprob(raw[:1], math.log(0.9)), TokenLogprob(raw[1:], math.log(0.3))]
    assert char_probabilities(text, tokens) == [pytest.approx(0.3)]
    # Tokens that do not spell the text give no probabilities at all rather than misplaced ones.
    assert char_probabilities("京A", tokens) is None


def test_without_log_probabilities_every_answer_is_flagged() -> None:
    text = _answer()
    parsed = parse_answer(text, Task.SUBMISSION, tokens=None)
    assert parsed.person.present is Answer.YES  # kept as the model said it ...
    assert parsed.plate.confidence is None  # ... but with no confidence ...
    assert parsed.errors == ("no token log-probabilities: confidence unknown",)  # ... and flagged for review


def test_key_named_in_prose_is_not_taken_for_the_value(tokenise: Tokenise) -> None:
    text = 'I checked "person": maybe later.\n' + _answer()
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text, low={"maybe": 0.1}))
    assert parsed.person.present is Answer.YES and parsed.errors == ()


def test_schema_in_the_prompt_is_generated_from_the_answer_model() -> None:
    import json

    for task in Task:
        schema = answer_schema(task.fields)
        assert json.dumps(schema, ensure_ascii=False, separators=(",", ":")) in instruction(task)
        assert schema["required"] == list(task.fields)
    assert "same" not in answer_schema(Task.SCENE_ONLY.fields)["properties"]
    # Liveness is the baseline's alone: the prompt neither asks for it nor names it.
    for task in Task:
        assert not {"live", "live_score"} & set(answer_schema(task.fields)["properties"])
        assert "live" not in instruction(task).lower() and "spoof" not in instruction(task).lower()


def test_extract_object_ignores_non_objects() -> None:
    assert extract_object("[1, 2, 3]") is None
    assert extract_object("") is None
    assert extract_object('{"person": "yes"}') == {"person": "yes"}


def test_every_listed_plate_is_read_through_the_grammar(tokenise: Tokenise) -> None:
    text = _answer(
        plate="京A12345",
        plates=[
            {"plate": "京A12345", "color": "blue", "rows": 1},
            {"plate": "粤B·D12345", "color": "绿牌", "rows": 1},
            {"plate": "8812345", "color": "white", "rows": 1},  # digits: no repair makes them a plate
            {"plate": "京A1234?", "color": "purple", "rows": 3},
            {"plate": None, "color": "yellow", "rows": 2},
        ],
    )
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text, low={"D": 0.5}))
    main, green, digits, bad, unreadable = parsed.plates
    assert main is parsed.plate and main.text == "京A12345"  # the main plate first, listed once
    assert green.text == "粤BD12345" and green.plate_type == "new_energy_small" and green.color is PlateColor.GREEN
    assert green.char_confidences is not None and len(green.char_confidences) == 8
    assert green.confidence == pytest.approx(0.5)  # its own tokens, not the main plate's
    assert digits.text == "8812345" and digits.known_format is Answer.NO
    # Invalid values are unknown, never invented; each is an error.
    assert bad.text is None and bad.raw_text == "京A1234?" and bad.color is PlateColor.UNKNOWN and bad.rows is None
    assert unreadable.text is None and unreadable.color is PlateColor.YELLOW and unreadable.rows == 2
    assert sorted(e.split(":")[0] for e in parsed.errors) == ["plates[3].color", "plates[3].plate", "plates[3].rows"]


def test_the_main_plate_is_listed_even_when_the_list_forgets_it(tokenise: Tokenise) -> None:
    text = _answer(plate="京A12345", plates=[{"plate": "沪AF71017", "color": "green", "rows": 1}])
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text))
    assert [p.text for p in parsed.plates] == ["京A12345", "沪AF71017"]
    assert parsed.errors == ()


def test_an_empty_list_and_no_plate_read_nothing(tokenise: Tokenise) -> None:
    text = _answer(plate=None, color="unknown", rows=None, plates=[])
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text))
    assert parsed.plates == () and parsed.errors == ()


def test_a_list_that_is_not_a_list_is_an_error(tokenise: Tokenise) -> None:
    text = _answer(plates="京A12345")
    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokenise(text))
    assert parsed.plates == (parsed.plate,)
    assert [e.split(":")[0] for e in parsed.errors] == ["plates"]


# -- a value's confidence is read where the answer writes it, and nowhere else ----------------------
# Each of these passed before (a sure copy elsewhere lent the answer's unsure value its confidence).


def _char_tokens(text: str, unsure: str, occurrence: int = -1, p: float = 0.3) -> tuple[TokenLogprob, ...]:
    """One token per character at 0.99, the ``occurrence``-th (default: last) ``unsure`` at ``p``."""
    starts = [i for i in range(len(text)) if text.startswith(unsure, i)]
    start = starts[occurrence]
    probs = [p if start <= i < start + len(unsure) else 0.99 for i in range(len(text))]
    return tuple(TokenLogprob(c.encode("utf-8"), math.log(q)) for c, q in zip(text, probs, strict=True))


def _decided(text: str, tokens: tuple[TokenLogprob, ...]) -> tuple[Any, Any]:
    from compliance.judgments import Judgments, Provenance, Quality

    parsed = parse_answer(text, Task.SUBMISSION, tokens=tokens)
    judgments = Judgments(
        person=parsed.person,
        vehicle=parsed.vehicle,
        plate=parsed.plate,
        plates=parsed.plates,
        face=parsed.face,
        quality=Quality(blur=200.0, brightness=120.0, width=1280, height=960),
        provenance=Provenance(
            pipeline="mllm", raw_output=text, output_errors=parsed.errors, output_doubts=parsed.doubts
        ),
    )
    return parsed, decide(judgments, thresholds=Thresholds(), registered_plates=["京A12345"], licence_given=True)


def test_the_same_words_in_prose_lend_no_confidence() -> None:
    text = 'I would say "same": "yes".\n' + _answer()
    parsed, verdict = _decided(text, _char_tokens(text, '"yes"}'))
    assert parsed.face.same_person is Answer.UNKNOWN and verdict.outcome is Outcome.REVIEW
    assert any(e.startswith("same: 'yes' at probability 0.30") for e in parsed.doubts)
    assert ReasonCode.MODEL_LOW_CONFIDENCE in verdict.reasons


def test_a_sure_draft_lends_the_answer_no_confidence() -> None:
    text = "Draft: " + _answer() + "\nAnswer: " + _answer()
    parsed, verdict = _decided(text, _char_tokens(text, '"yes"}'))  # the answer's "same", not the draft's
    assert parsed.face.same_person is Answer.UNKNOWN and verdict.outcome is Outcome.REVIEW


def test_a_key_written_twice_is_unknown() -> None:
    text = _answer()[:-1] + ', "same": "yes"}'
    parsed, verdict = _decided(text, _char_tokens(text, '"yes"}'))
    assert parsed.face.same_person is Answer.UNKNOWN and verdict.outcome is Outcome.REVIEW
    assert "same: written 2 times, taken as unknown" in parsed.errors


def test_an_escaped_key_is_read_where_it_is_written() -> None:
    text = "same: yes\n" + _answer().replace('"same"', '"\\u0073ame"')
    parsed, verdict = _decided(text, _char_tokens(text, '"yes"}'))
    assert parsed.face.same_person is Answer.UNKNOWN and verdict.outcome is Outcome.REVIEW


def test_the_plate_in_prose_lends_the_answer_no_confidence() -> None:
    text = "The plate: 京A12345\n" + _answer()
    parsed, verdict = _decided(text, _char_tokens(text, "京A12345"))
    assert parsed.plate.text == "京A12345" and parsed.plate.confidence == pytest.approx(0.3)
    assert verdict.outcome is Outcome.REVIEW and ReasonCode.PLATE_LOW_CONFIDENCE in verdict.reasons


def test_the_main_plate_after_the_list_has_its_own_confidence() -> None:
    listed = [{"plate": "京A12345", "color": "blue", "rows": 1}]
    text = json.dumps({"plates": listed, **FULL}, ensure_ascii=False)
    parsed, verdict = _decided(text, _char_tokens(text, "京A12345"))  # the main plate, written last
    assert parsed.plate.confidence == pytest.approx(0.3) and verdict.outcome is Outcome.REVIEW


@pytest.mark.parametrize("logprob", [math.nan, 0.5, 710.0, math.inf])
def test_a_log_probability_no_model_gives_counts_as_zero(logprob: float) -> None:
    """NaN passed every threshold (no comparison with NaN is true); 710 overflowed exp()."""
    text = _answer()
    same, plate = text.rindex('"yes"}') + 1, text.index("12345")
    broken = set(range(same, same + 3)) | set(range(plate, plate + 5))
    tokens = [
        TokenLogprob(c.encode("utf-8"), logprob if i in broken else math.log(0.99), ((b"0", logprob),))
        for i, c in enumerate(text)
    ]
    parsed, verdict = _decided(text, tuple(tokens))
    assert parsed.face.same_person is Answer.UNKNOWN and verdict.outcome is Outcome.REVIEW
    assert parsed.plate.confidence == 0.0
