"""EpmdClient: register, look up and list nodes at a port mapper, joerl's or Erlang's.

This module owns the client side of the port mapper: one-shot queries (each
on a fresh connection, so any greenlet may call any method at any time),
registrations (each holding its own connection, with a keep-alive greenlet
that registers again by itself when the daemon goes away), ``ping`` and
``spawn_daemon``. The calls themselves are :mod:`._dialer`'s business, a
registration's life cycle :mod:`._registration`'s.

Against joerl's daemon the client speaks joerl's extension (host, metadata
and creation travel both ways). Against Erlang's ``epmd``, which closes an
extension request without a reply, it falls back to ALIVE2, PORT_PLEASE2 and
NAMES: a registration then carries no host and no metadata (lookups report
the daemon's host and empty metadata), lookups report creation 0 (unknown),
and a registration ends only by closing its connection.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import EpmdClientClosed, EpmdConnectionError, EpmdError, EpmdTimeout, NameInUse, RegistrationRefused
from . import protocol as p
from ._dialer import Dialer, NoReply
from ._registration import Registration
from .protocol import NodeInfo

__all__ = [
    "EpmdClient",
    "EpmdClientClosed",
    "EpmdConnectionError",
    "EpmdTimeout",
    "NameInUse",
    "RegistrationRefused",
    "describe_listener",
    "ping",
    "spawn_daemon",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
DEFAULT_KEEPALIVE = 20.0
DEFAULT_RETRY = 2.0


class EpmdClient:
    """A port mapper client.

    Args:
        address: ``"host:port"`` of the daemon (default port 4369).
        timeout: seconds each call may take (connect, send, reply).
        keepalive_interval: seconds between a registration's keep-alives.
        retry_interval: the longest wait, in seconds, between attempts to
            register again after the daemon went away (at most
            ``keepalive_interval``). The first attempt is at once; the waits
            after failed ones start at ``RETRY_FIRST`` (0.1 s; or
            ``retry_interval`` if shorter) and double up to it, each spread by
            +-20 % so that nodes do not retry in lockstep.
        on_registered: called with the :class:`NodeInfo` after each
            successful registration: first in the greenlet calling
            :meth:`register`, then in the keep-alive greenlet after each
            re-registration (whose creation is usually new). Exceptions it
            raises are logged.
        max_reply: largest reply accepted, in bytes.

    Raises:
        ValueError: ``retry_interval`` (or ``keepalive_interval``) is not positive.
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
        host, port = p.parse_address(address)
        self._dialer = Dialer(host, port, timeout, max_reply)
        self.keepalive_interval = keepalive_interval
        self.retry_interval = min(retry_interval, keepalive_interval)
        if not self.retry_interval > 0:
            raise ValueError(f"retry_interval and keepalive_interval must be positive, got {self.retry_interval!r}")
        self.on_registered = on_registered
        self._regs: dict[str, Registration] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"<EpmdClient {self.address} ({self.daemon_kind or 'unknown'})>"

    @property
    def address(self) -> str:
        return self._dialer.address

    @property
    def host(self) -> str:
        return self._dialer.host

    @property
    def port(self) -> int:
        return self._dialer.port

    @property
    def timeout(self) -> float:
        """Seconds each call may take (connect, send, reply)."""
        return self._dialer.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self._dialer.timeout = value

    @property
    def max_reply(self) -> int:
        """Largest reply accepted, in bytes."""
        return self._dialer.max_reply

    @max_reply.setter
    def max_reply(self, value: int) -> None:
        self._dialer.max_reply = value

    @property
    def daemon_kind(self) -> str | None:
        """``"joerl"`` or ``"erlang"`` once known, else None (set None to ask again)."""
        return self._dialer.daemon_kind

    @daemon_kind.setter
    def daemon_kind(self, value: str | None) -> None:
        self._dialer.daemon_kind = value

    def __enter__(self) -> EpmdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- queries --------------------------------------------------------------

    def lookup(self, name: str) -> NodeInfo | None:
        """Where does node ``name`` listen? None if it is not registered.

        Raises:
            InvalidName: ``name`` cannot be registered (a full ``alive@host``
                only at joerl's daemon, which a shared port mapper is).
            EpmdError: the daemon could not be asked (see the subclasses).
        """
        p.check_name(name, host_ok=True)
        self._check_open()
        if self.daemon_kind != "erlang":
            try:
                reply = self._dialer.ext_call(p.Lookup(name, close=True), p.LookupResult)
            except NoReply:
                self.daemon_kind = "erlang"
            else:
                return None if reply.node is None else reply.node.with_host(self.host)
        return self.port_please(name)

    def port_please(self, name: str) -> NodeInfo | None:
        """Look ``name`` up with Erlang's PORT_PLEASE2 (no host, metadata or creation)."""
        p.check_name(name)
        reply = self._dialer.classic_call(p.PortPlease2Req(name))
        assert isinstance(reply, p.Port2Resp)
        return None if reply.node is None else reply.node.with_host(self.host)

    def list_nodes(self) -> list[NodeInfo]:
        """Every registered node (Erlang's daemon: names and ports only)."""
        self._check_open()
        if self.daemon_kind != "erlang":
            try:
                reply = self._dialer.ext_call(p.ListNodes(close=True), p.NodeList)
            except NoReply:
                self.daemon_kind = "erlang"
            else:
                return [n.with_host(self.host) for n in reply.nodes]
        return [NodeInfo(name, self.host, port, kind="") for name, port in reversed(self.names())]

    def names(self) -> list[tuple[str, int]]:
        """``(name, port)`` pairs from NAMES_REQ, newest registration first.

        Lines of the listing that name no valid node (a daemon that let a name
        with a control character register) are left out, with a warning.
        """
        reply = self._dialer.classic_call(p.NamesReq())
        assert isinstance(reply, p.NamesResp)
        if reply.skipped:
            log.warning(
                "port mapper %s: left %d malformed line(s) out of its NAMES listing", self.address, reply.skipped
            )
        return list(reply.nodes)

    def kill(self) -> bool:
        """Ask the daemon to exit (KILL_REQ, ``epmd -kill``): True if it obeys.

        The daemon obeys only a request from its own host, and only while no
        name is registered unless it runs relaxed (``--relaxed-command-check``,
        Erlang's ``-relaxed_command_check``).

        Returns:
            True: the daemon exits; False: it refused, names are registered.

        Raises:
            EpmdError: no valid reply (a request from another host is closed unanswered).
        """
        reply = self._obeyed(p.KillReq(), "KILL", "from its own host")
        assert isinstance(reply, p.KillResp)
        return reply.ok

    def stop(self, name: str) -> bool:
        """Make the daemon forget ``name`` (STOP_REQ, ``epmd -stop NAME``): True if it was registered.

        The node itself keeps running. Erlang's daemon and joerl's obey only a
        relaxed daemon, and only from its own host.

        Raises:
            EpmdError: no valid reply (not relaxed, or not from the daemon's host).
        """
        reply = self._obeyed(p.StopReq(name), "STOP", "when relaxed (--relaxed-command-check), from its own host")
        assert isinstance(reply, p.StopResp)
        return reply.text == "STOPPED"

    def _obeyed(self, req: Any, what: str, when: str) -> p.ClassicReply:
        try:
            return self._dialer.classic_call(req)
        except p.EpmdProtocolError as exc:
            raise EpmdError(
                f"{what} refused by the port mapper at {self.address}: it obeys {what} only {when} ({exc})"
            ) from None

    def ping(self) -> bool:
        """Does a port mapper (joerl's or Erlang's) answer? Never raises."""
        try:
            self._dialer.classic_call(p.NamesReq())
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
            self._dialer.ext_call(p.Ping(close=True), p.Pong)
            self.daemon_kind = "joerl"
        except NoReply:
            self._dialer.classic_call(p.NamesReq())
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
        cookie: bytes | None = None,
    ) -> NodeInfo:
        """Register node ``name`` listening at ``host:port``, and keep it registered.

        The registration holds a connection to the daemon; a keep-alive
        greenlet sends keep-alives every ``keepalive_interval`` and, if the
        daemon goes away, registers again (see ``on_registered``) until
        :meth:`unregister` or :meth:`close`. With ``cookie`` the registration
        proves the cluster's cookie with an HMAC over the daemon's nonce, as a
        shared port mapper requires of nodes on other hosts (``joerl-epmd --shared``).

        Returns:
            the registered node, with the ``creation`` the daemon assigned.

        Raises:
            InvalidName: the name cannot be registered.
            NameInUse: the name is taken.
            RegistrationRefused: the daemon refused for another reason.
            EpmdError: the daemon could not be reached (see the subclasses).
        """
        p.check_name(name, host_ok=True)
        self._check_open()
        if name in self._regs:
            raise NameInUse(name, "by this client")
        if type(port) is not int or not 1 <= port <= 0xFFFF:
            raise ValueError(f"port must be an int in 1..65535, got {port!r}")
        req = p.Register(name, host, port, dict(metadata or {}), node_type, 0, highest_version, lowest_version, extra)
        req.encode()  # fail here, not in the background, on what cannot be sent
        reg = Registration(self._dialer, req, self.keepalive_interval, self.retry_interval, self._notify, cookie)
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


