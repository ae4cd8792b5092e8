"""The list of one-line breaks in ``tools/mutants.py`` stays true to the code: each names a
line that exists exactly once, so moving or rewriting a fast path makes this fail until the
mutant is brought along (run ``python tools/mutants.py`` to see each one caught)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_genevent_mutants", ROOT / "tools" / "mutants.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


MUTANTS = _tool().MUTANTS


def test_there_are_mutants_with_distinct_names() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) >= 10
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_names_one_line_that_exists(mutant: object) -> None:
    path = ROOT / "src" / "genevent" / mutant.path  # type: ignore[attr-defined]
    text = path.read_text()
    assert text.count(mutant.old) == 1  # type: ignore[attr-defined]
    assert mutant.old != mutant.new  # type: ignore[attr-defined]
    for test in mutant.tests:  # type: ignore[attr-defined]
        if test.startswith("tests/"):
            assert (ROOT / test.split("::")[0]).exists(), test
