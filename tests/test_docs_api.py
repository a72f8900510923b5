"""The documentation site covers the public API: every name in ``joerl.__all__``
has a docstring of its own and a ``::: joerl.NAME`` entry on a page of
docs/api/ (which mkdocstrings renders; ``mkdocs build --strict`` in CI fails
on a docstring it cannot parse), and every page of docs/ is in the site's
navigation (mkdocs.yml)."""

from __future__ import annotations

import ast
import inspect
import re
import types
from pathlib import Path

import pytest

import joerl

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"
PUBLIC = [name for name in joerl.__all__ if not name.startswith("__")]


def _directives() -> set[str]:
    found: set[str] = set()
    for page in API.glob("*.md"):
        found.update(re.findall(r"^::: (\S+)\s*$", page.read_text(encoding="utf-8"), re.MULTILINE))
    return found


def _attribute_docstrings() -> dict[str, str]:
    """Module-level ``NAME = value`` followed by a string literal, in every module of the package."""
    docs: dict[str, str] = {}
    for path in Path(joerl.__file__).parent.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for stmt, nxt in zip(body, body[1:], strict=False):
            targets = (
                stmt.targets
                if isinstance(stmt, ast.Assign)
                else [stmt.target]
                if isinstance(stmt, ast.AnnAssign)
                else []
            )
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                for t in targets:
                    if isinstance(t, ast.Name):
                        docs[t.id] = nxt.value.value
    return docs


def _own_docstring(obj: object) -> str | None:
    """The object's own docstring (a class's, not its base's; not a constant's type's)."""
    if isinstance(obj, type):
        doc = vars(obj).get("__doc__")
    elif isinstance(obj, (types.FunctionType, types.ModuleType)):
        doc = obj.__doc__
    else:  # a zope.interface Interface has its own; a constant has its type's
        doc = getattr(obj, "__doc__", None)
        if doc == type(obj).__doc__:
            doc = None
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(joerl, name)
    doc = _own_docstring(obj)
    if doc is None and isinstance(obj, (str, int, float, tuple)):
        doc = _attribute_docstrings().get(name)  # a constant: the string after its assignment
    assert doc and doc.strip(), f"joerl.{name} has no docstring of its own"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_is_in_the_api_reference(name: str) -> None:
    assert f"joerl.{name}" in _directives(), f"joerl.{name}: add '::: joerl.{name}' to a page of docs/api/"


def test_the_api_reference_names_nothing_that_is_gone() -> None:
    for target in sorted(_directives()):
        module, _, attr = target.rpartition(".")
        try:
            obj = __import__(target, fromlist=["_"])
        except ImportError:
            obj = getattr(__import__(module, fromlist=["_"]), attr, None)
        assert obj is not None, f"docs/api/ names {target}, which does not exist"


def test_every_docs_page_is_in_the_site_navigation() -> None:
    nav = set(re.findall(r"([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.MULTILINE))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages - nav == set(), "add these pages to the nav of mkdocs.yml (in reading order)"
    assert nav - pages == set(), "mkdocs.yml lists pages that do not exist"
