"""The grammar of mainland Chinese licence plates: parse, repair and compare readings.

Every reader (OCR baseline, multimodal LLM) passes its reading through here, and the checks compare a
reading with a carrier's registered plate through here, so there is one definition of a plate.

A plate is described by a *shape*: a type and one character class per position, written in a small
pattern language (see ``_SHAPES``). Sources: GA 36-2018 (civil plates, new-energy plates), the widely
used plate-keyboard tables for the 2012 military and armed-police series; where a type's format could
not be confirmed the shape is kept minimal and says so. A reading that fits no shape is kept as read
and flagged (``plate_type=None``, ``valid=False``), never forced into a known shape.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from compliance.judgments import PlateColor

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# I and O are never issued: they read as 1 and 0.
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
ALNUM = LETTERS + DIGITS
_PROVINCE_SET = frozenset(PROVINCES)


class PlateType(StrEnum):
    STANDARD = "standard"
    NEW_ENERGY_SMALL = "new_energy_small"
    NEW_ENERGY_LARGE = "new_energy_large"
    TRAILER = "trailer"
    LEARNER = "learner"
    POLICE = "police"
    HONG_KONG = "hong_kong"
    MACAU = "macau"
    CONSULATE = "consulate"
    EMBASSY = "embassy"
    ARMED_POLICE = "armed_police"
    MILITARY = "military"
    AGRICULTURAL = "agricultural"
    LOW_SPEED = "low_speed"


# Character classes the shapes are written in; any other token is a literal character.
_CLASSES: dict[str, str] = {
    "prov": PROVINCES,
    "auth": LETTERS,  # issuing-authority letter (发牌机关代号)
    "alnum": ALNUM,
    "digit": DIGITS,
    # GA 36-2018: D battery-electric, F other new-energy. When the D/F series ran out the ministry
    # added A/B/C/E (battery-electric) and G/H/J/K (other) for small vehicles.
    "ne_small": "DABCEFGHJK",
    "ne_large": "DF",
    # 2012 military series: service/command letter, then unit letter (which does use O).
    "pla_branch": "QVKHBSLJNGCEZ",
    "pla_unit": "ABCDEFGHJKLMNOPRSTUVXY",
    # Armed police: last character is a digit or a service letter (X fire, B border, T traffic,
    # S forest, H gold, D hydropower, J guard). The letter set is from secondary sources, not a standard.
    "wj_tail": DIGITS + "XBTSHDJ",
}

# Order matters only for ``parse``: the first shape that fits names the type.
_SHAPE_PATTERNS: tuple[tuple[PlateType, str], ...] = (
    (PlateType.STANDARD, "prov auth alnum*5"),  # blue small / yellow large, incl. motorcycles
    (PlateType.NEW_ENERGY_SMALL, "prov auth ne_small alnum digit*4"),
    (PlateType.NEW_ENERGY_LARGE, "prov auth digit*5 ne_large"),
    (PlateType.TRAILER, "prov auth alnum*4 挂"),
    (PlateType.LEARNER, "prov auth alnum*4 学"),
    (PlateType.POLICE, "prov auth alnum*4 警"),
    (PlateType.HONG_KONG, "粤 Z alnum*4 港"),
    (PlateType.MACAU, "粤 Z alnum*4 澳"),
    # Consulate: 3-digit country code + 1-digit serial.
    (PlateType.CONSULATE, "prov auth digit*4 领"),
    # Embassy: 3-digit country code + 3-digit serial; 使 leads on the older plates, trails on the 2017 ones.
    (PlateType.EMBASSY, "使 digit*6"),
    (PlateType.EMBASSY, "digit*6 使"),
    # Armed police: 2012 series with the province, units directly under headquarters without it, and
    # the older all-digit series (e.g. WJ1693015). Layouts from secondary sources.
    (PlateType.ARMED_POLICE, "W J prov digit*4 wj_tail"),
    (PlateType.ARMED_POLICE, "W J digit*4 wj_tail"),
    (PlateType.ARMED_POLICE, "W J digit*7"),
    (PlateType.MILITARY, "pla_branch pla_unit digit*5"),
    # Tractor plates (NY 345): province + 2-digit area code + 5-digit serial. Not confirmed from the
    # standard's text; kept minimal.
    (PlateType.AGRICULTURAL, "prov digit*7"),
    # Low-speed vehicles (GA 36 低速车号牌, yellow, double-row): province + authority + 5-digit serial,
    # the same text as a standard plate, so it never wins ``parse``; ``matching_types`` still names it.
    (PlateType.LOW_SPEED, "prov auth digit*5"),
)

_COLORS: dict[PlateType, tuple[PlateColor, ...]] = {
    PlateType.STANDARD: (PlateColor.BLUE, PlateColor.YELLOW),
    PlateType.NEW_ENERGY_SMALL: (PlateColor.GREEN,),
    PlateType.NEW_ENERGY_LARGE: (PlateColor.YELLOW, PlateColor.GREEN),  # yellow-green two-tone
    PlateType.TRAILER: (PlateColor.YELLOW,),
    PlateType.LEARNER: (PlateColor.YELLOW,),
    PlateType.POLICE: (PlateColor.WHITE,),
    PlateType.HONG_KONG: (PlateColor.BLACK,),
    PlateType.MACAU: (PlateColor.BLACK,),
    PlateType.CONSULATE: (PlateColor.BLACK,),
    PlateType.EMBASSY: (PlateColor.BLACK,),
    PlateType.ARMED_POLICE: (PlateColor.WHITE,),
    PlateType.MILITARY: (PlateColor.WHITE,),
    PlateType.AGRICULTURAL: (PlateColor.GREEN,),  # green with white characters; unconfirmed
    PlateType.LOW_SPEED: (PlateColor.YELLOW,),
}

# Characters on the top row of a type's double-row plate (large vehicles, motorcycles, tractors).
# Types missing here are single-row only, or their double-row layout is not confirmed (armed police).
_TOP_ROW: dict[PlateType, int] = {
    PlateType.STANDARD: 2,
    PlateType.NEW_ENERGY_LARGE: 2,
    PlateType.TRAILER: 2,
    PlateType.LEARNER: 2,
    PlateType.POLICE: 2,
    PlateType.MILITARY: 2,
    PlateType.AGRICULTURAL: 3,
    PlateType.LOW_SPEED: 2,
}

# What OCR mixes up on plate fonts. O and I are never issued on civil plates, so O->0 and I->1.
_CONFUSABLE_PAIRS = ("0D", "0Q", "DQ", "8B", "1I", "2Z", "5S", "6G", "0O")
# A repair or a CONFUSABLE match may change at most this many characters.
MAX_CONFUSABLE = 2

# Separators readers put between the authority letter and the serial, or anywhere.
_SEPARATORS = frozenset("·•.・‧∙⋅-‐‑–—_")
# Traditional forms of plate characters, which readers trained on HK/TW text emit.
_TRADITIONAL = str.maketrans("滬魯蘇贛貴粵遼陝閩雲寧瓊晉掛學領", "沪鲁苏赣贵粤辽陕闽云宁琼晋挂学领")


@dataclass(frozen=True)
class _Shape:
    plate_type: PlateType
    classes: tuple[str, ...]

    def fits(self, text: str) -> bool:
        if len(text) != len(self.classes):
            return False
        return all(c in allowed for c, allowed in zip(text, self.classes, strict=True))

    def province(self, text: str) -> str | None:
        for char, allowed in zip(text, self.classes, strict=False):
            if set(allowed) <= _PROVINCE_SET:  # the class, or a literal like 粤 on Hong Kong plates
                return char
        return None


def _compile(plate_type: PlateType, pattern: str) -> _Shape:
    classes: list[str] = []
    for token in pattern.split():
        name, _, count = token.partition("*")
        allowed = _CLASSES.get(name, name)
        classes.extend([allowed] * int(count or 1))
    return _Shape(plate_type, tuple(classes))


_SHAPES = tuple(_compile(t, p) for t, p in _SHAPE_PATTERNS)

_CONFUSABLE: dict[str, frozenset[str]] = {
    char: frozenset(other for pair in _CONFUSABLE_PAIRS if char in pair for other in pair if other != char)
    for char in "".join(_CONFUSABLE_PAIRS)
}

# The Chinese characters a plate ends with (挂 学 警 领 港 澳 使): a date's 日 is none of them.
_SUFFIXES = frozenset(s.classes[-1] for s in _SHAPES if len(s.classes[-1]) == 1 and not s.classes[-1].isascii())

# Every character some plate can carry, for filtering a recogniser's alphabet.
CHARSET = "".join(dict.fromkeys(PROVINCES + DIGITS + "".join(s for shape in _SHAPES for s in shape.classes)))


def _regex_class(allowed: str) -> str:
    """One position as a regular expression: a literal, or a class with runs of consecutive
    characters written as ranges (A-H J-N P-Z), so that the pattern stays short."""
    if len(allowed) == 1:
        return re.escape(allowed)
    points = sorted(set(map(ord, allowed)))
    runs: list[list[int]] = []
    for point in points:
        if runs and point == runs[-1][-1] + 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    parts = [chr(r[0]) + ("-" if len(r) > 2 else "") + chr(r[-1]) if len(r) > 1 else chr(r[0]) for r in runs]
    return "[" + "".join(p if len(p) > 1 else re.escape(p) for p in parts) + "]"


def _shape_regex(shape: _Shape) -> str:
    pieces = [(key, len(list(group))) for key, group in itertools.groupby(shape.classes)]
    return "".join(_regex_class(allowed) + (f"{{{count}}}" if count > 1 else "") for allowed, count in pieces)


# Every plate the grammar accepts, as one regular expression over the normalised text: what a
# grammar-constrained decoder lets a model write in a plate field (``mllm.answer``). Generated from
# the shapes, so there is one definition of a plate.
PATTERN = "^(?:" + "|".join(dict.fromkeys(_shape_regex(shape) for shape in _SHAPES)) + ")$"
# The longest plate, in characters.
MAX_LENGTH = max(len(shape.classes) for shape in _SHAPES)


def normalise(text: str) -> str:
    """Half-width, upper case, no separators or spaces; Chinese characters kept (simplified)."""
    # Dropping a space can leave a combining mark next to a letter that NFKC then composes, and
    # upper-casing can decompose: repeat until nothing changes, so that normalising is idempotent.
    for _ in range(8):
        folded = unicodedata.normalize("NFKC", text).upper().translate(_TRADITIONAL)
        folded = "".join(c for c in folded if c not in _SEPARATORS and not c.isspace())
        if folded == text:
            break
        text = folded
    return text


@dataclass(frozen=True)
class PlateParse:
    text: str
    plate_type: PlateType | None
    province: str | None
    valid: bool

    @property
    def expected_colors(self) -> frozenset[str]:
        """Background colours (PlateColor values) this type is issued in; empty when the type is unknown."""
        if self.plate_type is None:
            return frozenset()
        return frozenset(c.value for c in _COLORS[self.plate_type])


def parse(text: str) -> PlateParse:
    norm = normalise(text)
    for shape in _SHAPES:
        if shape.fits(norm):
            return PlateParse(norm, shape.plate_type, shape.province(norm), True)
    return PlateParse(norm, None, None, False)


def plate_like(text: str) -> bool:
    """Whether a reading that fits no shape could still be a misread plate rather than other text.

    Every shape puts a province, a letter or 使 in its first two places, or a Chinese suffix last; a
    reading with digits there and no such suffix (a date stamp, a clock, a phone number) is no plate.
    """
    norm = normalise(text)
    return bool(norm) and (any(not c.isdigit() for c in norm[:2]) or norm[-1] in _SUFFIXES)


def matching_types(text: str) -> tuple[PlateType, ...]:
    """Every type whose shape the reading fits (a low-speed plate also fits the standard shape)."""
    norm = normalise(text)
    return tuple(dict.fromkeys(s.plate_type for s in _SHAPES if s.fits(norm)))


def split_rows(plate_type: PlateType | None) -> int | None:
    """How many leading characters sit on the top row of this type's double-row plate; None if it has none."""
    return None if plate_type is None else _TOP_ROW.get(plate_type)


