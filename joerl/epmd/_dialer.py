"""Dialer: the client's one-shot calls to a port mapper, each on a fresh connection.

Wire layout (every integer big-endian; see :mod:`._classic` and :mod:`._ext`)::

    Erlang's:  -> Len:16 | op | ...        <- reply (its layout, or the close, ends it)
    joerl's:   -> Len:16 | 'J' | map       <- 'J' | Len:32 | map, then the daemon closes

This module owns connecting (an IP literal skips the resolver), the one
timeout over a whole call, the mapping of socket errors to
:class:`EpmdTimeout` and :class:`EpmdConnectionError`, reading one
extension reply (:func:`read_ext_reply`, also used on a registration's
connection), and which daemon answered (:attr:`Dialer.daemon_kind`): an
extension request that Erlang's epmd closes without a byte raises
:class:`NoReply`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import gevent
from gevent import socket

from ..address import format_address
from ..errors import EpmdConnectionError, EpmdError, EpmdProtocolError, EpmdTimeout
from . import protocol as p

__all__ = ["Dialer", "ExtRefusal", "NoReply", "checked", "read_ext_reply"]

_T = TypeVar("_T")


class NoReply(Exception):
    """The daemon closed an extension request without a word: it is Erlang's."""


class ExtRefusal(Exception):
    """The daemon answered an extension request with an ``error`` reply."""

    def __init__(self, error: p.ExtError) -> None:
        super().__init__(error.message)
        self.error = error


class Dialer:
    """Connects to one port mapper and makes calls with a timeout.

    Args:
        host: the daemon's host.
        port: the daemon's port.
        timeout: seconds each call may take (connect, send, reply).
        max_reply: largest reply accepted, in bytes.
    """

    def __init__(self, host: str, port: int, timeout: float, max_reply: int) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_reply = max_reply
        #: ``"joerl"`` or ``"erlang"`` once known, else None.
        self.daemon_kind: str | None = None
        self._family = _ip_family(host)

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)

    def connect(self) -> socket.socket:
        """A connection to the daemon.

        Raises:
            EpmdTimeout: connecting took longer than ``timeout``.
            EpmdConnectionError: nothing answers.
        """
        try:
            if self._family is None:
                return socket.create_connection((self.host, self.port), timeout=self.timeout)
            # An IP literal: no need for the resolver (and its thread pool).
            sock = socket.socket(self._family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect((self.host, self.port))
            except BaseException:
                sock.close()
                raise
            return sock
        except socket.timeout:
            raise EpmdTimeout(
                f"connecting to the port mapper at {self.address} timed out after {self.timeout}s"
            ) from None
        except OSError as exc:
            raise EpmdConnectionError(
                f"cannot reach the port mapper at {self.address}: {exc.strerror or exc}"
            ) from None

    def timed(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` within ``timeout``, socket errors mapped to :class:`EpmdError` subclasses."""
        timer = gevent.Timeout(self.timeout)
        timer.start()
        try:
            return fn()
        except EpmdError:
            raise
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise EpmdTimeout(f"{what} at {self.address}: no reply within {self.timeout}s") from None
        except socket.timeout:
            raise EpmdTimeout(f"{what} at {self.address}: no reply within {self.timeout}s") from None
        except OSError as exc:
            raise EpmdConnectionError(f"{what} at {self.address} failed: {exc.strerror or exc}") from None
        finally:
            timer.close()

    def classic_call(self, req: Any) -> p.ClassicReply:
        """One of Erlang's requests on a fresh connection, and its reply."""
        what = type(req).__name__

        def run() -> p.ClassicReply:
            sock = self.connect()
            try:
                sock.sendall(req.encode())
                decoder = p.ClassicReplyDecoder(req, self.max_reply)
                while True:
                    data = sock.recv(65536)
                    if not data:
                        return checked(decoder.feed_eof, what)
                    reply = checked(partial(decoder.feed, data), what)
                    if reply is not None:
                        return reply
            finally:
                sock.close()

        return self.timed(what, run)

    def ext_call(self, req: Any, expect: type[_T]) -> _T:
        """One extension request on a fresh connection (the daemon then closes).

        Raises:
            NoReply: the daemon closed without a byte (Erlang's epmd).
            EpmdError: the daemon refused the request, or see :meth:`timed`.
        """
        what = type(req).__name__

        def run() -> _T:
            sock = self.connect()
            try:
                sock.sendall(req.encode())
                reply = read_ext_reply(sock, p.ExtReplyDecoder(self.max_reply), expect, what)
                # The daemon closes first (the request said so): wait for it, so
                # that TIME_WAIT stays on its side, as with Erlang's requests.
                if _recv_quietly(sock):
                    raise EpmdProtocolError(f"unexpected bytes after the reply to {what}")
                return reply
            finally:
                sock.close()

        try:
            reply = self.timed(what, run)
        except ExtRefusal as refusal:
            err = refusal.error
            raise EpmdError(f"{what} refused by {self.address} ({err.code}): {err.message}") from None
        self.daemon_kind = "joerl"
        return reply


def _ip_family(host: str) -> int | None:
    try:
        family: int = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        return family
    except ValueError:
        return None


def checked(fn: Callable[[], _T], what: str) -> _T:
    """``fn()``, its protocol errors reworded as a bad reply to ``what``."""
    try:
        return fn()
    except EpmdProtocolError as exc:
        raise EpmdProtocolError(f"bad reply to {what}: {exc}") from None


def _recv_quietly(sock: socket.socket) -> bytes:
    try:
        data: bytes = sock.recv(1)
        return data
    except ConnectionResetError:
        return b""


def read_ext_reply(sock: socket.socket, decoder: p.ExtReplyDecoder, expect: type[_T], what: str) -> _T:
    """Read the one reply to an extension request sent on ``sock``.

    Raises:
        NoReply: the daemon closed before the first byte.
        ExtRefusal: the reply is an ``error``.
        EpmdConnectionError: the daemon closed in the middle of the reply.
        EpmdProtocolError: the reply is not an ``expect``, or bytes follow it.
    """
    got = 0
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            if got == 0:
                raise NoReply()
            raise EpmdConnectionError(f"the port mapper closed the connection in the middle of a reply to {what}")
        got += len(data)
        replies = checked(partial(decoder.feed, data), what)
        if replies:
            reply = replies[0]
            if len(replies) > 1 or decoder.buffered:
                raise EpmdProtocolError(f"unexpected bytes after the reply to {what}")
            if isinstance(reply, expect):
                return reply
            if isinstance(reply, p.ExtError):
                raise ExtRefusal(reply)
            raise EpmdProtocolError(f"{type(reply).__name__} is no reply to {what}")
