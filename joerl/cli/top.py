"""``joerl top NODE``: a refreshing terminal view of a node, like Erlang's ``etop``."""

from __future__ import annotations

import argparse
import sys
import time

import gevent

from ._connect import add_connection_options, full_name, hidden_node, message_counts
from ._table import SORT_KEYS, format_rows, rows, sort_rows

__all__ = ["add_parser", "run"]

_CLEAR = "\x1b[H\x1b[2J"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``top`` to the command line's subcommands."""
    p = commands.add_parser("top", help="a refreshing view of a node's busiest processes (like etop)")
    p.add_argument("node", help="the node's name (name@host; a bare name gets this host)")
    p.add_argument("--sort", choices=sorted(SORT_KEYS), default="rate", help="order (largest first; default rate)")
    p.add_argument("--limit", type=int, default=20, help="processes shown (default 20)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    p.add_argument("--iterations", type=int, default=None, help="stop after this many refreshes (default: never)")
    p.add_argument("--once", action="store_true", help="one refresh, then exit (as --iterations 1)")
    add_connection_options(p)


def run(args: argparse.Namespace) -> int:
    """Refresh until interrupted (or ``--iterations``); the exit status (1: the node could not be asked)."""
    iterations = 1 if args.once else args.iterations
    clear = sys.stdout.isatty()
    with hidden_node(args, "joerl-top") as node:
        target = full_name(node, args.node)
        intro = node.introspection
        before = None
        taken = time.monotonic()
        done = 0
        try:
            with message_counts(node, target, args.timeout):  # the rates need them
                while iterations is None or done < iterations:
                    if done or iterations is None or iterations > 1:
                        gevent.sleep(args.interval)  # the refresh period
                    report = intro.node_info(target, args.timeout)
                    now = intro.processes(target, args.timeout)
                    at = time.monotonic()
                    table = sort_rows(rows(now, before, at - taken), args.sort, args.limit)
                    before, taken = now, at
                    s = report.system
                    up = sum(1 for p in report.peers if p.state == "up")
                    print(
                        f"{_CLEAR if clear else ''}node {report.node}  processes {s.processes}  "
                        f"queued {s.mailbox_total}  dropped {s.dropped}  restarts {s.restarts}  links up {up}  "
                        f"link msgs in/out {report.stats.get('received', 0)}/{report.stats.get('sent', 0)}",
                        flush=False,
                    )
                    print(format_rows(table), flush=True)
                    if not clear:
                        print(flush=True)
                    done += 1
        except KeyboardInterrupt:
            return 0
        except Exception as exc:  # noqa: BLE001 - reported, not raised, at the command line
            print(f"joerl top: cannot ask node {target!r}: {exc}", file=sys.stderr)
            return 1
    return 0
