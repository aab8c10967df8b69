"""The schema a constrained decoder enforces (``decoding_schema``): every value closed or bounded,
each plate under the plate grammar, and a byte bound on the whole answer that a token limit can trust."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from compliance import plates
from compliance.mllm.answer import answer_schema, compact_json, decoding_schema, longest_answer_bytes
from compliance.mllm.prompt import Task


def _nodes(node: Any, path: str = "$") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _nodes(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _nodes(value, f"{path}[{i}]")


@pytest.mark.parametrize("task", list(Task))
def test_every_value_is_closed_or_bounded(task: Task) -> None:
    schema = decoding_schema(task.fields)
    for path, node in _nodes(schema):
        kind = node.get("type")
        if "enum" in node:
            continue
        if kind == "string":
            # A length, or the plate pattern, which is its own bound (anchored, no repetition without one).
            assert "maxLength" in node or node.get("pattern") == plates.PATTERN, path
        elif kind == "integer":
            assert "minimum" in node and "maximum" in node, path
        elif kind == "array":
            assert "maxItems" in node, path
        elif kind == "object":
            assert node.get("additionalProperties") is False and set(node["required"]) == set(node["properties"]), path
    assert longest_answer_bytes(schema) < 1024


def test_every_plate_is_under_the_plate_grammar() -> None:
    schema = decoding_schema(Task.SUBMISSION.fields)
    plate = schema["properties"]["plate"]
    listed = schema["properties"]["plates"]["items"]["properties"]["plate"]
    for field in (plate, listed):
        strings = [b for b in field["anyOf"] if b["type"] == "string"]
        assert strings == [{"type": "string", "pattern": plates.PATTERN}]
        assert {"type": "null"} in field["anyOf"]
    # The prompt's schema stays short: the model reads the plate's description, not the pattern.
    assert plates.PATTERN not in compact_json(answer_schema(Task.SUBMISSION.fields))


def test_the_byte_bound_holds_for_the_longest_answer() -> None:
    widest_plate = max((p for p in ("粤Z1234港", "WJ京1234X", "京AD12345", "WJ1234567")), key=lambda p: len(p.encode()))
    assert re.fullmatch(plates.PATTERN, widest_plate)
    listed = {"plate": widest_plate, "color": "unknown", "rows": None}
    answer = {
        "person": "unknown",
        "people": 20,
        "vehicle": "unknown",
        "kind": "motorcycle",
        "plate": widest_plate,
        "color": "unknown",
        "rows": None,
        "plates": [listed] * 8,
        "face": "unknown",
        "licence_face": "unknown",
        "same": "unknown",
    }
    written = len(compact_json(answer).encode())
    assert written <= longest_answer_bytes(decoding_schema(Task.SUBMISSION.fields))
    with pytest.raises(ValueError, match="no bound"):
        longest_answer_bytes({"type": "string"})
    assert json.loads(compact_json(answer)) == answer
