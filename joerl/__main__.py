"""``python -m joerl demo``: the distributed demo (see joerl/demo.py)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv else "help"
    if command == "demo":
        from .demo import main as demo

        return demo(argv)
    if command == "demo-node":
        from .demo import node_main

        return node_main(argv)
    if command == "version":
        from . import __version__

        print(__version__)
        return 0
    print("usage: python -m joerl demo [--messages N] [--round-trips N] | version", file=sys.stderr)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main())
