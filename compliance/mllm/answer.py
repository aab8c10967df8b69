"""The answer a multimodal LLM gives for one submission: one pydantic model, the single source of
the JSON schema shown in the prompt, sent as a server's response format, and validated against.

Keys are short because output tokens dominate the GPU cost; the descriptions carry the meaning.
Values a model writes in Chinese ("是", "蓝牌", "货车") or in other common spellings are mapped to the
schema's values before validation; anything else fails validation (and becomes unknown later).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

from compliance import plates
from compliance.judgments import Answer, PlateColor, VehicleKind

YES, NO, UNKNOWN = Answer.YES.value, Answer.NO.value, Answer.UNKNOWN.value

# Trailing punctuation and the words models wrap a value in ("是的。", "yes.", "蓝色车牌").
_TRIM = " \t\r\n.。!！,，;；:：\"'“”‘’"


def _key(value: str) -> str:
    return value.strip(_TRIM).lower()


def _synonyms(table: dict[str, Iterable[str]]) -> dict[str, str]:
    return {_key(word): value for value, words in table.items() for word in (value, *words)}


_ANSWERS = _synonyms(
    {
        YES: ("y", "true", "是", "是的", "有", "对", "存在", "可见", "相同", "同一人", "一致"),
        NO: ("n", "false", "否", "不是", "无", "没有", "不存在", "不可见", "不同", "不一致", "不相同"),
        UNKNOWN: (
            "unsure",
            "uncertain",
            "not sure",
            "unclear",
            "不确定",
            "未知",
            "无法判断",
            "无法确定",
            "看不清",
            "不清楚",
        ),
    }
)
_KINDS = _synonyms(
    {
        VehicleKind.CAR: (
            "sedan",
            "suv",
            "taxi",
            "automobile",
            "小汽车",
            "轿车",
            "汽车",
            "小客车",
            "小型汽车",
            "私家车",
            "出租车",
        ),
        VehicleKind.VAN: ("minivan", "minibus", "面包车", "厢式车", "商务车"),
        VehicleKind.TRUCK: (
            "lorry",
            "pickup",
            "pickup truck",
            "货车",
            "卡车",
            "大货车",
            "重型货车",
            "轻型货车",
            "皮卡",
            "牵引车",
            "货运车",
        ),
        VehicleKind.BUS: ("coach", "客车", "大巴", "公交车", "巴士", "大客车"),
        VehicleKind.MOTORCYCLE: ("motorbike", "scooter", "摩托车", "摩托"),
        VehicleKind.TRAILER: ("semi-trailer", "semitrailer", "挂车", "半挂车"),
        VehicleKind.UNKNOWN: ("none", "no vehicle", "不确定", "未知", "无", "没有"),
    }
)
_COLORS = _synonyms(
    {
        PlateColor.BLUE: ("蓝", "蓝色", "蓝牌", "蓝底", "蓝底白字"),
        PlateColor.YELLOW: ("黄", "黄色", "黄牌", "黄底", "黄底黑字"),
        # Large new-energy plates are yellow-green; the grammar accepts green for them.
        PlateColor.GREEN: ("绿", "绿色", "绿牌", "新能源", "渐变绿", "黄绿", "yellow-green", "yellow green"),
        PlateColor.WHITE: ("白", "白色", "白牌", "白底"),
        PlateColor.BLACK: ("黑", "黑色", "黑牌", "黑底"),
        PlateColor.UNKNOWN: ("none", "不确定", "未知", "无", "看不清"),
    }
)
_ROWS = _synonyms(
    {"1": ("one", "single", "单层", "单行", "一行", "一"), "2": ("two", "double", "双层", "双行", "两行", "二", "两")}
)
# A plate value that says "no plate read" rather than being a reading.
NO_PLATE = frozenset(
    _key(w)
    for w in (
        "",
        "none",
        "null",
        "n/a",
        "na",
        "unknown",
        "unreadable",
        "无",
        "没有",
        "未知",
        "看不清",
        "无法识别",
        "不可见",
        "不清楚",
    )
)
_CHINESE_NUMBERS = {
    "零": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}


def _mapped(table: dict[str, str]) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return table.get("true" if value else "false", value)
        if value is None:
            return table.get("unknown", value)
        if isinstance(value, (int, float)):
            value = str(int(value)) if float(value).is_integer() else str(value)
        return table.get(_key(value), value) if isinstance(value, str) else value

    return BeforeValidator(convert)


def _count(value: Any) -> Any:
    # bool is an int to Python and to pydantic's lax mode; a count of True is not a count.
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        word = _key(value)
        word = re.sub(r"(个人|个|人|people|persons?)$", "", word).strip()
        return _CHINESE_NUMBERS.get(word, word)
    return value


def _rows(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value)
    mapped = _mapped(_ROWS).func(value)  # type: ignore[attr-defined]
    return int(mapped) if isinstance(mapped, str) and mapped in ("1", "2") else mapped


def _plate(value: Any) -> Any:
    if isinstance(value, str) and _key(value) in NO_PLATE:
        return None
    return value


YesNo = Annotated[Literal["yes", "no", "unknown"], _mapped(_ANSWERS)]
Kind = Annotated[Literal[tuple(k.value for k in VehicleKind)], _mapped(_KINDS)]  # type: ignore[valid-type]
Color = Annotated[Literal[tuple(c.value for c in PlateColor)], _mapped(_COLORS)]  # type: ignore[valid-type]
PlateText = Annotated[str | None, BeforeValidator(_plate)]
Rows = Annotated[Literal[1, 2] | None, BeforeValidator(_rows)]


class SeenPlate(BaseModel):
    """One plate in view, in the main plate's words (validated field by field as they are)."""

    model_config = ConfigDict(extra="ignore")

    plate: PlateText = Field(max_length=16, description="every character as printed; null if unreadable")
    color: Color = Field(description="background colour")
    rows: Rows = Field(description="lines of characters")


