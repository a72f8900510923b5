"""``joerl ps NODE``: the processes of a node, sortable by mailbox length or message rate."""

from __future__ import annotations

import argparse
import json
import sys

import gevent

from ..introspect import as_dict
from ._connect import add_connection_options, full_name, hidden_node, message_counts
from ._table import SORT_KEYS, format_rows, rows, sort_rows

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ps`` to the command line's subcommands."""
    p = commands.add_parser("ps", help="list the processes of a node (joins the cluster as a hidden node)")
    p.add_argument("node", help="the node's name (name@host; a bare name gets this host)")
    p.add_argument(
        "--sort", choices=sorted(SORT_KEYS), default="mailbox", help="order (largest first; default mailbox)"
    )
    p.add_argument("--limit", type=int, default=None, help="show at most this many processes")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between the two snapshots a rate is taken over (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print JSON (one object per process) rather than a table")
    add_connection_options(p)


def run(args: argparse.Namespace) -> int:
    """Print the table; the exit status (1: the node could not be asked)."""
    with hidden_node(args) as node:
        target = full_name(node, args.node)
        intro = node.introspection
        try:
            if args.sort == "rate":  # counted over the window (the node stops counting after, if it did not before)
                with message_counts(node, target, args.timeout):
                    before = intro.processes(target, args.timeout)
                    gevent.sleep(args.interval)  # the window the rate is taken over, not a wait for a condition
                    now = intro.processes(target, args.timeout)
            else:
                before, now = None, intro.processes(target, args.timeout)
        except Exception as exc:  # noqa: BLE001 - reported, not raised, at the command line
            print(f"joerl ps: cannot ask node {target!r}: {exc}", file=sys.stderr)
            return 1
        table = sort_rows(rows(now, before, args.interval), args.sort, args.limit)
        if args.json:
            for row in table:
                record = {k: _plain(v) for k, v in as_dict(row.info).items()}
                record["rate"] = row.rate
                print(json.dumps(record))
        else:
            print(format_rows(table))
    return 0


def _plain(value: object) -> object:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
