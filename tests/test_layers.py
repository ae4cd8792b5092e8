"""The package's import structure: no import cycles, and no import from a lower layer to a higher
one, as the layers contract in pyproject.toml (``[tool.importlinter]``, checked by
``lint-imports`` in ``./run test``) lists them. Read here from the source with ``ast``, so that
pytest alone checks the rule too. An import counts wherever it is written: at the top, inside a
function, or under ``if TYPE_CHECKING:``."""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = "genevent"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(files: dict[str, str]) -> dict[str, set[str]]:
    """:func:`_import_graph`, computed in a fresh interpreter: CPython 3.11's ``ast.parse``
    can fail with "AST constructor recursion depth mismatch" once earlier tests of the same
    process (a KeyboardInterrupt leaving a task, tracebacks formatted in other threads) left
    its state off, even in a thread of its own; a subprocess has none of that."""
    code = (
        "import json, sys\n"
        "from tests.test_layers import _import_graph\n"
        "graph = _import_graph(json.load(sys.stdin))\n"
        "json.dump({m: sorted(i) for m, i in graph.items()}, sys.stdout)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {m: set(i) for m, i in json.loads(done.stdout).items()}


def _import_graph(files: dict[str, str]) -> dict[str, set[str]]:
    """``{module: modules it imports}`` among ``files`` (``{module name: source}``; a package
    is named by its ``__init__``'s name, a subpackage's ``__init__`` ends with ``.__init__``
    in the keys given here only to tell it is a package)."""
    packages = {m.removesuffix(".__init__") for m in files if m.endswith(".__init__")}
    sources = {m.removesuffix(".__init__"): src for m, src in files.items()}
    edges: dict[str, set[str]] = {m: set() for m in sources}

    def resolve(base: str, name: str | None) -> str | None:
        candidate = f"{base}.{name}" if name else base
        if candidate in sources:
            return candidate
        return base if base in sources else None

    for mod, src in sources.items():
        pkg = mod if mod in packages else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(src)):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [resolve(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    base = f"{base}.{node.module}" if node.module else base
                else:
                    base = node.module or ""
                targets = [resolve(base, a.name) for a in node.names]
            edges[mod].update(t for t in targets if t is not None and t != mod)
    return edges


@functools.cache
def package_graph() -> dict[str, set[str]]:
    return import_graph(package_files())


def package_files(root: Path = SRC / PACKAGE) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root.parent)
        if path.name == "__init__.py":
            name += ".__init__"
        found[name] = path.read_text(encoding="utf-8")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


CONTAINERS = [
    c["containers"][0]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "importlinter"
    ]["contracts"]
    if c["type"] == "layers"
]
"""The packages a layers contract orders: the package itself, and those of its subpackages
whose modules are layered too."""


def layers(container: str = PACKAGE) -> list[list[str]]:
    """The layers of ``container``'s layers contract, top first, each a list of the modules in
    it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["type"] == "layers" and c["containers"] == [container]
    ]
    assert contract.get("exhaustive") is True
    return [
        [part.strip() for part in layer.replace(":", "|").split("|")]
        for layer in contract["layers"]
    ]


def layer_of(module: str, levels: Iterable[list[str]], container: str = PACKAGE) -> int | None:
    """The index of the layer ``module`` belongs to (a module or a package's descendant)."""
    for level, names in enumerate(levels):
        for name in names:
            top = f"{container}.{name}"
            if module == top or module.startswith(top + "."):
                return level
    return None


# -- the graph builder itself ------------------------------------------------------------------


def test_type_only_and_function_level_imports_count() -> None:
    files = {
        "pkg.__init__": "",
        "pkg.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "pkg.b": "def f():\n    from . import a\n",
        "pkg.c": "import pkg.a\nfrom pkg import b\n",
        "pkg.sub.__init__": "from ..a import x\nfrom .d import y\n",
        "pkg.sub.d": "from .. import c\n",
    }
    assert import_graph(files) == {
        "pkg": set(),
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.a"},
        "pkg.c": {"pkg.a", "pkg.b"},
        "pkg.sub": {"pkg.a", "pkg.sub.d"},
        "pkg.sub.d": {"pkg.c"},
    }
    assert cycles(import_graph(files)) == [["pkg.a", "pkg.b"]]


# -- the package --------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    found = cycles(package_graph())
    assert found == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_package_and_its_layered_subpackages_have_a_contract() -> None:
    assert CONTAINERS[0] == PACKAGE
    subpackages = sorted(
        f"{PACKAGE}.{init.parent.name}" for init in (SRC / PACKAGE).glob("*/__init__.py")
    )
    assert sorted(CONTAINERS[1:]) == subpackages


@pytest.mark.parametrize("container", CONTAINERS)
def test_every_module_is_in_a_layer(container: str) -> None:
    levels = layers(container)
    unplaced = sorted(
        m
        for m in package_graph()
        if m.startswith(container + ".") and layer_of(m, levels, container) is None
    )
    assert unplaced == [], f"add these modules to a layer in pyproject.toml: {unplaced}"


@pytest.mark.parametrize("container", CONTAINERS)
def test_no_import_goes_up_a_layer(container: str) -> None:
    levels = layers(container)
    upward = []
    for mod, imported in sorted(package_graph().items()):
        here = layer_of(mod, levels, container)
        if here is None:  # the package's __init__: the public surface, above every layer
            continue
        for target in sorted(imported):
            there = layer_of(target, levels, container)
            if there is not None and there < here:
                upward.append(f"{mod} -> {target}")
    assert upward == [], f"imports from a lower layer to a higher one: {upward}"


@pytest.mark.parametrize("runtime", ["aio", "threads"])
def test_a_runtime_does_not_reach_the_other(runtime: str) -> None:
    """Each runtime's modules (``aio``, ``_aio_*``; the ``threads`` package) reach none of the
    other's, even through the shared machinery."""
    edges = package_graph()
    mine, theirs = ("aio", "thread") if runtime == "aio" else ("thread", "aio")

    def of(family: str, mod: str) -> bool:
        tail = mod.removeprefix(f"{PACKAGE}.")
        public = {"aio": "aio", "thread": "threads"}[family]
        return tail == public or tail.startswith((f"{public}.", f"_{family}_"))

    reached: set[str] = set()
    todo = [m for m in edges if of(mine, m)]
    while todo:
        mod = todo.pop()
        for target in edges[mod] - reached:
            reached.add(target)
            todo.append(target)
    assert sorted(m for m in reached if of(theirs, m)) == []


def test_no_source_file_is_longer_than_650_lines() -> None:
    long = {
        p.relative_to(SRC).as_posix(): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 650
    }
    assert long == {}, "split these by concern"
