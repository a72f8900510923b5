"""EpmdClient: register, look up and list nodes at a port mapper, joerl's or Erlang's.

This module owns the client side of the port mapper: one-shot queries (each
on a fresh connection, so any greenlet may call any method at any time),
registrations (each holding its own connection, with a keep-alive greenlet
that registers again by itself when the daemon goes away), ``ping`` and
``spawn_daemon``.

Against joerl's daemon the client speaks joerl's extension (host, metadata
and creation travel both ways). Against Erlang's ``epmd``, which closes an
extension request without a reply, it falls back to ALIVE2, PORT_PLEASE2 and
NAMES: a registration then carries no host and no metadata (lookups report
the daemon's host and empty metadata), lookups report creation 0 (unknown),
and a registration ends only by closing its connection.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import gevent
import gevent.lock
from gevent import socket

from ..errors import EpmdClientClosed, EpmdConnectionError, EpmdError, EpmdTimeout, NameInUse, RegistrationRefused
from . import protocol as p
from .protocol import NodeInfo

__all__ = [
    "EpmdClient",
    "EpmdClientClosed",
    "EpmdConnectionError",
    "EpmdTimeout",
    "NameInUse",
    "RegistrationRefused",
    "ping",
    "spawn_daemon",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_KEEPALIVE = 20.0
DEFAULT_RETRY = 2.0
_T = TypeVar("_T")


class _NoReply(Exception):
    """The daemon closed an extension request without a word: it is Erlang's."""