class MllmAnswer(BaseModel):
    """What the model answers about one submission. Every field is required: a missing one is an error."""

    model_config = ConfigDict(extra="ignore")

    person: YesNo = Field(description="a person is in the scene photo")
    people: Annotated[int | None, BeforeValidator(_count)] = Field(
        ge=0, le=20, description="number of people in the scene photo; null if unsure"
    )
    vehicle: YesNo = Field(description="a motor vehicle is in the scene photo")
    kind: Kind = Field(description="kind of the nearest vehicle")
    plate: PlateText = Field(
        max_length=16,
        description="the nearest vehicle's plate, every character as printed, e.g. 京A12345; null if unreadable",
    )
    color: Color = Field(description="that plate's background colour")
    rows: Rows = Field(description="lines of characters on that plate")
    # Optional when parsing: answers from before the list parse as they did (see OPTIONAL_FIELDS).
    plates: list[SeenPlate] = Field(
        max_length=8, description="every plate visible in the scene photo, nearest first; [] if none"
    )
    face: YesNo = Field(description="a person's face is clearly visible in the scene photo")
    licence_face: YesNo = Field(description="a face is visible on the licence photo")
    same: YesNo = Field(description="the face in the scene photo and the face on the licence are the same person")


FIELDS: tuple[str, ...] = tuple(MllmAnswer.model_fields)
# Fields whose absence is no error: added after models and stored answers that lack them.
OPTIONAL_FIELDS = frozenset({"plates"})
SEEN_PLATE_FIELDS: tuple[str, ...] = tuple(SeenPlate.model_fields)
# Fields that need the licence photo: not asked when there is none.
LICENCE_FIELDS = frozenset({"licence_face", "same"})
FACE_FIELDS = ("face", "licence_face", "same")


@cache
def field_adapter(name: str) -> TypeAdapter[Any]:
    """Validates one field alone, so that one bad value costs that field only."""
    info = MllmAnswer.model_fields[name]
    return TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[name-defined]


@cache
def seen_plate_adapter(name: str) -> TypeAdapter[Any]:
    """Validates one field of one listed plate alone."""
    info = SeenPlate.model_fields[name]
    return TypeAdapter(Annotated[info.annotation, *info.metadata])  # type: ignore[name-defined]


