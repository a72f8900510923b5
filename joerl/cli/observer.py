"""``joerl observer NODE``: the web observer of a node, served from a hidden node until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys

import gevent
from gevent.event import Event

from ._connect import add_connection_options, full_name, hidden_node

__all__ = ["add_parser", "run", "wait_for_stop"]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``observer`` to the command line's subcommands."""
    p = commands.add_parser("observer", help="serve the web observer of a node (joins as a hidden node)")
    p.add_argument("node", help="the node shown first (name@host; a bare name gets this host)")
    p.add_argument("--port", type=int, default=0, help="the HTTP port (default: a free one, printed)")
    p.add_argument("--bind", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    p.add_argument("--token", default=None, help="a secret the browser must give (?token=...)")
    add_connection_options(p)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; the exit status (1: the node could not be reached)."""
    from ..observer import serve

    with hidden_node(args, "joerl-observer") as node:
        target = full_name(node, args.node)
        try:
            node.connect_to_node(target, args.timeout)
        except Exception as exc:  # noqa: BLE001 - reported at the command line
            print(f"joerl observer: cannot reach node {target!r}: {exc}", file=sys.stderr)
            return 1
        with serve(node, args.port, args.bind, token=args.token, node=target, timeout=args.timeout) as observer:
            print(f"observer of {target} at {observer.url}", flush=True)
            wait_for_stop()
    return 0


def wait_for_stop() -> int:
    """Wait (in the hub's thread) until SIGINT or SIGTERM arrives; the signal's number."""
    stop = Event()
    got: list[int] = []

    def on(number: int) -> None:
        got.append(number)
        stop.set()

    handlers = [gevent.signal_handler(n, on, n) for n in (signal.SIGINT, signal.SIGTERM)]
    try:
        stop.wait()
    finally:
        for h in handlers:
            h.cancel()
    return got[0]
