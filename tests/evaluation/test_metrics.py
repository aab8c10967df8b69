"""The metric functions behind `compliance eval`, on numbers worked out by hand."""

from __future__ import annotations

import pytest

from compliance.evaluation.metrics import confusion, grouped_rate, percentile, rate, tar_at_far
from compliance.verdicts import Outcome


def test_rate_and_grouped_rate() -> None:
    assert rate(3, 4) == 0.75
    assert rate(0, 0) is None
    assert grouped_rate([("blue", True), ("blue", False), ("green", True)]) == {"blue": 0.5, "green": 1.0}


def test_percentile_interpolates() -> None:
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 90) == 5
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)


def test_tar_at_far_picks_the_strictest_allowed_threshold() -> None:
    impostor = [0.1] * 98 + [0.5, 0.6]  # 100 impostors, two high ones
    genuine = [0.55, 0.65, 0.7, None]  # None: no face found, a reject
    # FAR 1%: one impostor may pass, so accept above 0.5 -> 0.55, 0.65, 0.7 pass.
    assert tar_at_far(genuine, impostor, 0.01) == 0.75
    # FAR 0.1%: none may pass, so accept above 0.6 -> 0.65, 0.7.
    assert tar_at_far(genuine, impostor, 0.001) == 0.5
    assert tar_at_far([], impostor, 0.01) is None


def test_confusion_has_every_cell() -> None:
    table = confusion([(Outcome.PASS, Outcome.PASS), (Outcome.FAIL, Outcome.REVIEW)])
    assert table["PASS"] == {"PASS": 1, "REVIEW": 0, "FAIL": 0}
    assert table["FAIL"]["REVIEW"] == 1 and sum(table["REVIEW"].values()) == 0
