"""The driver shared by the atheris harnesses in this directory.

A harness defines ``test_one_input(data: bytes)`` (raise on a broken
invariant, return otherwise) and a list of seed inputs, then calls
:func:`main`. ``main`` either runs libFuzzer through atheris (every argument
goes to libFuzzer: ``-max_total_time=600``, corpus directories, ...) or, with
``--selftest``, runs the target on the seeds and on deterministic mutations
of them without atheris, so that the harnesses are checked by the test suite
on machines where atheris is not installed.

The harness imports joerl inside :func:`instrumented` so that atheris can
instrument it for coverage. This module imports nothing of joerl itself.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing joerl

SELFTEST = "--selftest" in sys.argv
SELFTEST_MUTATIONS = 200  # per seed


def instrumented() -> AbstractContextManager[object]:
    """Import joerl inside this: atheris instruments it (unless self-testing)."""
    if SELFTEST:
        return contextlib.nullcontext()
    try:
        import atheris
    except ImportError:
        return contextlib.nullcontext()
    return atheris.instrument_imports(include=["joerl"])


def pieces(data: bytes, step: int) -> list[bytes]:
    """``data`` in pieces of ``step`` bytes (at least one piece, maybe empty)."""
    step = max(1, step)
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def outcome(item: object) -> object:
    """A comparable form of a decoder's output (errors compare by type and text)."""
    if isinstance(item, BaseException):
        return (type(item).__name__, str(item))
    return item


def _mutations(seed: bytes, rng: random.Random) -> Iterator[bytes]:
    for _ in range(SELFTEST_MUTATIONS):
        data = bytearray(seed)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(5)
            pos = rng.randint(0, len(data))
            if op == 0 and data:
                data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif op == 1:
                data[pos:pos] = rng.randbytes(rng.randint(1, 8))
            elif op == 2:
                del data[pos : pos + rng.randint(1, 8)]
            elif op == 3:
                del data[pos:]
            elif data:
                data[min(pos, len(data) - 1)] = rng.choice([0x00, 0x7F, 0x80, 0xC1, 0xDC, 0xDF, 0xFF])
        yield bytes(data)


def selftest(target: Callable[[bytes], None], seeds: Sequence[bytes]) -> int:
    """Run ``target`` on every seed, every prefix of it, and deterministic mutations."""
    rng = random.Random(0)
    count = 0
    start = time.perf_counter()
    for seed in seeds:
        inputs: Iterable[bytes] = [seed, *(seed[:n] for n in range(len(seed))), *_mutations(seed, rng)]
        for data in inputs:
            target(data)
            count += 1
    print(f"selftest ok: {count} inputs from {len(seeds)} seeds in {time.perf_counter() - start:.1f}s")
    return count


def _seed_corpus(args: Sequence[str], seeds: Sequence[bytes]) -> None:
    """Fill each corpus directory named on the command line that is missing or empty."""
    for arg in args:
        if arg.startswith("-"):
            continue
        path = Path(arg)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            continue
        path.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (path / f"seed-{i:03d}").write_bytes(seed)


def main(target: Callable[[bytes], None], seeds: Sequence[bytes]) -> None:
    """Self-test (``--selftest``) or fuzz with atheris (all other arguments go to libFuzzer)."""
    if SELFTEST:
        selftest(target, seeds)
        return
    try:
        import atheris
    except ImportError:
        sys.exit(
            "atheris is not installed: `pip install atheris` (Linux/macOS, CPython 3.8-3.11+), "
            f"or run `python {sys.argv[0]} --selftest` to check the harness without it"
        )
    _seed_corpus(sys.argv[1:], seeds)
    os.environ.setdefault("JOERL_FUZZING", "1")
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
