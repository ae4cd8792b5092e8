"""The documentation site's code is correct for the current API.

The convention, for every ```python block of ``docs/**/*.md``:

* a block whose first line is an import (``import ...`` / ``from ...``) is a **complete
  program**: it is run as a user would run it (``python block.py``, in a fresh process, from an
  empty folder) and type-checked with ``mypy --strict`` as a user's file (no project config);
* when such a block is followed directly by a ```text block, the program must print exactly
  that text;
* a program writes nothing on stderr (no traceback, no crash report, no log line) unless it
  says it does with a ``# logs to stderr`` comment, and even then nothing but genevent's own
  reports (no exception escaping a thread or a task);
* a program that imports a package that is not installed (pyee and blinker, on the comparison
  page, come with the dev extras) is skipped;
* any other python block is a **fragment** (a few lines shown for reading): it must at least
  compile (top-level ``await`` allowed).

The ```text block that follows ```bash ``./run demo`` must be what ``genevent demo`` prints.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from genevent.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with the ```text block right after it, if any."""

    page: str
    line: int
    lang: str
    code: str
    output: str | None

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.lang == "python" and self.code.startswith(("import ", "from "))

    @property
    def missing(self) -> list[str]:
        """The top-level packages this program imports that are not installed."""
        names: set[str] = set()
        for node in ast.walk(ast.parse(self.code)):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        return sorted(n for n in names if importlib.util.find_spec(n) is None)


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order (fences must start at column 0)."""
    text = page.read_text()
    found = list(_FENCE.finditer(text))
    result = []
    for i, m in enumerate(found):
        output = None
        nxt = found[i + 1] if i + 1 < len(found) else None
        if nxt is not None and nxt.group(1) == "text" and not text[m.end() : nxt.start()].strip():
            output = nxt.group(2)
        result.append(
            Block(
                page=str(page.relative_to(ROOT)),
                line=text.count("\n", 0, m.start()) + 1,
                lang=m.group(1),
                code=m.group(2),
                output=output,
            )
        )
    return result


PAGES = sorted(DOCS.rglob("*.md"))
ALL = [b for page in PAGES for b in blocks(page)]
PROGRAMS = [b for b in ALL if b.runnable]
FRAGMENTS = [b for b in ALL if b.lang == "python" and not b.runnable]


def test_the_docs_have_programs() -> None:
    assert len(PROGRAMS) >= 20
    assert all(b.lang for b in ALL), [b.name for b in ALL if not b.lang]  # say the language
    long = [
        f"{b.name}+{n}"
        for b in ALL
        if b.lang in ("python", "bash")
        for n, line in enumerate(b.code.splitlines(), 1)
        if len(line) > 100
    ]
    assert long == [], "code lines of at most 100 characters, as in the code base"


LOGS_MARKER = "# logs to stderr"
"""The comment by which a program says that it logs on purpose (a crash report, a drop)."""

_ESCAPED = (
    "Exception in thread",
    "Task exception was never retrieved",
    "Exception ignored",
    "Error in atexit",
    "Fatal Python error",
)


def assert_stderr_as_documented(code: str, stderr: str) -> None:
    """A program's stderr is empty unless the program says it logs (:data:`LOGS_MARKER`); a
    program that logs still lets no exception escape a thread or a task."""
    if LOGS_MARKER not in code:
        assert stderr == "", f"the program writes on stderr without saying so:\n{stderr}"
    escaped = [line for line in stderr.splitlines() if line.startswith(_ESCAPED)]
    assert escaped == [], stderr


def _module_name(block: Block) -> str:
    return re.sub(r"\W", "_", block.name.removeprefix("docs/"))


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda b: b.name)
def test_program_runs(block: Block, tmp_path: Path) -> None:
    if block.missing:  # pragma: no cover - ./run test installs the dev extras
        pytest.skip(f"not installed: {', '.join(block.missing)}")
    path = tmp_path / f"{_module_name(block)}.py"
    path.write_text(block.code)
    proc = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert_stderr_as_documented(block.code, proc.stderr)
    if block.output is not None:
        assert proc.stdout == block.output


def test_fragments_compile() -> None:
    for block in FRAGMENTS:
        compile(block.code, block.name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_programs_pass_mypy_strict(tmp_path: Path) -> None:
    """One mypy run for every program (starting mypy is the slow part), each its own module."""
    if importlib.util.find_spec("mypy") is None:  # pragma: no cover - ./run test installs it
        pytest.skip("mypy is not installed (it comes with the dev extras)")
    files = []
    for block in PROGRAMS:
        if block.missing:  # pragma: no cover - ./run test installs the dev extras
            continue
        path = tmp_path / f"{_module_name(block)}.py"
        path.write_text(block.code)
        files.append(path.name)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), *files],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # no project config: checked as a user's file would be
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_demo_output_in_the_tutorial(capsys: pytest.CaptureFixture[str]) -> None:
    demo = [b for b in ALL if b.lang == "bash" and b.code.strip() == "./run demo"]
    assert demo
    assert main(["demo"]) == 0
    printed = capsys.readouterr().out
    for block in demo:
        assert block.output == printed, block.name


def _readme_tree() -> set[str]:
    """The files the README's layout tree lists, as paths under ``src/genevent``."""
    text = (ROOT / "README.md").read_text()
    block = text.split("\nsrc/genevent/\n", 1)[1].split("```", 1)[0]
    found: set[str] = set()
    parents: list[str] = []
    for line in block.splitlines():
        match = re.match(r"^((?:│   |    )*)[├└]── (\S+)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 4
        name = match.group(2)
        del parents[depth:]
        if name.endswith("/"):
            parents.append(name.rstrip("/"))
        else:
            found.add("/".join([*parents, name]))
    return found


def test_the_readme_tree_lists_every_source_file() -> None:
    src = ROOT / "src" / "genevent"
    files = {
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.is_file() and p.suffix in {".py", ".typed"} and "__pycache__" not in p.parts
    }
    listed = _readme_tree()
    assert sorted(files - listed) == [], "in src/ but not in the README's tree"
    assert sorted(listed - files) == [], "in the README's tree but not in src/"
