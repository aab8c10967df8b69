"""One table of messages: every verdict reason and every precheck problem has its message in
Chinese and in English. A code added without its entry fails here (the branches that add reasons
add their entries at the merge)."""

from __future__ import annotations

import re

import pytest

from compliance.messages import MESSAGES, message
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
