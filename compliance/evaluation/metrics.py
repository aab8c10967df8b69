"""Pure metric functions over what pipelines answered; no models here."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from compliance.verdicts import Outcome


def rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def grouped_rate(pairs: Iterable[tuple[str, bool]]) -> dict[str, float]:
    """Hit rate per group, e.g. per plate colour or province."""
    hits: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for group, hit in pairs:
        totals[group] += 1
        hits[group] += hit
    return {g: hits[g] / totals[g] for g in sorted(totals)}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def tar_at_far(genuine: Sequence[float | None], impostor: Sequence[float | None], far: float) -> float | None:
    """True-accept rate at the strictest threshold whose false-accept rate is at most ``far``.

    A pair with no similarity (no face found) is a reject on both sides.
    """
    if not genuine or not impostor:
        return None
    scores = sorted((s for s in impostor if s is not None), reverse=True)
    allowed = math.floor(far * len(impostor) + 1e-9)  # impostors that may be accepted
    # Accept strictly above the (allowed+1)-th highest impostor score.
    threshold = scores[allowed] if allowed < len(scores) else -math.inf
    return sum(1 for s in genuine if s is not None and s > threshold) / len(genuine)


OUTCOMES = (Outcome.PASS, Outcome.REVIEW, Outcome.FAIL)


def confusion(pairs: Iterable[tuple[Outcome, Outcome]]) -> dict[str, dict[str, int]]:
    """expected -> got -> count, all cells present."""
    table = {e.value: {g.value: 0 for g in OUTCOMES} for e in OUTCOMES}
    for expected, got in pairs:
        table[expected.value][got.value] += 1
    return table