class EpmdClient:
    """A port mapper client.

    Args:
        address: ``"host:port"`` of the daemon (default port 4369).
        timeout: seconds each call may take (connect, send, reply).
        keepalive_interval: seconds between a registration's keep-alives.
        retry_interval: seconds between attempts to register again after the
            daemon went away (at most ``keepalive_interval``).
        on_registered: called with the :class:`NodeInfo` after each
            successful registration: first in the greenlet calling
            :meth:`register`, then in the keep-alive greenlet after each
            re-registration (whose creation is usually new). Exceptions it
            raises are logged.
        max_reply: largest reply accepted, in bytes.
    """

    def __init__(
        self,
        address: str | tuple[str, int] = "127.0.0.1:4369",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE,
        retry_interval: float = DEFAULT_RETRY,
        on_registered: Callable[[NodeInfo], Any] | None = None,
        max_reply: int = 64 * 1024 * 1024,
    ) -> None:
        self.host, self.port = p.parse_address(address)
        self._family = _ip_family(self.host)
        self.timeout = timeout
        self.keepalive_interval = keepalive_interval
        self.retry_interval = min(retry_interval, keepalive_interval)
        self.on_registered = on_registered
        self.max_reply = max_reply
        #: ``"joerl"`` or ``"erlang"`` once known, else None.
        self.daemon_kind: str | None = None
        self._regs: dict[str, _Registration] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<EpmdClient {self.address} ({self.daemon_kind or 'unknown'})>"

    @property
    def address(self) -> str:
        return p.format_address(self.host, self.port)

    def __enter__(self) -> EpmdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries --------------------------------------------------------------

    def lookup(self, name: str) -> NodeInfo | None:
        """Where does node ``name`` listen? None if it is not registered.

        Raises:
            InvalidName: ``name`` cannot be registered (e.g. it has ``@host``).
            EpmdError: the daemon could not be asked (see the subclasses).
        """
        p.check_name(name)
        self._check_open()
        if self.daemon_kind != "erlang":
            try:
                reply = self._ext_call(p.Lookup(name, close=True), p.LookupResult)
            except _NoReply:
                self.daemon_kind = "erlang"
            else:
                return None if reply.node is None else reply.node.with_host(self.host)
        return self.port_please(name)

    def port_please(self, name: str) -> NodeInfo | None:
        """Look ``name`` up with Erlang's PORT_PLEASE2 (no host, metadata or creation)."""
        p.check_name(name)
        reply = self._classic_call(p.PortPlease2Req(name))
        assert isinstance(reply, p.Port2Resp)
        return None if reply.node is None else reply.node.with_host(self.host)

    def list_nodes(self) -> list[NodeInfo]:
        """Every registered node (Erlang's daemon: names and ports only)."""
        self._check_open()
        if self.daemon_kind != "erlang":
            try:
                reply = self._ext_call(p.ListNodes(close=True), p.NodeList)
            except _NoReply:
                self.daemon_kind = "erlang"
            else:
                return [n.with_host(self.host) for n in reply.nodes]
        return [NodeInfo(name, self.host, port, kind="") for name, port in reversed(self.names())]

    def names(self) -> list[tuple[str, int]]:
        """``(name, port)`` pairs from NAMES_REQ, newest registration first."""
        reply = self._classic_call(p.NamesReq())
        assert isinstance(reply, p.NamesResp)
        return list(reply.nodes)

    def ping(self) -> bool:
        """Does a port mapper (joerl's or Erlang's) answer? Never raises."""
        try:
            self._classic_call(p.NamesReq())
            return True
        except EpmdError:
            return False

    def probe(self) -> str:
        """Ask which daemon answers: ``"joerl"`` or ``"erlang"`` (also stored in
        :attr:`daemon_kind`).

        Raises:
            EpmdError: none answers.
        """
        try:
            self._ext_call(p.Ping(close=True), p.Pong)
            self.daemon_kind = "joerl"
        except _NoReply:
            self._classic_call(p.NamesReq())
            self.daemon_kind = "erlang"
        return self.daemon_kind

    # -- registration -------------------------------------------------------------

    def register(
        self,
        name: str,
        host: str,
        port: int,
        metadata: dict[str, Any] | None = None,
        *,
        node_type: int = p.NODE_TYPE_NORMAL,
        highest_version: int = 6,
        lowest_version: int = 6,
        extra: bytes = b"",
    ) -> NodeInfo:
        """Register node ``name`` listening at ``host:port``, and keep it registered.

        The registration holds a connection to the daemon; a keep-alive
        greenlet sends keep-alives every ``keepalive_interval`` and, if the
        daemon goes away, registers again (see ``on_registered``) until
        :meth:`unregister` or :meth:`close`.

        Returns:
            the registered node, with the ``creation`` the daemon assigned.

        Raises:
            InvalidName: the name cannot be registered.
            NameInUse: the name is taken.
            RegistrationRefused: the daemon refused for another reason.
            EpmdError: the daemon could not be reached (see the subclasses).
        """
        p.check_name(name)
        self._check_open()
        if name in self._regs:
            raise NameInUse(name, "by this client")
        if type(port) is not int or not 1 <= port <= 0xFFFF:
            raise ValueError(f"port must be an int in 1..65535, got {port!r}")
        req = p.Register(name, host, port, dict(metadata or {}), node_type, 0, highest_version, lowest_version, extra)
        req.encode()  # fail here, not in the background, on what cannot be sent
        reg = _Registration(self, req)
        self._regs[name] = reg
        try:
            info = reg.establish()
        except BaseException:
            del self._regs[name]
            raise
        reg.start()
        self._notify(info)
        return info

    def registration(self, name: str) -> NodeInfo | None:
        """The current registration of ``name`` by this client (its creation
        changes when it registers again), or None (not registered, or lost
        and not registered again yet)."""
        reg = self._regs.get(name)
        return None if reg is None else reg.info

    def unregister(self, name: str) -> bool:
        """End this client's registration of ``name``.

        Against joerl's daemon the name is gone when this returns; against
        Erlang's, as soon as epmd notices the closed connection.

        Returns:
            False if this client did not hold ``name``.
        """
        reg = self._regs.pop(name, None)
        if reg is None:
            return False
        reg.stop()
        return True

    def close(self) -> None:
        """Unregister every name this client holds and stop its greenlets."""
        self._closed = True
        for name in list(self._regs):
            self.unregister(name)

    def _check_open(self) -> None:
        if self._closed:
            raise EpmdClientClosed(f"{self!r} is closed")

    def _notify(self, info: NodeInfo) -> None:
        if self.on_registered is None:
            return
        try:
            self.on_registered(info)
        except Exception:
            log.exception("on_registered callback failed for %s", info.name)

    # -- one-shot calls -------------------------------------------------------------

    def _connect(self) -> socket.socket:
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

    def _timed(self, what: str, fn: Callable[[], _T]) -> _T:
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

    def _classic_call(self, req: Any) -> p.ClassicReply:
        what = type(req).__name__

        def run() -> p.ClassicReply:
            sock = self._connect()
            try:
                sock.sendall(req.encode())
                decoder = p.ClassicReplyDecoder(req, self.max_reply)
                while True:
                    data = sock.recv(65536)
                    if not data:
                        return _protocol(lambda: decoder.feed_eof(), what)
                    reply = _protocol(lambda data=data: decoder.feed(data), what)
                    if reply is not None:
                        return reply
            finally:
                sock.close()

        return self._timed(what, run)

    def _ext_call(self, req: Any, expect: type[_T]) -> _T:
        """One extension request on a fresh connection.

        Raises:
            _NoReply: the daemon closed without a byte (Erlang's epmd).
        """
        what = type(req).__name__

        def run() -> _T:
            sock = self._connect()
            try:
                sock.sendall(req.encode())
                reply = _read_ext_reply(sock, p.ExtReplyDecoder(self.max_reply), expect, what)
                # The daemon closes first (the request said so): wait for it, so
                # that TIME_WAIT stays on its side, as with Erlang's requests.
                if _recv_quietly(sock):
                    raise p.EpmdProtocolError(f"unexpected bytes after the reply to {what}")
                return reply
            finally:
                sock.close()

        try:
            reply = self._timed(what, run)
        except _ExtRefusal as refusal:
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


