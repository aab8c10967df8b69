"""The dashboard's Chinese catalogue against the code: every string the code marks has a Chinese
translation with the same placeholders, nothing stale is left in it, and the package build
compiles it. The messages are extracted in-process, as ``pybabel extract -F babel.cfg`` would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from compliance.dashboard import language

REPO = Path(__file__).resolve().parents[1]
PO = REPO / "compliance" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
# Python's %(name)s (and %s, %d) and str.format's {name}; "%%" is a percent sign, not a placeholder.
_PLACEHOLDER = re.compile(r"%\([A-Za-z_]\w*\)[-#0 +]?\d*(?:\.\d+)?[sdifr]|%[sdifr]|\{[A-Za-z_]\w*\}")


def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """Every message the code marks for translation, with where."""
    with (REPO / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str | tuple[str, ...], list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(REPO, method_map, options_map):
        found.setdefault(message, []).append(f"{filename}:{lineno}")
    return found


def catalogue() -> dict[str | tuple[str, ...], object]:
    with PO.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else tuple(m.id): m for m in read_po(handle) if m.id}


def placeholders(text: str) -> list[str]:
    return sorted(_PLACEHOLDER.findall(text.replace("%%", "")))


def test_the_code_marks_the_dashboards_strings() -> None:
    found = extracted()
    # A few from each kind of place: templates, python (form errors, charts), the words tables.
    for text in ("Review queue", "Same person as the licence?", "until is before since", "Top reason codes", "PASS"):
        assert text in found, text
    assert ("%(count)s box", "%(count)s boxes") in found
    assert len(found) > 300


def test_every_string_the_code_marks_has_a_chinese_translation() -> None:
    messages = catalogue()
    untranslated = {}
    for key, where in extracted().items():
        entry = messages.get(key)
        strings = [] if entry is None else [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if entry is None or entry.fuzzy or not all(s.strip() for s in strings):
            untranslated[key] = where[0]
    assert not untranslated, f"not translated in {PO.name}: {untranslated}"


def test_no_translation_changes_the_placeholders() -> None:
    differ = {}
    for key, entry in catalogue().items():
        sources = [key] if isinstance(key, str) else list(key)
        translations = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        for translated in translations:
            # A plural's Chinese (one form) holds the placeholders of the plural source.
            if placeholders(translated) != placeholders(sources[-1]):
                differ[sources[-1]] = translated
    assert not differ, f"placeholders differ from the source: {differ}"


def test_the_catalogue_holds_nothing_the_code_no_longer_says() -> None:
    stale = set(catalogue()) - set(extracted())
    assert not stale, f"in {PO.name} but in no code (remove, or run pybabel update): {stale}"


def test_the_placeholder_check_catches_a_wrong_translation() -> None:
    assert placeholders("%(count)s waiting") != placeholders("等待中")
    assert placeholders("%(count)s waiting") != placeholders("%(total)s 条待审")
    assert placeholders("{name} is here") == placeholders("{name} 在这里")
    assert placeholders("100%% done") == []


def test_the_loaded_catalogue_translates() -> None:
    zh = language.translations("zh-CN")
    assert zh.gettext("Review queue") == "审核队列"
    assert zh.ngettext("%(count)s box", "%(count)s boxes", 2) == "%(count)s 个框"
    assert language.translations("en").gettext("Review queue") == "Review queue"


@pytest.mark.timeout(300)
def test_the_package_build_compiles_the_catalogue(tmp_path: Path) -> None:
    """setup.py's build_py (what a wheel and `pip install .` run) writes the .mo beside the .po."""
    build = tmp_path / "build"
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    built = build / "compliance" / "locale" / "zh_CN" / "LC_MESSAGES"
    assert (built / "messages.po").is_file(), "the .po is package data"
    with (built / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert compiled.get("Review queue").string == "审核队列"
    assert len([m for m in compiled if m.id]) == len(catalogue())
