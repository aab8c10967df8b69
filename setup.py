"""The catalogues compiled as part of the package build: ``build_py`` (which wheels, sdists' builds
and ``pip install .`` run) writes each ``compliance/locale/*/LC_MESSAGES/*.po`` as a ``.mo`` beside
it in the build, so that an installed package reads its compiled catalogues with no step of its
own. Everything else about the package is in pyproject.toml.

A source checkout (an editable install included) needs no .mo: compliance.dashboard.language
compiles the .po in memory when none is there.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


def compile_catalogues(source_root: Path, build_root: Path) -> list[Path]:
    """Each .po under ``source_root``/compliance/locale compiled to the same place under ``build_root``."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in sorted((source_root / "compliance" / "locale").glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parent.parent.name, domain=po.stem)
        target = build_root / po.relative_to(source_root).with_suffix(".mo")
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            write_mo(handle, catalog)
        written.append(target)
    return written


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        super().run()
        compile_catalogues(Path(__file__).resolve().parent, Path(self.build_lib))


setup(cmdclass={"build_py": BuildWithCatalogues})
