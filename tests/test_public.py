"""The public surface: exports, docstrings, README examples, the demo, static typing."""

from __future__ import annotations

import asyncio
import importlib
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

ROOT = Path(__file__).resolve().parent.parent
PUBLIC_MODULES = ["genevent", "genevent.aio", "genevent.threads", "genevent.examples"]


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
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return [b for b in blocks if b.startswith(("import", "from"))]


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_examples_run(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    code = _python_blocks()[index]
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    if "I dare you" in code:
        assert "[\"Meetup at 10 o'clock\", 'I dare you!']" in out
    if "Assemble in class" in code:
        assert "['Assemble in class']" in out


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
