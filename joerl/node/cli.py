"""``python -m joerl node NAME``: run a standalone node until SIGINT or SIGTERM.

A node with nothing of its own to run: a member other nodes link with, call
``rpc`` on, register global names at, or spawn registered factories on (a
program adds those; this runs the bare node). It prints one line once it
listens, for scripts and test harnesses::

    READY name=a@web1 port=41234 creation=3187364118

then serves until SIGINT or SIGTERM and shuts down cleanly (exit 0). The
cookie comes from ``$JOERL_COOKIE`` or ``~/.joerl.cookie`` (never the command
line, where ``ps`` would show it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="joerl node", description="run a standalone joerl node until SIGINT/SIGTERM")
    ap.add_argument("name", help="the node's name, name@host (a name without a host gets this machine's)")
    ap.add_argument("--listen", default="0.0.0.0:0", metavar="HOST:PORT", help="where to listen (default 0.0.0.0:0)")
    ap.add_argument("--advertise", default=None, metavar="HOST", help="the address peers dial (NAT, containers)")
    ap.add_argument(
        "--epmd",
        default=None,
        metavar="HOST:PORT",
        help="one port mapper shared by the cluster (default: this host's, at 127.0.0.1:$ERL_EPMD_PORT)",
    )
    ap.add_argument("--portless", action="store_true", help="no port mapper: peers are dialled on the listen port")
    ap.add_argument("--long-names", action="store_true", help="a name without a host gets this machine's FQDN")
    ap.add_argument("--tick", type=float, default=60.0, metavar="S", help="tick time in seconds (default 60)")
    ap.add_argument("--no-global-names", action="store_true", help="do not run the cluster-wide name server")
    ap.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"], help="default warning"
    )
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node; the exit status (2: bad arguments, 1: the node could not start)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(name)s %(message)s")
    from ..errors import DistributionError, JoerlError
    from .node import DistributedSystem

    try:
        node = DistributedSystem(
            args.name,
            args.listen,
            args.epmd,
            advertise_host=args.advertise,
            long_names=args.long_names,
            portless=args.portless,
            tick_time=args.tick,
            global_names=not args.no_global_names,
        )
    except (DistributionError, JoerlError, ValueError, OSError) as exc:
        print(f"joerl node: {exc}", file=sys.stderr)
        return 1
    print(f"READY name={node.node_name} port={node.listen_port} creation={node.creation}", flush=True)
    node.serve_forever()
    return 0
