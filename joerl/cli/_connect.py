"""How the command line joins a cluster: as a hidden node, with the cookie from the usual places.

Every command that looks into a node (``nodes``, ``ps``, ``top``,
``observer``) starts a hidden :class:`~joerl.node.node.DistributedSystem`
(left out of the cluster's ``nodes()``, connect-all and global-name sync, as
Erlang's remote shells and observer are), with no name server and no
introspection service of its own, and shuts it down when done.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..node.node import DistributedSystem

__all__ = ["add_connection_options", "full_name", "hidden_node", "message_counts"]


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """The options every connecting command takes: ``--cookie``, ``--epmd``, ``--timeout``."""
    parser.add_argument(
        "--cookie", help="the cluster's cookie (default: $JOERL_COOKIE, else ~/.joerl.cookie)", default=None
    )
    parser.add_argument(
        "--epmd",
        metavar="HOST:PORT",
        default=None,
        help="the port mapper to ask (default: $JOERL_EPMD_ADDRESS, else this host's)",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer (default 5)")


@contextmanager
def hidden_node(args: argparse.Namespace, prefix: str = "joerl-cli") -> Iterator[DistributedSystem]:
    """A hidden node for the length of a command (shut down on the way out).

    Raises:
        DistributionError: the port mapper cannot be reached, or the cookie cannot be read.
    """
    from ..node.node import DistributedSystem

    node = DistributedSystem(
        f"{prefix}-{os.getpid()}",
        "127.0.0.1:0",
        args.epmd,
        cookie=args.cookie,
        start_epmd=False,
        global_names=False,
        hidden=True,
        introspection=False,
        epmd_timeout=args.timeout,
    )
    try:
        yield node
    finally:
        node.shutdown(1.0)


def full_name(node: DistributedSystem, name: str) -> str:
    """``name`` as the cluster knows it: a name without ``@host`` gets the host of ``node``'s own name."""
    if "@" in name or "@" not in node.node_name:
        return name
    return f"{name}@{node.node_name.partition('@')[2]}"


@contextmanager
def message_counts(node: DistributedSystem, target: str, timeout: float) -> Iterator[None]:
    """``target`` counts its messages while the block runs (the rates need them), as it did before afterwards.

    A node that did not count them stops again when the block ends, so that
    looking at a node leaves it as it was (counting costs its local messaging
    about 5%: ``ActorSystem.count_messages``).
    """
    intro = node.introspection
    before = intro.count_messages(target, True, timeout)
    try:
        yield
    finally:
        if not before:
            try:
                intro.count_messages(target, False, timeout)
            except Exception:  # noqa: BLE001, S110 - the node went away: nothing is left to restore
                pass
