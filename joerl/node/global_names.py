"""Cluster-wide names (Erlang's ``global``): :class:`GlobalNames`, a service on a node's public API.

Every node that takes part runs a name server (:mod:`joerl.node.global_server`,
which describes the algorithm and the messages between servers); this is the
API a node offers its users as ``node.global_names``: register, whereis,
unregister, send. Registering runs in the caller's greenlet: begin at the
local server, claim at each peer's, commit, and retry with back-off while an
older claim is in the way.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from typing import Any

import gevent

from .. import gen_server
from ..backoff import Backoff
from ..errors import CallError, CallTimeout, DistributionError, NoProcError, NotRegistered, StartError
from ..message import SHUTDOWN
from ..pid import Pid
from .global_server import CONFLICT, SERVER_NAME, NameServer, NodeApi, Stamp, is_name

__all__ = ["CONFLICT", "SERVER_NAME", "GlobalNames"]

log = logging.getLogger(__name__)


class GlobalNames:
    """Cluster-wide names for one node: register, whereis, unregister, send.

    Starts this node's name server (registered locally as ``"$global"``,
    subscribed to node events). Every node that takes part needs one; a
    linked node without one is simply not asked.

    Args:
        node: the DistributedSystem to serve.
        connect_all: when a peer's server names nodes this one is not linked
            to, connect to them (Erlang's transitive connections), so that the
            servers form a full mesh.
        timeout: the default deadline of :meth:`register`, in seconds.
        claim_ttl: how long a pending claim of a registrar that went silent
            blocks newer claims on the name.

    Raises:
        DistributionError: this node already runs a name server.
    """

    def __init__(
        self, node: NodeApi, *, connect_all: bool = True, timeout: float = 5.0, claim_ttl: float = 10.0
    ) -> None:
        self.node = node
        self.system = node.system
        self.timeout = timeout
        self._server = NameServer(node, connect_all, claim_ttl)
        try:
            self._ref = gen_server.start(self.system, self._server, name=SERVER_NAME)
        except StartError as exc:
            raise DistributionError(f"node {node.node_name!r} already runs a global name server: {exc}") from exc
        self._random = random.Random()
        #: Registration attempts that found an older claim in the way and retried.
        self.retries = 0

    def __repr__(self) -> str:
        return f"<GlobalNames {self.node.node_name} names={len(self._server.entries)}>"

    @property
    def pid(self) -> Pid:
        """The pid of this node's name server."""
        return self._ref.pid

    @property
    def closed(self) -> bool:
        """True once the name server has ended (:meth:`close`, or the node shut down)."""
        return not self.system.is_process_alive(self._ref.pid)

    # -- the API -------------------------------------------------------------------

    def register(self, name: str, pid: Any, timeout: float | None = None) -> bool:
        """Register ``pid`` under ``name`` on every linked node (``global:register_name``).

        One pid may hold several names. Blocks the calling greenlet for a
        round trip to each linked node's name server.

        Args:
            name: a non-empty str.
            pid: a Pid (of this node or another), or anything with ``.pid``.
            timeout: the deadline in seconds (default: the object's ``timeout``).

        Returns:
            True if registered; False if the name is taken somewhere (Erlang's
            ``no``). Of two registrations of one name that overlap in time, on
            nodes linked to each other, exactly one returns True.

        Raises:
            TypeError: ``name`` is not a non-empty str, or ``pid`` is no pid.
            NoProcError: ``pid`` is a dead process of this node.
            CallTimeout: a linked node's name server did not answer in time,
                or older competing claims kept the name busy until the deadline.
            DistributionError: this name service is closed.
        """
        if not is_name(name):
            raise TypeError(f"a global name must be a non-empty str, not {name!r}")
        pid = self._pid(pid)
        if pid.node == 0 and not self.system.is_process_alive(pid):
            raise NoProcError(pid)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        stamp: Stamp | None = None
        backoff = Backoff(0.005, 0.25, jitter=0.5, rand=self._random.random)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallTimeout(f"global registration of {name!r}", timeout)
            begun = self._call(("local_begin", name, pid, stamp), remaining)
            if begun[0] == "taken":
                return False
            if begun[0] not in ("ok", "busy"):
                raise DistributionError(f"global registration of {name!r}: the name server answered {begun!r}")
            if begun[0] == "ok":
                _, stamp, token, peers = begun
                try:
                    outcome = self._claim(name, pid, stamp, peers, deadline, timeout)
                    if outcome == "ok":
                        done = self._call(
                            ("local_commit", name, pid, stamp, token), max(deadline - time.monotonic(), 0.5)
                        )
                        outcome = done[0]  # "ok", "taken" or "lost"
                except BaseException:
                    self._abort(name, stamp, peers)  # timed out, or this greenlet was ended
                    raise
                if outcome == "ok":
                    # The server has sent the entry to every peer; wait until they have it.
                    self._tell(done[1], ("commit", name, pid, stamp), deadline)
                    return True
                self._abort(name, stamp, peers)
                if outcome == "taken":
                    return False
            # busy, or lost to an older claim: let it finish, then look again
            self.retries += 1
            gevent.sleep(backoff.delay())

    def whereis(self, name: str) -> Pid | None:
        """The pid registered as ``name`` in this node's replica, or None."""
        entry = self._server.entries.get(name)
        return entry.pid if entry is not None else None

    def unregister(self, name: str) -> None:
        """Free ``name`` everywhere (any node may); nothing happens if it is free."""
        if not is_name(name):
            raise TypeError(f"a global name must be a non-empty str, not {name!r}")
        dropped = self._call(("local_unregister", name), self.timeout)
        if dropped is not None:
            pid, stamp, peers = dropped
            self._tell(peers, ("unregister", name, pid, stamp), time.monotonic() + self.timeout)

    def send(self, name: str, msg: Any, *, sender: Pid | None = None) -> Pid:
        """Send ``msg`` to the process registered as ``name``; returns its pid.

        Raises:
            NotRegistered: no process holds ``name`` (Erlang's ``global:send``
                exits with ``badarg``).
        """
        pid = self.whereis(name)
        if pid is None:
            raise NotRegistered(name)
        self.system.send(pid, msg, sender=sender)
        return pid

    def registered(self) -> list[str]:
        """Every global name in this node's replica, sorted."""
        return sorted(self._server.entries)

    # -- the via registry contract (joerl._via.ViaRegistry), as OTP's global module offers it --
    # so that ("via", node.global_names, name) works wherever a name does

    def register_name(self, name: str, pid: Pid) -> bool:
        """:meth:`register` (``global:register_name/2``); blocks for a round trip to each linked node.

        Returns:
            True if registered; False if the name is taken.
        """
        return self.register(name, pid)

    def unregister_name(self, name: str) -> None:
        """:meth:`unregister` (``global:unregister_name/1``)."""
        self.unregister(name)

    def whereis_name(self, name: str) -> Pid | None:
        """:meth:`whereis` (``global:whereis_name/1``): a read of this node's replica, never blocks.

        Returns:
            The holder's pid, or None.
        """
        return self.whereis(name)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the name server; the names of this node's processes are freed
        everywhere. Safe to call twice."""
        if self.system.is_process_alive(self._ref.pid):
            self.system.stop(self._ref.pid, SHUTDOWN, timeout)

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _pid(pid: Any) -> Pid:
        value = getattr(pid, "pid", pid)
        if not isinstance(value, Pid):
            raise TypeError(f"expected a Pid (or an ActorRef/ActorContext), not {pid!r}")
        return value

    def _call(self, request: tuple[Any, ...], timeout: float) -> Any:
        try:
            return self.system.call(self._ref.pid, request, timeout)
        except CallTimeout:
            raise
        except CallError as exc:
            raise DistributionError(
                f"the global name service of {self.node.node_name!r} is closed ({exc.reason})"
            ) from exc

    def _claim(self, name: str, pid: Pid, stamp: Stamp, peers: Iterable[str], deadline: float, timeout: float) -> str:
        """Ask each peer's server for the name, in node order; stop at the first refusal."""
        for peer in peers:
            if peer not in self._server.peers:
                continue  # its link went down meanwhile: calling it would dial it again
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallTimeout(f"global registration of {name!r}", timeout)
            try:
                answer = self.system.call((SERVER_NAME, peer), ("claim", name, pid, stamp), remaining)
            except CallTimeout:
                raise
            except CallError as exc:
                # No server there, or the link went: that node is not in the cluster now
                # (if it comes back, the sync settles any conflict).
                log.debug("global registration of %r: %s not asked (%s)", name, peer, exc.reason)
                continue
            if answer == "busy":
                return "busy"
            if isinstance(answer, tuple) and answer[:1] == ("taken",):
                return "taken"
            if answer != "ok":
                log.warning("global registration of %r: %s answered %r; not asked", name, peer, answer)
        return "ok"

    def _tell(self, peers: Iterable[str], request: tuple[Any, ...], deadline: float) -> None:
        """Call each peer's server with a committed change and wait for it to apply it.

        A server that does not answer in time still applies the change when it
        gets to it (the request is in its mailbox); a lost link is settled by
        the sync when it comes back.
        """
        for peer in peers:
            if peer not in self._server.peers:
                continue
            try:
                self.system.call((SERVER_NAME, peer), request, max(deadline - time.monotonic(), 0.5))
            except CallError as exc:
                log.debug("global %s of %r: %s did not confirm (%s)", request[0], request[1], peer, exc.reason)

    def _abort(self, name: str, stamp: Stamp, peers: Iterable[str]) -> None:
        """Withdraw our pending claim here and at every peer still linked."""
        msg = ("abort", name, stamp)
        try:
            self.system.send(self._ref.pid, msg)
            for peer in peers:
                if peer in self._server.peers:
                    self.system.send((SERVER_NAME, peer), msg)
        except Exception:  # noqa: BLE001 - best effort: claims also expire and go with their node
            log.debug("global registration of %r: abort not sent", name, exc_info=True)