def is_confusable(a: str, b: str) -> bool:
    """Whether two different single characters are ones OCR mistakes for each other on plates."""
    return b in _CONFUSABLE.get(a, frozenset())


def repair(text: str) -> str:
    """Swap confusable characters where a shape forbids them, if that gives one valid plate.

    A character is only replaced where it cannot stand (a letter where only digits go, O/I anywhere
    civil) by its confusable twin that can, at most ``MAX_CONFUSABLE`` of them; the fewest replacements
    win. When plates of different types tie, the type earlier in the table wins (new-energy before
    tractor: 粤B012345 is read 粤BD12345, not 粤8012345). Anything else (two plates of one type, no
    fit) returns the normalised reading unchanged.
    """
    norm = normalise(text)
    if parse(norm).valid:
        return norm
    best: dict[PlateType, set[str]] = {}
    best_cost = MAX_CONFUSABLE
    for shape in _SHAPES:
        fitted = _fit(norm, shape)
        if fitted is None or fitted[0] > best_cost:
            continue
        cost, candidates = fitted
        if cost < best_cost:
            best, best_cost = {}, cost
        best.setdefault(shape.plate_type, set()).update(candidates)
    if not best:
        return norm
    first = next(iter(best.values()))  # dicts keep insertion order, which is table order
    if len(first) != 1:
        return norm
    repaired = first.pop()
    # A repair fixes a few characters of what was read as a plate; it never makes up all of its
    # letters: a date or a phone number (20261105, 5201314) would otherwise become a military plate.
    if not any(r == c and not c.isdigit() for r, c in zip(repaired, norm, strict=True)):
        return norm
    return repaired


