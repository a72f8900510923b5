"""The package's shape: small modules, small classes, imports that point one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import joerl

ROOT = Path(joerl.__file__).parent
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 400


def _modules() -> list[str]:
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


MODULES = _modules()


def _path(module: str) -> Path:
    base = ROOT.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@pytest.mark.parametrize("module", MODULES)
def test_module_size(module: str) -> None:
    lines = len(_path(module).read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{module} has {lines} lines (limit {MAX_MODULE_LINES}): split it"


@pytest.mark.parametrize("module", MODULES)
def test_class_size(module: str) -> None:
    tree = ast.parse(_path(module).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, f"{module}.{node.name} has {size} lines (limit {MAX_CLASS_LINES})"


def _runtime_imports(module: str) -> set[str]:
    """The joerl modules ``module`` imports when it is executed (not under TYPE_CHECKING, not in functions)."""
    path = _path(module)
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("joerl"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("joerl"):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in MODULES else target)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(node.orelse)
                for h in getattr(node, "handlers", []):
                    visit(h.body)

    visit(tree.body)
    found.discard(module)
    return {m for m in found if m in MODULES}


def _graph() -> dict[str, set[str]]:
    graph = {m: _runtime_imports(m) for m in MODULES}
    # A package's __init__ only re-exports; importing a submodule runs its
    # package's __init__ first, which is not an edge of the submodule's own.
    return graph


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    # Package facades (__init__) re-export their submodules; an edge into a
    # facade from one of its own submodules would be the only way to cycle
    # through one, so they are checked like any other module.
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n) :] + [n]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if n not in state:
                dfs(n)
        stack.pop()
        state[m] = 2

    for m in MODULES:
        if m not in state:
            dfs(m)


def test_the_layers_point_one_way() -> None:
    graph = _graph()
    pure = [m for m in MODULES if m.split(".")[-1] in ("pid", "message", "errors", "address", "backoff", "ratelimit")]
    pure += [m for m in MODULES if m.startswith(("joerl.serialization", "joerl.errors"))]
    runtime = {"joerl.system", "joerl._process", "joerl._signals", "joerl.actor", "joerl.mailbox", "joerl.timer"}
    for m in pure:
        bad = {n for n in graph[m] if n in runtime or n.startswith("joerl.node") or n.startswith("joerl.epmd")}
        assert not bad, f"{m} (a pure module) imports {bad}"
    for m in runtime | {"joerl._router", "joerl._gen"}:
        bad = {n for n in graph[m] if n.startswith("joerl.node") or n.startswith("joerl.epmd")}
        assert not bad, f"{m} (the runtime) imports the node layer: {bad}"
    for m in (m for m in MODULES if m.startswith("joerl.node")):
        bad = {n for n in graph[m] if n in runtime - {"joerl.actor", "joerl.mailbox"}}
        if m == "joerl.node.node":
            bad.discard("joerl.system")  # the node owns its ActorSystem
        assert not bad, f"{m} reaches the runtime around joerl._router: {bad}"


# One interpreter imports the third-party packages (never joerl), then forks a
# child per module: each child imports its module into a fresh joerl, so no
# module works only because another one happened to be imported first; the
# fork saves each child the interpreter's start and gevent's import.
_IMPORT_EACH = """
import importlib, os, sys, traceback
import gevent, gevent.hub, msgpack, zope.interface  # noqa: F401 - not joerl
for m in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(m)
        except BaseException:
            print(m + ": " + traceback.format_exc().strip().splitlines()[-1], flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if status:
        print(m + ": failed (" + str(status) + ")", flush=True)
"""


@pytest.mark.timeout(300)
def test_every_module_imports_on_its_own() -> None:
    r = subprocess.run([sys.executable, "-c", _IMPORT_EACH, *MODULES], capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    failures = [line for line in r.stdout.splitlines() if line.strip()]
    assert not failures, "\n".join(failures)
