"""Node configuration: the node id digest, the cookie, the port mapper address,
and :class:`LinkConfig`, the settings of every link.

Each follows Erlang's habits where it has one: the cookie comes from the
argument, else ``JOERL_COOKIE``, else ``~/.joerl.cookie`` (created with a random
value and mode 0400 when missing, as ``~/.erlang.cookie`` is); a link's tick
time defaults to Erlang's net_ticktime, its handshake timeout to net_setuptime.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .frames import DEFAULT_MAX_FRAME_SIZE

DEFAULT_EPMD_ADDRESS = "127.0.0.1:4369"
COOKIE_ENV = "JOERL_COOKIE"
EPMD_ENV = "JOERL_EPMD_ADDRESS"
COOKIE_FILE = "~/.joerl.cookie"
#: The smallest ``LinkConfig.tick_time``, in seconds.
MIN_TICK_TIME = 1.0


def node_id_of(name: str) -> int:
    """The node's 32-bit id: the first 4 bytes of SHA-256 of its name (never 0).

    Stable across processes and machines (unlike ``hash()``), so any node can
    compute the id of any name the port mapper lists.
    """
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return digest or 1


def resolve_epmd_address(address: str | None = None) -> str:
    """The argument, else ``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``."""
    return address or os.environ.get(EPMD_ENV) or DEFAULT_EPMD_ADDRESS


def load_cookie(cookie: str | bytes | None = None, path: str | None = None) -> bytes:
    """The argument, else ``$JOERL_COOKIE``, else the cookie file (created if missing)."""
    if cookie is not None:
        value = cookie.encode() if isinstance(cookie, str) else bytes(cookie)
        if not value:
            raise ValueError("the cookie must not be empty")
        return value
    env = os.environ.get(COOKIE_ENV)
    if env:
        return env.encode()
    file = Path(os.path.expanduser(path or COOKIE_FILE))
    try:
        value = file.read_bytes().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(24).encode()
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError:  # another node created it first: use theirs
            value = file.read_bytes().strip()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
            return value
    if not value:
        raise ValueError(f"cookie file {file} is empty")
    return value


@dataclass(frozen=True)
class LinkConfig:
    """Settings of a link (both the handshake and the running connection).

    Attributes:
        tick_time: seconds; a peer heard nothing from for this long is declared
            down. An idle link sends a tick every quarter of the smaller of
            both sides' tick times. Default 60 (Erlang's net_ticktime); at least 1.
        handshake_timeout: seconds for connect + handshake (Erlang's
            net_setuptime, 7 s).
        max_frame_size: the largest frame body accepted from the peer (and
            announced to it); a larger one closes the link. Default 64 MiB.
        max_queue_bytes: the outgoing queue's cap. A sender finding it full
            waits cooperatively for the writer (backpressure); the queue holds
            at most this plus one frame. The link's reader and ticker and the
            hub cannot wait: past twice this (``queue_hard_limit``) a frame
            they queue closes the link instead (the peer is not reading).
            Default 8 MiB.
        send_timeout: how long a sender may wait on a full queue before the
            link is dropped as dead (the peer does not read). Default 60 s.
        recv_size: bytes asked of each ``recv``. Default 256 KiB.
        mandatory_flags: capability flags the peer must offer.
        wrap_socket: ``wrap_socket(sock, server_side) -> sock``, applied after
            TCP connect/accept and before the handshake: the TLS hook, e.g.
            ``lambda s, server: ctx.wrap_socket(s, server_side=server, ...)``
            with a gevent ``ssl.SSLContext``. None: plain TCP.
    """

    tick_time: float = 60.0
    handshake_timeout: float = 7.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_queue_bytes: int = 8 * 1024 * 1024
    send_timeout: float = 60.0
    recv_size: int = 256 * 1024
    mandatory_flags: int = 0
    wrap_socket: Callable[[Any, bool], Any] | None = None

    def __post_init__(self) -> None:
        if not self.tick_time >= MIN_TICK_TIME:
            raise ValueError(f"tick_time must be at least {MIN_TICK_TIME}s, got {self.tick_time}")
        if not self.handshake_timeout > 0:
            raise ValueError(f"handshake_timeout must be positive, got {self.handshake_timeout}")
        if not self.send_timeout > 0:
            raise ValueError(f"send_timeout must be positive, got {self.send_timeout}")
        if self.max_queue_bytes < 1 or self.recv_size < 1:
            raise ValueError("max_queue_bytes and recv_size must be positive")

    @property
    def queue_hard_limit(self) -> int:
        """Bytes queued past which a frame from a greenlet that cannot wait
        (the link's reader or ticker, the hub) closes the link: 2 x ``max_queue_bytes``."""
        return 2 * self.max_queue_bytes
