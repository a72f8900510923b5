"""MkDocs hooks for joerl's documentation site (``hooks:`` in mkdocs.yml).

A code block that is a fragment on purpose is written ```python fragment, so
that tests/test_doc_snippets.py skips it; Markdown's fenced-code parser
accepts only a language there, so the page is given ```python instead. And
the Sphinx roles of the docstrings are dropped from the API reference.
"""

from __future__ import annotations

import re
from typing import Any

_FRAGMENT = re.compile(r"^(?P<fence>[ \t]*(?:`{3,}|~{3,}))python fragment[ \t]*$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Turn every ```python fragment fence into ```python."""
    return _FRAGMENT.sub(r"\g<fence>python", markdown)


# The docstrings use Sphinx's cross-reference roles (``:meth:`shutdown```,
# ``:class:`~joerl.ActorSystem```), which Markdown renders as the role's name
# before the code: keep the code, as Sphinx shows it (``~`` keeps the last name).
_ROLE = re.compile(r":(?:py:)?(?:meth|attr|func|class|mod|exc|data|obj|const):<code>(~?)([^<]*)</code>")


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """Drop the Sphinx role names in front of cross-references."""
    return _ROLE.sub(_role, html)
