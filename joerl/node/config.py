"""Node configuration: the node id digest, the cookie, the port mapper address,
and :class:`LinkConfig`, the settings of every link.

Each follows Erlang's habits where it has one: the cookie comes from the
argument, else ``JOERL_COOKIE``, else ``~/.joerl.cookie`` (created with a random
value and mode 0400 when missing, as ``~/.erlang.cookie`` is, and refused when
group or others may read it or when it is not a regular file); a link's tick
time defaults to Erlang's net_ticktime, its handshake timeout to net_setuptime.

A node's incarnation (:func:`choose_creation`) is a random 32-bit number of
its own, not the port mapper's, which repeats when a port mapper restarts.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CookieFileError
from ..serialization import Limits
from .compression import check_offer
from .frames import DEFAULT_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE

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


def choose_creation(registered_creation: int = 0, randbits: Callable[[int], int] = secrets.randbits) -> int:
    """The creation (incarnation number) of a starting node: random, 1..2**32-1.

    Always random, never the port mapper's: a port mapper that starts afresh
    hands out ``max(4, now + 1)`` (as Erlang's epmd does), so a node and its
    port mapper restarting within the same second would get the dead
    incarnation's creation, and a pid of the dead incarnation would reach a
    process of the new one. Creations need not be sequential (OTP 23+ makes
    them 32-bit and compares them for equality only); two incarnations of
    one name collide with probability 2**-32, and the handshake's 64-bit
    ``incarnation`` tells a restarted peer apart even then.

    Args:
        registered_creation: what the port mapper handed out (0: none); the
            result differs from it, so that it never equals a creation an
            older joerl, which took the port mapper's, may have used.
        randbits: the random source (injected in tests).

    Returns:
        The creation.
    """
    while True:
        creation = randbits(32) & 0xFFFFFFFF
        if creation and creation != registered_creation:
            return creation


def new_incarnation(randbits: Callable[[int], int] = secrets.randbits) -> int:
    """A random 64-bit incarnation id, 1..2**64-1, sent in the handshake's HELLO."""
    while True:
        value = randbits(64) & 0xFFFFFFFFFFFFFFFF
        if value:
            return value


def load_cookie(cookie: str | bytes | None = None, path: str | None = None) -> bytes:
    """The argument, else ``$JOERL_COOKIE``, else the cookie file (created if missing).

    The cookie file must be a regular file (not a symbolic link, which would
    make another file's content the cookie) that neither group nor others may
    read or write, as Erlang requires of ``~/.erlang.cookie``. A missing one is
    created with a random value and mode 0400.

    Args:
        cookie: the cookie itself (str is UTF-8 encoded).
        path: the cookie file (default ``~/.joerl.cookie``).

    Returns:
        The cookie.

    Raises:
        ValueError: ``cookie`` is empty.
        CookieFileError: the file is unsafe, not a regular file, unreadable,
            empty, or cannot be created (home missing or read-only).
    """
    if cookie is not None:
        value = cookie.encode() if isinstance(cookie, str) else bytes(cookie)
        if not value:
            raise ValueError("the cookie must not be empty")
        return value
    env = os.environ.get(COOKIE_ENV)
    if env:
        return env.encode()
    name = os.path.expanduser(path or COOKIE_FILE)
    if name.startswith("~"):
        raise CookieFileError(name, "no home directory to find it in (set $HOME, or pass cookie=)")
    file = Path(name)
    found = _read_cookie_file(file)
    value = _create_cookie_file(file) if found is None else found
    if not value:
        raise CookieFileError(str(file), "is empty")
    return value


def _read_cookie_file(file: Path) -> bytes | None:
    """The cookie file's content, stripped; None when it does not exist."""
    try:
        fd = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        if file.is_symlink():
            raise CookieFileError(
                str(file), "is a symbolic link (to a missing file); it must be a regular file"
            ) from None
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP or file.is_symlink():
            raise CookieFileError(str(file), "is a symbolic link; it must be a regular file") from None
        raise CookieFileError(str(file), f"cannot be read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CookieFileError(str(file), "is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if st.st_mode & 0o077:
            raise CookieFileError(
                str(file),
                f"mode {stat.S_IMODE(st.st_mode):04o} lets group or others access it; "
                f"it must be accessible by its owner only (chmod 400 {file})",
            )
        try:
            return fh.read().strip()
        except OSError as exc:
            raise CookieFileError(str(file), f"cannot be read: {exc.strerror or exc}") from None


def _create_cookie_file(file: Path) -> bytes:
    """Create the missing cookie file with a random value, mode 0400; its content."""
    value = secrets.token_urlsafe(24).encode()
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o400)
    except FileExistsError:  # another node created it first: use theirs
        theirs = _read_cookie_file(file)
        if theirs is None:
            raise CookieFileError(str(file), "vanished while it was being created") from None
        return theirs
    except OSError as exc:
        raise CookieFileError(str(file), f"is missing and cannot be created: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
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
            It is the node's one message-size limit: its decoding limits
            (``Limits.max_bytes``, ``max_str_len``, ``max_bin_len``) default
            to it (:func:`message_limits`), and a peer refuses to send a
            bigger message (:class:`~joerl.errors.MessageTooLarge`) before
            writing anything.
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
            with a gevent ``ssl.SSLContext``. None: plain TCP. A hook with a
            ``check_peer_name(sock, name)`` method (as
            :class:`~joerl.node.tls.TlsWrapper` has) is also asked, once the
            peer's HELLO is in, whether its certificate binds the name it
            claims; a HandshakeError from it refuses the link.
        compression: the frame compression codecs this node offers, most
            preferred first (``"zstd"``, ``"zlib"``; see
            :mod:`joerl.node.compression` and docs/distribution.md). Empty
            (the default): no compression either way. A link compresses
            only with a codec both sides offer.
        compress_min: frames of fewer bytes are never compressed (no
            attempt: small messages cost nothing). Default 4 KiB.
        ack_interval: seconds; the receiving side of a link acknowledges
            the messages it took off it at most this often (one ACK frame
            per interval while messages arrive), so that the sender reports
            those not acknowledged when the link goes down
            (``unconfirmed_at_link_down``). Default 0.1.
    """

    tick_time: float = 60.0
    handshake_timeout: float = 7.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_queue_bytes: int = 8 * 1024 * 1024
    send_timeout: float = 60.0
    recv_size: int = 256 * 1024
    mandatory_flags: int = 0
    wrap_socket: Callable[[Any, bool], Any] | None = None
    compression: tuple[str, ...] = ()
    compress_min: int = 4096
    ack_interval: float = 0.1

    def __post_init__(self) -> None:
        check_offer(self.compression)
        if self.compress_min < 1:
            raise ValueError(f"compress_min must be positive, got {self.compress_min}")
        if not self.tick_time >= MIN_TICK_TIME:
            raise ValueError(f"tick_time must be at least {MIN_TICK_TIME}s, got {self.tick_time}")
        if not self.handshake_timeout > 0:
            raise ValueError(f"handshake_timeout must be positive, got {self.handshake_timeout}")
        if not self.send_timeout > 0:
            raise ValueError(f"send_timeout must be positive, got {self.send_timeout}")
        if not 0 < self.ack_interval <= self.tick_time:
            raise ValueError(f"ack_interval must be in (0, tick_time], got {self.ack_interval}")
        if self.max_queue_bytes < 1 or self.recv_size < 1:
            raise ValueError("max_queue_bytes and recv_size must be positive")

    @property
    def queue_hard_limit(self) -> int:
        """Bytes queued past which a frame from a greenlet that cannot wait
        (the link's reader or ticker, the hub) closes the link: 2 x ``max_queue_bytes``."""
        return 2 * self.max_queue_bytes


def message_limits(config: LinkConfig, limits: Limits | None) -> tuple[LinkConfig, Limits]:
    """One message-size limit for a node: its link settings and decoding limits, agreed.

    Without ``limits``, the decoding limits take the frame limit
    (``config.max_frame_size``) for the longest message, str and bytes value,
    so that every frame the node accepts decodes. With ``limits`` whose
    ``max_bytes`` is smaller, the node announces that as its frame limit
    instead (at least ``MIN_MAX_FRAME_SIZE``), so that peers refuse a bigger
    message before sending it rather than this node dropping it.
    """
    if limits is None:
        size = config.max_frame_size
        return config, replace(Limits(), max_bytes=size, max_str_len=size, max_bin_len=size)
    if limits.max_bytes < config.max_frame_size:
        config = replace(config, max_frame_size=max(limits.max_bytes, MIN_MAX_FRAME_SIZE))
    return config, limits