def _protocol(fn: Callable[[], _T], what: str) -> _T:
    try:
        return fn()
    except p.EpmdProtocolError as exc:
        raise p.EpmdProtocolError(f"bad reply to {what}: {exc}") from None


def _recv_quietly(sock: socket.socket) -> bytes:
    try:
        data: bytes = sock.recv(1)
        return data
    except ConnectionResetError:
        return b""


def _read_ext_reply(sock: socket.socket, decoder: p.ExtReplyDecoder, expect: type[_T], what: str) -> _T:
    got = 0
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            if got == 0:
                raise _NoReply()
            raise EpmdConnectionError(f"the port mapper closed the connection in the middle of a reply to {what}")
        got += len(data)
        replies = _protocol(lambda data=data: decoder.feed(data), what)
        if replies:
            reply = replies[0]
            if len(replies) > 1 or decoder.buffered:
                raise p.EpmdProtocolError(f"unexpected bytes after the reply to {what}")
            if isinstance(reply, expect):
                return reply
            if isinstance(reply, p.ExtError):
                raise _ExtRefusal(reply)
            raise p.EpmdProtocolError(f"{type(reply).__name__} is no reply to {what}")


class _ExtRefusal(Exception):
    def __init__(self, error: p.ExtError) -> None:
        super().__init__(error.message)
        self.error = error


class _Registration:
    """One registered name: its connection and its keep-alive greenlet."""

    def __init__(self, client: EpmdClient, req: p.Register) -> None:
        self.client = client
        self.req = req
        self.sock: socket.socket | None = None
        self.kind: str | None = None
        self.info: NodeInfo | None = None
        self.decoder: p.ExtReplyDecoder | None = None
        self.lock = gevent.lock.Semaphore()
        self.greenlet: gevent.Greenlet | None = None
        self.stopping = False

    # Every use of ``sock`` for a request is under ``lock``; the keep-alive
    # greenlet waits for the daemon's silence (recv) outside it, and stop()
    # kills that greenlet before touching the socket.

    def establish(self) -> NodeInfo:
        """Connect and register (extension first, ALIVE2 if the daemon is Erlang's)."""
        c = self.client
        with self.lock:
            if c.daemon_kind != "erlang":
                try:
                    info = self._register_ext()
                except _NoReply:
                    c.daemon_kind = "erlang"
                else:
                    c.daemon_kind = "joerl"
                    return info
            return self._register_alive2()

    def _register_ext(self) -> NodeInfo:
        c = self.client
        name = self.req.name
        sock = c._connect()
        decoder = p.ExtReplyDecoder(c.max_reply)
        try:

            def run() -> p.Registered:
                sock.sendall(self.req.encode())
                return _read_ext_reply(sock, decoder, p.Registered, "register")

            try:
                reply = c._timed(f"registering {name!r}", run)
            except _ExtRefusal as refusal:
                err = refusal.error
                if err.code == "name_in_use":
                    raise NameInUse(name, f"at {c.address}") from None
                raise RegistrationRefused(name, err.code, err.message) from None
        except BaseException:
            sock.close()
            raise
        self.sock, self.decoder, self.kind = sock, decoder, "joerl"
        self.info = reply.node.with_host(c.host)
        return self.info

    def _register_alive2(self) -> NodeInfo:
        c = self.client
        r = self.req
        req = p.Alive2Req(r.port, r.name, r.node_type, 0, r.highest_version, r.lowest_version, r.extra)
        sock = c._connect()
        try:

            def run() -> p.Alive2Resp:
                sock.sendall(req.encode())
                decoder = p.ClassicReplyDecoder(req)
                while True:
                    data = sock.recv(64)
                    if not data:
                        _protocol(decoder.feed_eof, "ALIVE2")
                    reply = _protocol(lambda data=data: decoder.feed(data), "ALIVE2")
                    if reply is not None:
                        if decoder.trailing:
                            raise p.EpmdProtocolError("unexpected bytes after the ALIVE2 reply")
                        assert isinstance(reply, p.Alive2Resp)
                        return reply

            reply = c._timed(f"registering {r.name!r}", run)
            if not reply.ok:
                raise NameInUse(r.name, f"epmd at {c.address} refused it (result {reply.result})")
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.sock, self.decoder, self.kind = sock, None, "erlang"
        self.info = NodeInfo(
            r.name,
            c.host,
            r.port,
            {},
            reply.creation,
            r.node_type,
            0,
            r.highest_version,
            r.lowest_version,
            r.extra,
            "erlang",
        )
        return self.info

    def start(self) -> None:
        self.greenlet = gevent.spawn(self._run)

    def _drop(self, why: str) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.decoder = None
        self.info = None
        self.client.daemon_kind = None  # whoever answers next may be the other kind of daemon
        log.warning(
            "lost the registration of %s at %s (%s); registering again", self.req.name, self.client.address, why
        )

    def _run(self) -> None:
        c = self.client
        while not self.stopping:
            if self.sock is None:
                try:
                    info = self.establish()
                except EpmdError as exc:
                    log.warning("registering %s again at %s failed: %s", self.req.name, c.address, exc)
                    gevent.sleep(c.retry_interval)
                    continue
                except Exception:  # a bug must not end the registration for good
                    log.exception("registering %s again at %s failed", self.req.name, c.address)
                    gevent.sleep(c.retry_interval)
                    continue
                log.info("registered %s again at %s, creation %d", info.name, c.address, info.creation)
                c._notify(info)
                continue
            sock = self.sock
            sock.settimeout(c.keepalive_interval if self.kind == "joerl" else None)
            try:
                data = sock.recv(4096)
            except socket.timeout:
                self._keepalive()
                continue
            except OSError as exc:
                self._drop(f"connection error: {exc}")
                continue
            self._drop("the daemon closed the connection" if not data else "unexpected bytes from the daemon")

    def _keepalive(self) -> None:
        c = self.client
        with self.lock:
            sock, decoder = self.sock, self.decoder
            if sock is None or decoder is None:
                return
            try:

                def run() -> p.KeepAliveAck:
                    sock.sendall(p.KeepAlive(self.req.name).encode())
                    return _read_ext_reply(sock, decoder, p.KeepAliveAck, "keepalive")

                c._timed("keep-alive", run)
            except (EpmdError, _NoReply, _ExtRefusal) as exc:
                self._drop(f"keep-alive failed: {exc or type(exc).__name__}")

    def stop(self) -> None:
        """Stop the keep-alive greenlet and end the registration."""
        self.stopping = True
        with self.lock:
            g = self.greenlet
            if g is not None and g is not gevent.getcurrent():
                g.kill(block=True)
            sock, self.sock = self.sock, None
            if sock is None:
                return
            try:
                if self.kind == "joerl" and self.decoder is not None:
                    decoder = self.decoder

                    def run() -> p.Unregistered:
                        sock.sendall(p.Unregister(self.req.name).encode())
                        return _read_ext_reply(sock, decoder, p.Unregistered, "unregister")

                    self.client._timed("unregister", run)
            except (EpmdError, _NoReply, _ExtRefusal) as exc:
                log.debug("unregister %s: %s (closing anyway)", self.req.name, exc)
            finally:
                sock.close()
                self.info = None