# -- module-level helpers ---------------------------------------------------------------


def ping(address: str | tuple[str, int] = "127.0.0.1:4369", timeout: float = 1.0) -> bool:
    """Does a port mapper (joerl's or Erlang's) answer at ``address``?"""
    return EpmdClient(address, timeout=timeout).ping()


def describe_listener(address: str | tuple[str, int], timeout: float = 1.0) -> str:
    """What listens at ``address``, in a sentence: a port mapper (whose, with which names) or something else.

    For the message of a daemon that cannot take its address: it says what
    holds it and how to stop that (``joerl-epmd -kill``, refused while names
    are registered). Never raises.

    Example::

        describe_listener("127.0.0.1:4369")
        # "Erlang's epmd listens there, with 1 name registered (rabbit): stop it with ..."
    """
    client = EpmdClient(address, timeout=timeout)
    try:
        kind = client.probe()
        names = [name for name, _ in client.names()]
    except EpmdError:
        return "something that is not a port mapper listens there (find it with: ss -ltnp)"
    who = "joerl's port mapper" if kind == "joerl" else "Erlang's epmd"
    port = "" if client.port == p.DEFAULT_PORT else f" -port {client.port}"
    listed = f"{len(names)} name{'s' * (len(names) != 1)} registered ({', '.join(names)})" if names else "no names"
    stop = f"stop it with: joerl-epmd{port} -kill"
    if names:
        stop += " (refused while names are registered: stop those nodes first)"
    return f"{who} listens there, with {listed}: {stop}"


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
