"""``python -m joerl`` (and the ``joerl`` console script): the command line.

Commands: ``demo`` (the distributed demo, see :mod:`joerl.demo`), ``node`` (a
standalone node, see :mod:`joerl.node.cli`), ``version``,
and the cluster commands of :mod:`joerl.cli` (``nodes``, ``ps``, ``top``, ``observer``).
With no command it prints its help and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys

from .cli import add_commands, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joerl", description="Erlang/OTP-style actors for Python, on gevent: the command line."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the distributed demo: a port mapper and three node processes on loopback",
        add_help=False,
    )
    demo.add_argument("args", nargs=argparse.REMAINDER, help="the demo's own options (demo --help)")
    node = commands.add_parser("node", help="run a standalone node until SIGINT/SIGTERM", add_help=False)
    node.add_argument("args", nargs=argparse.REMAINDER, help="the node's options (node --help)")
    commands.add_parser("version", help="print joerl's version")
    add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # The demo parses its own options (``demo --help`` is the demo's help).
    if argv[:1] == ["demo"]:
        from .demo import main as demo

        return demo(argv[1:])
    if argv[:1] == ["node"]:
        from .node.cli import main as node

        return node(argv[1:])
    if argv[:1] == ["demo-node"]:  # one node of the demo, started by it (not listed)
        from .demo import node_main

        return node_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    status = run(args)
    if status is not None:
        return status
    if args.command == "version":
        from . import __version__

        print(__version__)
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