def _fit(text: str, shape: _Shape) -> tuple[int, set[str]] | None:
    """The plates ``shape`` allows that differ from ``text`` only by confusables where it forbids them."""
    if len(text) != len(shape.classes):
        return None
    options: list[tuple[str, ...]] = []
    for char, allowed in zip(text, shape.classes, strict=False):
        if char in allowed:
            options.append((char,))
            continue
        twins = tuple(sorted(t for t in _CONFUSABLE.get(char, ()) if t in allowed))
        if not twins:
            return None
        options.append(twins)
    cost = sum(1 for o, c in zip(options, text, strict=False) if o != (c,))
    return cost, {"".join(chars) for chars in itertools.product(*options)}


class PlateMatch(StrEnum):
    EXACT = "exact"
    CONFUSABLE = "confusable"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class PlateComparison:
    match: PlateMatch
    positions: tuple[int, ...]  # where the normalised texts differ (past the shorter one's end too)


def compare(read: str, registered: str) -> PlateComparison:
    a, b = normalise(read), normalise(registered)
    length = max(len(a), len(b))
    positions = tuple(i for i in range(length) if i >= len(a) or i >= len(b) or a[i] != b[i])
    if not positions:
        return PlateComparison(PlateMatch.EXACT, ())
    near = len(a) == len(b) and len(positions) <= MAX_CONFUSABLE and all(is_confusable(a[i], b[i]) for i in positions)
    return PlateComparison(PlateMatch.CONFUSABLE if near else PlateMatch.MISMATCH, positions)


def confusable_variants(text: str) -> list[str]:
    """Every valid plate one confusable substitution away from the (normalised) reading."""
    norm = normalise(text)
    variants: dict[str, None] = {}
    for i, char in enumerate(norm):
        for twin in sorted(_CONFUSABLE.get(char, ())):
            candidate = norm[:i] + twin + norm[i + 1 :]
            if parse(candidate).valid:
                variants[candidate] = None
    return list(variants)


def distinct_variants(text: str) -> list[str]:
    """Every valid plate of the same type that differs from the (normalised) reading in one
    character that does not look like the one it replaces: a plate no misread explains."""
    norm = normalise(text)
    parsed = parse(norm)
    if not parsed.valid:
        return []
    variants: dict[str, None] = {}
    for i, char in enumerate(norm):
        for other in PROVINCES + ALNUM:
            if other == char or is_confusable(char, other):
                continue
            candidate = norm[:i] + other + norm[i + 1 :]
            if parse(candidate).plate_type is parsed.plate_type:
                variants[candidate] = None
    return list(variants)
