"""The plate grammar: properties over generated plates, and real plates from photos.

Plates are generated from regexes written here from the plate rules, independently of the tables in
``compliance.plates``, so a slip in either shows up as a disagreement.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from compliance import plates
from compliance.judgments import PlateColor
from compliance.plates import PlateMatch, PlateType

P = "[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]"
L = "[A-HJ-NP-Z]"  # no I, no O
A = "[0-9A-HJ-NP-Z]"
D = "[0-9]"

TYPE_REGEX: dict[PlateType, str] = {
    PlateType.STANDARD: f"{P}{L}{A}{{5}}",
    PlateType.NEW_ENERGY_SMALL: f"{P}{L}[ABCDEFGHJK]{A}{D}{{4}}",
    PlateType.NEW_ENERGY_LARGE: f"{P}{L}{D}{{5}}[DF]",
    PlateType.TRAILER: f"{P}{L}{A}{{4}}挂",
    PlateType.LEARNER: f"{P}{L}{A}{{4}}学",
    PlateType.POLICE: f"{P}{L}{A}{{4}}警",
    PlateType.HONG_KONG: f"粤Z{A}{{4}}港",
    PlateType.MACAU: f"粤Z{A}{{4}}澳",
    PlateType.CONSULATE: f"{P}{L}{D}{{4}}领",
    PlateType.EMBASSY: f"使{D}{{6}}|{D}{{6}}使",
    PlateType.ARMED_POLICE: f"WJ{P}?{D}{{4}}[0-9XBTSHDJ]|WJ{D}{{7}}",
    PlateType.MILITARY: f"[QVKHBSLJNGCEZ][A-HJ-PR-VXY]{D}{{5}}",
    PlateType.AGRICULTURAL: f"{P}{D}{{7}}",
    PlateType.LOW_SPEED: f"{P}{L}{D}{{5}}",
}
SHADOWED = {PlateType.LOW_SPEED: PlateType.STANDARD}  # same text, parse names the common type


def plate_of(plate_type: PlateType) -> st.SearchStrategy[str]:
    return st.from_regex(f"(?:{TYPE_REGEX[plate_type]})", fullmatch=True)


any_plate = st.sampled_from(list(PlateType)).flatmap(plate_of)
# Hypothesis finds slow examples on a busy 2-core machine; time is not what these tests are about.
props = settings(deadline=None, max_examples=200)


def test_every_type_has_a_generator() -> None:
    assert set(TYPE_REGEX) == set(PlateType)


@pytest.mark.parametrize("plate_type", list(PlateType))
@given(data=st.data())
@props
def test_generated_plate_parses_as_its_type(plate_type: PlateType, data: st.DataObject) -> None:
    text = data.draw(plate_of(plate_type))
    parsed = plates.parse(text)
    assert parsed.valid
    assert parsed.text == text
    assert parsed.plate_type is SHADOWED.get(plate_type, plate_type)
    assert plate_type in plates.matching_types(text)
    assert parsed.expected_colors
    assert set(text) <= set(plates.CHARSET)
    if text[0] in plates.PROVINCES:
        assert parsed.province == text[0]
    elif text.startswith("WJ") and len(text) == 8:
        assert parsed.province == text[2]
    else:
        assert parsed.province is None


@given(st.text())
@props
def test_normalise_is_idempotent(text: str) -> None:
    once = plates.normalise(text)
    assert plates.normalise(once) == once


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(
    plate=any_plate,
    separator=st.sampled_from(["·", "•", ".", "・", "‧", "-", "_", " ", "\u3000", "．", "－"]),
    at=st.integers(min_value=1, max_value=6),
    wide=st.booleans(),
    lower=st.booleans(),
)
@props
def test_decorated_readings_normalise_to_the_plate(
    plate: str, separator: str, at: int, wide: bool, lower: bool
) -> None:
    reading = f" {plate[:at]}{separator}{plate[at:]} "
    if lower:
        reading = reading.lower()
    if wide:
        reading = full_width(reading)
    assert plates.normalise(reading) == plate
    assert plates.parse(reading).text == plate


@given(any_plate)
@props
def test_repair_leaves_valid_plates_alone(plate: str) -> None:
    assert plates.repair(plate) == plate


@given(plate=any_plate, data=st.data())
@props
def test_repair_undoes_one_illegal_confusable(plate: str, data: st.DataObject) -> None:
    positions = [i for i, c in enumerate(plate) if any(plates.is_confusable(c, t) for t in plates.CHARSET + "IO")]
    assume(positions)
    i = data.draw(st.sampled_from(positions))
    twin = data.draw(st.sampled_from(sorted(t for t in plates.CHARSET + "IO" if plates.is_confusable(plate[i], t))))
    misread = plate[:i] + twin + plate[i + 1 :]
    assume(not plates.parse(misread).valid)  # the twin cannot stand there in any plate

    neighbours = plates.confusable_variants(misread)
    assert plate in neighbours
    repaired = plates.repair(misread)
    if neighbours == [plate]:
        assert repaired == plate
    else:  # several plates one swap away: either a table-order pick among them, or left alone
        assert repaired in [*neighbours, misread]


@given(any_plate)
@props
def test_confusable_variants_are_valid_and_confusable(plate: str) -> None:
    for variant in plates.confusable_variants(plate):
        assert plates.parse(variant).valid
        comparison = plates.compare(variant, plate)
        assert comparison.match is PlateMatch.CONFUSABLE
        assert len(comparison.positions) == 1


@given(
    plate=any_plate,
    edits=st.lists(st.tuples(st.integers(0, 8), st.sampled_from(plates.CHARSET + "IO?")), max_size=3),
    truncate=st.booleans(),
)
@props
def test_compare_is_symmetric(plate: str, edits: list[tuple[int, str]], truncate: bool) -> None:
    other = list(plate)
    for i, char in edits:
        other[i % len(other)] = char
    other_text = "".join(other)[: -1 if truncate else None]
    forward, backward = plates.compare(plate, other_text), plates.compare(other_text, plate)
    assert forward == backward
    if forward.match is PlateMatch.EXACT:
        assert plates.normalise(plate) == plates.normalise(other_text)
    if forward.match is PlateMatch.CONFUSABLE:
        assert 1 <= len(forward.positions) <= plates.MAX_CONFUSABLE


@given(st.sampled_from(plates.CHARSET + "IO"), st.sampled_from(plates.CHARSET + "IO"))
def test_is_confusable_is_symmetric_and_irreflexive(a: str, b: str) -> None:
    assert plates.is_confusable(a, b) == plates.is_confusable(b, a)
    assert not plates.is_confusable(a, a)


# Plates read off real photos in the dev set, with the background colour the labeller saw.
REAL = [
    ("皖A195K9", PlateType.STANDARD, "皖", "blue"),
    ("沪AF71017", PlateType.NEW_ENERGY_SMALL, "沪", "green"),
    ("粤BFT0939", PlateType.NEW_ENERGY_SMALL, "粤", "green"),
    ("粤BAQ286", PlateType.STANDARD, "粤", "yellow"),
    ("琼A6716学", PlateType.LEARNER, "琼", "yellow"),
    ("鄂F8888警", PlateType.POLICE, "鄂", "white"),
    ("沪A1707领", PlateType.CONSULATE, "沪", "black"),
    ("WJ1693015", PlateType.ARMED_POLICE, None, "white"),
    ("粤ZR066港", PlateType.HONG_KONG, "粤", "black"),
    ("京EA5331", PlateType.STANDARD, "京", "yellow"),
    ("沪AN9241", PlateType.STANDARD, "沪", "yellow"),
]


@pytest.mark.parametrize(("text", "plate_type", "province", "color"), REAL)
def test_real_plates(text: str, plate_type: PlateType, province: str | None, color: str) -> None:
    parsed = plates.parse(text)
    assert (parsed.valid, parsed.plate_type, parsed.province) == (True, plate_type, province)
    assert color in parsed.expected_colors
    assert plates.repair(text) == text


@pytest.mark.parametrize(
    ("text", "plate_type"),
    [
        ("粤B12345D", PlateType.NEW_ENERGY_LARGE),
        ("沪AD12345", PlateType.NEW_ENERGY_SMALL),
        ("粤B1234挂", PlateType.TRAILER),
        ("粤Z1234澳", PlateType.MACAU),
        ("使014578", PlateType.EMBASSY),
        ("123456使", PlateType.EMBASSY),
        ("WJ京12345", PlateType.ARMED_POLICE),
        ("VA12345", PlateType.MILITARY),
        ("KV12345", PlateType.MILITARY),
    ],
)
def test_documented_forms(text: str, plate_type: PlateType) -> None:
    assert plates.parse(text).plate_type is plate_type


@pytest.mark.parametrize(
    "reading",
    [
        "?B2V9L7",  # province character illegible
        "粤B1234567",  # too long for any plate
        "京Z1234港",  # Hong Kong plates are issued in Guangdong only
        "粤BI2345",  # I is never issued
        "沪AD123456",  # new-energy plates have six characters after the authority letter
        "粤B12345X",  # large new-energy plates end in D or F
        "AA12345",  # A is no military series letter
        "粤B1234使",
        "",
    ],
)
def test_unknown_shapes_are_kept_and_flagged(reading: str) -> None:
    parsed = plates.parse(reading)
    assert parsed == plates.PlateParse(plates.normalise(reading), None, None, False)
    assert parsed.text == reading  # already normalised: kept exactly as read
    assert parsed.expected_colors == frozenset()
    assert plates.matching_types(reading) == ()


@pytest.mark.parametrize(
    ("reading", "repaired"),
    [
        ("沪AF7IO17", "沪AF71017"),  # I and O where only digits go
        ("粤8AQ286", "粤BAQ286"),  # a digit where the authority letter goes
        ("琼A67I6学", "琼A6716学"),
        ("WJ1693O15", "WJ1693015"),
        ("粤B012345", "粤BD12345"),  # new-energy D read as 0; beats the tractor reading 粤8012345
        ("粤B·12345d", "粤B12345D"),
        ("沪O12345", "沪O12345"),  # O's twin 0 cannot be an authority letter: left as read
        ("沪AF7IOI7", "沪AF7IOI7"),  # three swaps is a guess, not a repair
        ("粤B1234567", "粤B1234567"),
    ],
)
def test_repair_examples(reading: str, repaired: str) -> None:
    assert plates.repair(reading) == repaired


def test_compare_examples() -> None:
    assert plates.compare("粤b·aq286", "粤BAQ286") == plates.PlateComparison(PlateMatch.EXACT, ())
    assert plates.compare("粤BA0286", "粤BAQ286") == plates.PlateComparison(PlateMatch.CONFUSABLE, (3,))
    assert plates.compare("粤8A0286", "粤BAQ286") == plates.PlateComparison(PlateMatch.CONFUSABLE, (1, 3))
    assert plates.compare("粤8A02B6", "粤BAQ286").match is PlateMatch.MISMATCH  # three swaps
    assert plates.compare("粤BAQ287", "粤BAQ286") == plates.PlateComparison(PlateMatch.MISMATCH, (6,))
    assert plates.compare("粤BAQ28", "粤BAQ286") == plates.PlateComparison(PlateMatch.MISMATCH, (6,))


def test_confusable_variants_example() -> None:
    assert set(plates.confusable_variants("粤BAQ286")) == {
        "粤BA0286",
        "粤BAD286",
        "粤BAQZ86",
        "粤BAQ2B6",
        "粤BAQ28G",
    }


def test_expected_colours_are_plate_colours() -> None:
    names = {c.value for c in PlateColor} - {PlateColor.UNKNOWN.value}
    for plate_type in PlateType:
        parsed = plates.PlateParse("", plate_type, None, True)
        assert parsed.expected_colors and parsed.expected_colors <= names


def test_split_rows() -> None:
    assert plates.split_rows(PlateType.STANDARD) == 2
    assert plates.split_rows(PlateType.AGRICULTURAL) == 3
    assert plates.split_rows(PlateType.HONG_KONG) is None
    assert plates.split_rows(None) is None


def test_dev_set_labels_fit_the_grammar(dev_dir: Path) -> None:
    with (dev_dir / "manifest.csv").open(encoding="utf-8") as f:
        # plate_color reads like "yellow (double-row)": the colour is the first word
        labels = [(r["plate_text"], r["plate_color"].split(" ")[0]) for r in csv.DictReader(f) if r["plate_text"]]
    readable = [(t, c) for t, c in labels if "?" not in t]
    assert readable
    for text, color in readable:
        parsed = plates.parse(text)
        assert parsed.valid, text
        assert not color or color in parsed.expected_colors, (text, color)


@pytest.mark.parametrize("digits", ["8812345", "5512345", "20261105", "082317", "13812345678"])
def test_digits_are_never_repaired_into_a_plate(digits: str) -> None:
    # 8812345 would otherwise become the military plate BB12345: every letter made up.
    assert plates.repair(digits) == digits
    assert not plates.parse(plates.repair(digits)).valid
    assert not plates.plate_like(digits)


@pytest.mark.parametrize("stamp", ["2026年11月05日", "2026-11-05 08:23", "11月05日08时", "08:23:17"])
def test_chinese_and_numeric_date_stamps_are_no_plate(stamp: str) -> None:
    # Watermark cameras write the date in Chinese; only a plate's own suffix (学 警 领 …) ends a plate.
    assert not plates.plate_like(stamp)


@pytest.mark.parametrize("reading", ["B2V9L7", "皖A12", "SN13971", "123456使", "沪AF7IOI7", "1234567学"])
def test_misread_plates_still_look_like_plates(reading: str) -> None:
    assert plates.plate_like(reading)


# The plate grammar as a regular expression (``plates.PATTERN``), which constrained decoding puts in
# the answer schema: it must admit exactly the plates ``parse`` accepts, both as Python reads it and
# as xgrammar (the decoder's engine) compiles it.
_NEAR_PLATE = st.sampled_from(plates.CHARSET + "OI日年月:- 京A")


@pytest.fixture(scope="module")
def plate_matcher() -> object:
    import json

    import xgrammar as xgr

    from compliance.mllm.tiny import build_tokenizer

    tokenizer = build_tokenizer()
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=len(tokenizer)))
    grammar = compiler.compile_json_schema(
        json.dumps({"type": "string", "pattern": plates.PATTERN}), any_whitespace=False
    )

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar)
        return bool(matcher.accept_string(json.dumps(text, ensure_ascii=False)) and matcher.is_completed())

    return accepts


@settings(max_examples=300, deadline=None)
@given(st.from_regex(plates.PATTERN, fullmatch=True))
def test_every_plate_the_pattern_admits_parses_as_a_plate(text: str) -> None:
    parsed = plates.parse(text)
    assert parsed.valid and parsed.text == text
    assert len(text) <= plates.MAX_LENGTH  # the pattern bounds the plate field's length


@settings(max_examples=300, deadline=None)
@given(st.text(_NEAR_PLATE, min_size=0, max_size=10))
def test_the_pattern_refuses_what_the_grammar_rejects(text: str) -> None:
    import re

    assume(plates.normalise(text) == text)  # the pattern reads normalised text, as parse does
    assert (re.fullmatch(plates.PATTERN, text) is not None) is plates.parse(text).valid


@settings(max_examples=200, deadline=None)
@given(st.from_regex(plates.PATTERN, fullmatch=True), st.integers(0, 8), _NEAR_PLATE)
def test_the_decoder_reads_the_pattern_as_the_grammar_does(
    plate_matcher: object, plate: str, at: int, char: str
) -> None:
    """One character changed in a valid plate: xgrammar's compiled pattern accepts it exactly when
    ``parse`` does (the regular-expression dialects of Python and xgrammar could differ)."""
    assert callable(plate_matcher)
    assert plate_matcher(plate)
    mutated = plate[:at] + char + plate[at + 1 :]
    assume(plates.normalise(mutated) == mutated)
    assert plate_matcher(mutated) is plates.parse(mutated).valid


def test_the_pattern_covers_every_plate_type_and_length() -> None:
    import re

    for example in (
        "京A12345",
        "京AD12345",
        "京A12345D",
        "京A1234挂",
        "粤Z1234港",
        "使123456",
        "123456使",
        "WJ京1234X",
        "QA12345",
    ):
        assert re.fullmatch(plates.PATTERN, example), example
    assert plates.MAX_LENGTH == max(len(e) for e in ("WJ1234567", "京AD12345"))
