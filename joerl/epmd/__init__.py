"""The port mapper: Erlang's EPMD protocol and joerl's extension, daemon and client.

``protocol`` holds the sans-IO codec, ``server`` the daemon (``joerl-epmd``),
``client`` the :class:`EpmdClient`. See docs/epmd.md.
"""

from __future__ import annotations

from .client import (
    EpmdClient,
    EpmdClientClosed,
    EpmdConnectionError,
    EpmdTimeout,
    NameInUse,
    RegistrationRefused,
    ping,
    spawn_daemon,
)
from .protocol import DEFAULT_PORT, EpmdProtocolError, InvalidName, NodeInfo, check_name
from .server import EpmdServer

__all__ = [
    "DEFAULT_PORT",
    "EpmdClient",
    "EpmdClientClosed",
    "EpmdConnectionError",
    "EpmdProtocolError",
    "EpmdServer",
    "EpmdTimeout",
    "InvalidName",
    "NameInUse",
    "NodeInfo",
    "RegistrationRefused",
    "check_name",
    "ping",
    "spawn_daemon",
]
