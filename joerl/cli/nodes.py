"""``joerl nodes``: what the port mapper knows, and which of those nodes are up."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._connect import add_connection_options, full_name, hidden_node

__all__ = ["add_parser", "run"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``nodes`` to the command line's subcommands."""
    p = commands.add_parser("nodes", help="list the nodes the port mapper knows and whether each is up")
    p.add_argument("--json", action="store_true", help="print JSON (one object per node)")
    add_connection_options(p)


def run(args: argparse.Namespace) -> int:
    """Print one line per registered node; the exit status (1: no port mapper answered)."""
    try:
        with hidden_node(args, "joerl-nodes") as node:
            records = [_probe(node, info, args.timeout) for info in node.list_nodes()]
    except Exception as exc:  # noqa: BLE001 - reported at the command line
        print(f"joerl nodes: {exc}", file=sys.stderr)
        return 1
    for r in records:
        if r is None:
            continue
        if args.json:
            print(json.dumps(r))
        else:
            state = "up" if r["up"] else f"down ({r['error']})"
            print(f"{r['name']:<32} {r['host']}:{r['port']:<6} {'hidden ' if r['hidden'] else ''}{state}")
    return 0


def _probe(node: Any, info: Any, timeout: float) -> dict[str, Any] | None:
    """What ``joerl nodes`` says of the registered node ``info`` (None: the command's own node)."""
    name = full_name(node, info.name)
    if name == node.node_name:
        return None
    record = {"name": name, "host": info.host, "port": info.port, "up": False, "error": ""}
    record["hidden"] = bool((info.metadata or {}).get("hidden"))
    if info.kind == "erlang":
        record["error"] = "an Erlang node (not asked)"
        return record
    try:
        record["up"] = node.connect_to_node(name, timeout)
    except Exception as exc:  # noqa: BLE001 - a node that is down is what we report
        record["error"] = str(exc)
    return record