# -- module-level helpers ---------------------------------------------------------------


def ping(address: str | tuple[str, int] = "127.0.0.1:4369", timeout: float = 1.0) -> bool:
    """Does a port mapper (joerl's or Erlang's) answer at ``address``?"""
    return EpmdClient(address, timeout=timeout).ping()


def spawn_daemon(
    address: str = "127.0.0.1:4369", *, timeout: float = 10.0, args: list[str] | tuple[str, ...] = ()
) -> int:
    """Start ``joerl-epmd --daemon address`` as a detached process and wait until it answers.

    This is what a node does when it finds no port mapper (as ``erl`` starts
    ``epmd -daemon``). If another daemon took the address meanwhile and
    answers, that is success too.

    Args:
        address: where the daemon listens.
        timeout: seconds to wait for it.
        args: further command-line options (e.g. ``["--keepalive-timeout", "30"]``).

    Returns:
        the daemon's process id (0 if another daemon already answered there).

    Raises:
        EpmdError: it did not start, or does not answer.
    """
    from gevent import subprocess

    cmd = [sys.executable, "-m", "joerl.epmd", "--daemon", *args, address]
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", "")
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env["PYTHONPATH"] else "")
    try:
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise EpmdTimeout(f"joerl-epmd --daemon {address} did not report within {timeout}s") from None
    out = proc.stdout.decode("utf-8", "replace")
    pid = 0
    for word in out.split():
        if word.startswith("pid="):
            pid = int(word[4:])
    if proc.returncode != 0 or not pid:
        if ping(address, timeout=1.0):
            return 0
        err = proc.stderr.decode("utf-8", "replace").strip() or out.strip()
        raise EpmdConnectionError(f"could not start joerl-epmd at {address}: {err}")
    if not ping(address, timeout=min(timeout, 2.0)):
        raise EpmdConnectionError(f"joerl-epmd started (pid {pid}) but does not answer at {address}")
    return pid
