"""The public surface: exports, docstrings, README examples, the demo, static typing."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from genevent import EventHandler, aio, threads
from genevent.__main__ import main, seed_session, seed_session_threads
from tests.test_docs import assert_stderr_as_documented

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = [
    "genevent",
    "genevent.aio",
    "genevent.threads",
    "genevent.examples",
    "genevent.logs",
    "genevent.prometheus",
    "genevent.top",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_complete_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and not isinstance(v, types.ModuleType)
        and getattr(v, "__module__", None) == name
        and (inspect.isclass(v) or inspect.isfunction(v))
    }
    assert public <= set(exported) | {"annotations"}, public - set(exported)
    assert module.__doc__
    for n in exported:
        obj = getattr(module, n)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{n} has no docstring"


def test_public_methods_documented() -> None:
    for cls in (aio.EventManager, threads.EventManager, EventHandler):
        for n, member in vars(cls).items():
            if not n.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__module__}.{cls.__qualname__}.{n}"


def _python_blocks() -> list[str]:
    """Every ```python block of the README: each is a whole program (its own imports)."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_examples_run(index: int, tmp_path: Path) -> None:
    """Each block runs as a user would run it (``python block.py`` in a fresh process, from an
    empty folder), prints what it says, and writes nothing on stderr unless it says it logs."""
    code = _python_blocks()[index]
    assert code.startswith(("import", "from")), "a README example starts with its imports"
    path = tmp_path / f"readme_block_{index}.py"
    path.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert_stderr_as_documented(code, proc.stderr)
    out = proc.stdout
    if "I dare you" in code:
        assert "[\"Meetup at 10 o'clock\", 'I dare you!']" in out
    if "Assemble in class" in code:
        assert "['Assemble in class']" in out
    if "class Audit" in code:
        assert out.splitlines() == ["['ada']", "['ada']"]
    if "class Revenue" in code:
        assert out.splitlines() == ["big order: 1", "alert: PaymentFailed(order=1)", "259.0"]
    if "class Flaky" in code:
        assert out.splitlines() == ["[<class '__main__.Flaky'>] 1"]
    if 'threads.start("orders", timing=True)' in code:
        assert out.splitlines() == ["0", "1", "2", "4 0 4"]
    if "from genevent.nats import NatsServer, connect" in code:
        assert out.splitlines() == ["['hello']"]
    if "from genevent.top import serve" in code:
        assert out.splitlines() == ["True"]
    if "evens = mgr.stream" in code:
        assert out.splitlines() == ["[0, 2, 4, 6]"]
    if "ErrorRateAlarm" in code:
        assert out.splitlines() == ["3 errors in 60.0 s; last: payment failed for order 2"]
    if "OwnerExited" in code:
        assert out.splitlines() == [
            "Deleted(args='done')",
            "Deleted(args='done')",
            "OwnerExited(reason=None)",
        ]


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    """Every README python block type-checks with ``mypy --strict`` as written, each on its
    own (one mypy run for all of them: starting mypy is the slow part)."""
    if importlib.util.find_spec("mypy") is None:  # pragma: no cover - ./run test installs it
        pytest.skip("mypy is not installed (it comes with the dev extras)")
    blocks = _python_blocks()
    assert blocks
    files = []
    for index, code in enumerate(blocks):
        path = tmp_path / f"readme_block_{index}.py"
        path.write_text(code)
        files.append(path.name)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # no project config: the README is checked as a user's file would be
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Written in pieces so that this file does not match itself.
_OUTSIDE_CITATIONS = re.compile(
    "|".join(
        [
            r"\b" + "DECI" + r"SIONS\b",
            "SP" + r"EC\.md",
            r"\b" + "SP" + r"EC\b",
            "GEN_EVENT_" + "REFERENCE",
            "DISTRI" + r"BUTION\.md",
            "STY" + r"LE\.md",
            r"\.\./" + "shared",
            "/work/" + "shared",
            r"\b[Ii]ssue #?\d+",
            r"(?<![\w/&])#\d{3,}\b",
            r"\b[Aa]dden" + r"dum\b",
            r"reference's \d+ items",
            r"\b[Rr]eference items? \d+",
        ]
    )
)


def _repository_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed if (ROOT / name).is_file()]


def test_repository_cites_nothing_outside_it() -> None:
    """Code, tests, docs, README and CHANGELOG cite no document outside the repository and no
    work item by number: the behaviour contract is docs/semantics.md; OTP is cited by URL."""
    found = []
    for path in _repository_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if _OUTSIDE_CITATIONS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == []


def _semantics_items() -> set[str]:
    text = (ROOT / "docs" / "semantics.md").read_text()
    numbered = re.findall(r"^(\d+)\. ", text, re.M)
    lettered = re.findall(r"^- \*\*([AP]\d+)\. ", text, re.M)
    return set(numbered) | set(lettered)


def test_semantics_items_cited_by_the_tests_exist() -> None:
    """Every item a test names (``test_c07_...``, ``addenda_15_16``, "docs/semantics.md P4")
    is in docs/semantics.md, and the conformance list is complete."""
    items = _semantics_items()
    assert {str(n) for n in range(1, 64)} <= items
    assert {f"A{n}" for n in range(1, 18)} <= items
    cited: set[str] = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = path.read_text()
        for name in re.findall(r"def (test_\w+)", text):
            cited.update(str(int(n)) for n in re.findall(r"_c(\d{2})(?=_|$)", name))
            for pair in re.findall(r"_addenda((?:_\d+)+)", name):
                cited.update(f"A{n}" for n in pair.strip("_").split("_"))
        for refs in re.findall(
            r"docs/semantics\.md:? (?:items? )?([AP]?\d+(?:(?:,| and) [AP]?\d+)*)", text
        ):
            cited.update(re.findall(r"[AP]?\d+", refs))
    assert cited
    assert cited - items == set()


@pytest.mark.parametrize("runtime", ["aio", "threads"])
def test_demo_prints_the_seed_session(capsys: pytest.CaptureFixture[str], runtime: str) -> None:
    assert main(["demo", "--runtime", runtime]) == 0
    lines = capsys.readouterr().out.splitlines()
    calls = [line for line in lines if line.startswith("call(")]
    assert calls == [
        "call(BroadcastEventHandler, 'broadcasts') -> [\"Meetup at 10 o'clock\", 'I dare you!']",
        "call(BroadcastEventHandler, 'broadcasts') -> []",
        "call(BroadcastEventHandler, 'broadcasts') -> ['Assemble in class']",
    ]
    assert lines[-1] == "stopped"


def test_demo_as_module_exits_zero() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "genevent", "demo"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "['Assemble in class']" in proc.stdout


def test_seed_session_answers() -> None:
    out: list[str] = []
    answers = asyncio.run(seed_session(out))
    assert answers == [["Meetup at 10 o'clock", "I dare you!"], [], ["Assemble in class"]]
    assert seed_session_threads([]) == answers


class Ints(EventHandler[int, str, float]):
    def handle_event(self, event: int, /) -> None:
        pass

    def handle_call(self, request: str, /) -> float:
        return 1.0


if TYPE_CHECKING:
    # Checked by mypy (never run): wrong uses must be errors, or the ignores are unused,
    # which mypy's warn_unused_ignores reports.

    async def _typing(mgr: aio.EventManager[int], other: aio.EventManager[str]) -> None:
        await mgr.add_handler(Ints)
        await mgr.add_handler((Ints, "id"))
        mgr.notify(1)
        mgr.notify("one")  # type: ignore[arg-type]
        reply: float = await mgr.call(Ints, "req")
        await mgr.call(Ints, 3)  # type: ignore[misc]
        bad: str = await mgr.call(Ints, "req")  # type: ignore[arg-type]
        await other.add_handler(Ints)  # type: ignore[arg-type]
        del reply, bad

    def _any(x: Any) -> None: ...
