"""The command line's cluster commands: ``nodes``, ``ps``, ``top`` and ``observer``.

:mod:`joerl.__main__` owns the one argparse parser; each command module here
adds its subcommand (``add_parser``) and runs it (``run``). Every command
joins the cluster as a hidden node (:mod:`joerl.cli._connect`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import import_module

from ..errors import JoerlError

__all__ = ["COMMANDS", "add_commands", "run"]

#: The cluster commands, in the order the help lists them.
COMMANDS = ("nodes", "ps", "top", "observer")


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add every cluster command to the command line's subcommands."""
    for name in COMMANDS:
        import_module(f"{__name__}.{name}").add_parser(commands)


def run(args: argparse.Namespace) -> int | None:
    """Run the cluster command ``args.command`` (None: it is not one of them); the exit status."""
    if args.command not in COMMANDS:
        return None
    runner: Callable[[argparse.Namespace], int] = import_module(f"{__name__}.{args.command}").run
    try:
        return runner(args)
    except JoerlError as exc:  # cannot join the cluster: no port mapper, an unreadable cookie, ...
        print(f"joerl {args.command}: cannot join the cluster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