@cache
def _full_schema() -> dict[str, Any]:
    schema = MllmAnswer.model_json_schema()
    return _without_titles(_inlined(schema, schema.pop("$defs", {})))


def _inlined(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its ``$ref``s replaced by their definitions, so that any field's schema stands alone."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inlined(v, defs) for v in node]
    return node


def answer_schema(fields: Iterable[str]) -> dict[str, Any]:
    """The JSON schema of the answer, restricted to ``fields`` (in the model's order)."""
    wanted = set(fields)
    full = _full_schema()
    names = [n for n in FIELDS if n in wanted]
    return {
        "type": "object",
        "properties": {n: full["properties"][n] for n in names},
        "required": names,
        "additionalProperties": False,
    }


def decoding_schema(fields: Iterable[str]) -> dict[str, Any]:
    """``answer_schema`` with what a constrained decoder enforces and a prompt need not spell out:
    every plate under the plate grammar's pattern (``plates.PATTERN``) and no longer than the
    longest plate, and no key beyond the schema's in a listed plate. Every value is then an enum, a
    bounded number, a bounded list or a bounded string, so the answer ends where the grammar ends
    (``longest_answer_bytes``)."""
    return _decodable(answer_schema(fields))


# No maxLength beside the pattern: the pattern bounds the length itself (``plates.MAX_LENGTH``), and
# xgrammar ignores a length beside a pattern, so vLLM refuses the pair on its xgrammar backend.
_PLATE_STRING = {"type": "string", "pattern": plates.PATTERN}
# Patterns whose every match is at most this many characters.
_PATTERN_LENGTH = {plates.PATTERN: plates.MAX_LENGTH}


def _decodable(node: Any, key: str | None = None) -> Any:
    if isinstance(node, list):
        return [_decodable(v) for v in node]
    if not isinstance(node, dict):
        return node
    if key == "plate" and "anyOf" in node:
        return {**node, "anyOf": [_PLATE_STRING if b.get("type") == "string" else b for b in node["anyOf"]]}
    out = {k: _decodable(v, None) for k, v in node.items() if k != "properties"}
    if "properties" in node:
        out["properties"] = {name: _decodable(value, name) for name, value in node["properties"].items()}
        out["additionalProperties"] = False
    return out


def longest_answer_bytes(schema: dict[str, Any]) -> int:
    """The most UTF-8 bytes a compact JSON value of ``schema`` can take. A decoder writes at least
    one byte per token, so a token limit above this never cuts a constrained answer off. Raises
    ``ValueError`` for an unbounded schema (a string with no length, a list with no size)."""
    if "enum" in schema:
        return max(len(compact_json(v).encode()) for v in schema["enum"])
    if "anyOf" in schema:
        return max(longest_answer_bytes(branch) for branch in schema["anyOf"])
    kind = schema.get("type")
    if kind == "null":
        return len("null")
    if kind == "integer" and "minimum" in schema and "maximum" in schema:
        return max(len(str(schema["minimum"])), len(str(schema["maximum"])))
    if kind == "string" and schema.get("pattern") in _PATTERN_LENGTH:
        return 2 + 4 * _PATTERN_LENGTH[schema["pattern"]]  # quotes; a pattern spells characters, 4 UTF-8 bytes at most
    if kind == "string" and "maxLength" in schema:
        return 2 + 12 * schema["maxLength"]  # quotes; any character, as a \\uXXXX escape pair at worst
    if kind == "array" and "maxItems" in schema:
        count = schema["maxItems"]
        return 2 + count * longest_answer_bytes(schema["items"]) + max(0, count - 1)
    if kind == "object":
        members = schema["properties"]
        inner = sum(len(compact_json(name).encode()) + 1 + longest_answer_bytes(v) for name, v in members.items())
        return 2 + inner + max(0, len(members) - 1)
    raise ValueError(f"no bound on the length of {compact_json(schema)[:80]}")


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _without_titles(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_titles(v) for k, v in node.items() if k != "title"}
    if isinstance(node, list):
        return [_without_titles(v) for v in node]
    return node
