"""The atheris harnesses in ``fuzz/`` stay runnable: each one's ``--selftest``
runs its target on its seeds, every prefix of them and deterministic
mutations, without atheris, in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
HARNESSES = sorted(p.name for p in FUZZ.glob("fuzz_*.py"))


def test_there_is_a_harness_per_decoder() -> None:
    assert HARNESSES == ["fuzz_codec.py", "fuzz_epmd.py", "fuzz_erlang.py", "fuzz_frames.py", "fuzz_handshake.py"]


@pytest.mark.parametrize("harness", HARNESSES)
def test_harness_selftest(harness: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(FUZZ / harness), "--selftest"], capture_output=True, text=True, timeout=60, cwd=FUZZ.parent
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("selftest ok: ")
