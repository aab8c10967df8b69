"""One table of messages: every verdict reason and every precheck problem has its message in
Chinese and in English. A code added without its entry fails here (the branches that add reasons
add their entries at the merge)."""

from __future__ import annotations

import re

import pytest

from compliance.messages import MAX_RANGES, MESSAGES, Language, in_both, message, messages, negotiate
from compliance.prechecks import PrecheckCode
from compliance.verdicts import ReasonCode

HAN = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("code", [*ReasonCode, *PrecheckCode], ids=str)
def test_every_code_has_both_languages(code: str) -> None:
    entry = MESSAGES.get(code)
    assert entry is not None, f"{code} has no entry in compliance/messages.py"
    assert HAN.search(entry.zh), f"{code}: the Chinese message holds no Chinese: {entry.zh!r}"
    assert entry.en.strip() and entry.en.isascii() and not HAN.search(entry.en), f"{code}: {entry.en!r}"
    assert message(code, "zh") == entry.zh and message(code, "en") == entry.en


def test_the_table_holds_only_known_codes_and_the_two_sets_do_not_collide() -> None:
    reasons, prechecks = {c.value for c in ReasonCode}, {c.value for c in PrecheckCode}
    assert not reasons & prechecks, "a precheck code that reads as a verdict's reason would be ambiguous"
    assert set(MESSAGES) == reasons | prechecks
    assert message("NOT_A_CODE") == "NOT_A_CODE"


@pytest.mark.parametrize(
    ("header", "default", "chosen"),
    [
        (None, "en", "en"),
        ("", "zh", "zh"),
        ("zh", "en", "zh"),
        ("zh-CN", "en", "zh"),
        ("ZH-cn", "en", "zh"),  # tags are case-insensitive
        ("zh_CN", "en", "zh"),  # a common slip for zh-CN
        ("zh-Hans;q=0.9, en;q=0.8", "en", "zh"),
        ("zh-TW", "en", "zh"),  # Simplified Chinese reads better to him than English
        ("en-US,en;q=0.9,zh-CN;q=0.8", "zh", "en"),
        ("en; q=0.5, zh; q=0.7", "en", "zh"),  # by weight, not by place
        ("de, zh;q=0.5", "en", "zh"),
        ("zh;q=0, en", "zh", "en"),  # q=0: not acceptable
        ("de", "zh", "zh"),
        ("fr;q=1, *;q=0.3", "en", "en"),
        ("en;q=abc, zh;q=0.2", "en", "zh"),  # a malformed weight is no preference
        ("x-klingon, zh;q=0.1", "en", "zh"),
    ],
)
def test_accept_language_is_negotiated(header: str | None, default: Language, chosen: Language) -> None:
    assert negotiate(header, default) == chosen


def test_a_long_header_is_read_only_so_far() -> None:
    header = ", ".join(["de"] * MAX_RANGES + ["zh"])
    assert negotiate(header) == "en"
    assert negotiate(", ".join(["de"] * (MAX_RANGES - 1) + ["zh"])) == "zh"


def test_both_languages_in_the_codes_order() -> None:
    codes = ["PLATE_MISMATCH", "FACE_UNCERTAIN"]
    assert messages(codes, "zh") == [MESSAGES[c].zh for c in codes]
    assert in_both(codes) == {"zh-CN": messages(codes, "zh"), "en": messages(codes, "en")}
    assert in_both([]) == {"zh-CN": [], "en": []}
