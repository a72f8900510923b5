"""Every ```python block of README.md and docs/**/*.md runs as written.

Each block is a script run in a subprocess of its own, in a temporary
directory (also its ``$HOME``, so no ``~/.joerl.cookie`` is read or written),
with ``$JOERL_COOKIE`` set and ``$JOERL_EPMD_ADDRESS`` pointing at a port
mapper this test runs on a free port (a snippet's node never touches port
4369 or starts a daemon of its own), bounded by a timeout; it must exit 0.
A block that is a fragment on purpose says so in its info string,
```python fragment, and is skipped; every other info string (sh, yaml,
text, mermaid) is not Python and is not run.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gevent import subprocess

from joerl.testing import running_epmd

ROOT = Path(__file__).resolve().parents[1]
SNIPPET_TIMEOUT = 60.0
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    code: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def snippets(path: Path) -> Iterator[Snippet]:
    """The fenced code blocks of a Markdown file, with their info strings."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent, start = m["fence"], len(m["indent"]), i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if (
                close
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            body.append(lines[i][indent:] if lines[i][:indent].isspace() else lines[i])
            i += 1
        yield Snippet(path, start + 1, m["info"].strip(), "\n".join(body) + "\n")
        i += 1


def python_snippets() -> list[Snippet]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found = []
    for path in files:
        for s in snippets(path):
            words = s.info.split()
            if words and words[0] in ("python", "py", "python3") and "fragment" not in words[1:]:
                found.append(s)
    return found


SNIPPETS = python_snippets()


def test_the_parser_finds_blocks_and_their_info_strings(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n```python\nprint(1)\n```\n\n````python fragment\n```\nx\n````\n"
        "1. item\n\n   ```python\n   print(2)\n   ```\n~~~sh\nls\n~~~\n"
    )
    found = [(s.line, s.info, s.code) for s in snippets(doc)]
    assert found == [
        (2, "python", "print(1)\n"),
        (6, "python fragment", "```\nx\n"),
        (12, "python", "print(2)\n"),
        (15, "sh", "ls\n"),
    ]


def test_the_docs_have_snippets() -> None:
    assert len(SNIPPETS) >= 20, [s.id for s in SNIPPETS]


@pytest.fixture(scope="module")
def epmd_address() -> Iterator[str]:
    with running_epmd() as address:
        yield address


@pytest.mark.timeout(SNIPPET_TIMEOUT + 30)
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_snippet_runs_as_written(snippet: Snippet, tmp_path: Path, epmd_address: str) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(snippet.code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOERL_", "ERL_EPMD"))}
    env.update(
        HOME=str(tmp_path),
        JOERL_COOKIE="joerl-doc-snippets",
        JOERL_EPMD_ADDRESS=epmd_address,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    try:
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=SNIPPET_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{snippet.id}: still running after {SNIPPET_TIMEOUT}s\n{exc.stdout or ''}\n{exc.stderr or ''}")
    assert result.returncode == 0, (
        f"{snippet.id} exited {result.returncode} (mark a fragment on purpose as ```python fragment)\n"
        f"--- code ---\n{snippet.code}--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
