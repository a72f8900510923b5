"""MkDocs hooks for joerl's documentation site (``hooks:`` in mkdocs.yml).

A code block that is a fragment on purpose is written ```python fragment, so
that tests/test_doc_snippets.py skips it; Markdown's fenced-code parser
accepts only a language there, so the page is given ```python instead.
"""

from __future__ import annotations

import re
from typing import Any

_FRAGMENT = re.compile(r"^(?P<fence>[ \t]*(?:`{3,}|~{3,}))python fragment[ \t]*$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Turn every ```python fragment fence into ```python."""
    return _FRAGMENT.sub(r"\g<fence>python", markdown)
