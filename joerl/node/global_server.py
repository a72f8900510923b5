"""The name server of cluster-wide names (Erlang's ``global``): one per node, a replica each.

The user's API is :class:`joerl.node.global_names.GlobalNames`; this module
owns the server process and the protocol between servers.

Every node that takes part runs a name server, a process registered locally
as ``"$global"`` that subscribes to node events. Each server holds a replica
of the table ``name -> (pid, stamp)``; a ``stamp`` is ``(time_ns, node, seq)``,
made once by the registering node's server, unique and totally ordered, and
carried with the entry wherever it goes.

Registering (``register``, run in the caller's greenlet):

1. *begin*: the local server refuses a name that is taken, answers ``busy``
   while an older claim on the name is pending, else records our claim and
   returns its stamp and the peers it knows;
2. *claim*: each peer's server is called in sorted node order; it answers
   ``taken`` (with the owner), ``busy`` (it holds a pending claim with a
   smaller stamp) or ``ok`` (it now holds ours as its pending claim, replacing
   any newer one);
3. *commit*: the local server commits only if our claim is still its pending
   claim (an older competing claim that reached it replaced ours) and sends
   the entry to every peer; the registrar then calls each peer with it too
   and returns once they all have it.

On ``taken`` the answer is False; on ``busy`` or a lost claim the claim is
aborted everywhere and retried (with the same stamp, so it keeps its place)
after a short random back-off, as ``global`` retries its locks, until the
deadline. Two overlapping claims each ask the other's server, so whatever
the order of their messages one of them meets the other (as an older pending
claim, or as a commit) and at most one commits; the other sees ``taken``.

Conflicts: when an entry arrives (a commit, or a sync after a link comes up)
for a name the replica holds with another pid, the entry with the smaller
stamp -- the older registration -- is kept everywhere. The server on the
loser's node sends it ``("global_name_conflict", name, winner_pid)`` (once)
and tells its peers to drop the loser's entry. Unlike Erlang's default
resolver, nobody is killed.

Freeing: every server monitors the pid of every entry it holds, so a name
goes when its process ends, wherever it is; when a link goes down, every
server drops the names of that node's processes (and its pending claims).

Between servers (plain tuples to ``("$global", node)``; "call" is a
GenServer call, "info" a plain send; a server answers a bad request with
``("error", "badarg")`` and logs and drops a bad message)::

    call ("claim", name, pid, stamp)       -> "ok" | ("taken", pid) | "busy"
    info ("abort", name, stamp)            forget that pending claim
    info|call ("commit", name, pid, stamp)      install the entry (conflict rule) -> "ok"
    info|call ("unregister", name, pid, stamp)  drop that entry if held -> "ok"
    info ("sync", node, entries, nodes, reply)
        sent when a link comes up (or a server starts): entries are
        [(name, pid, stamp)] of the sender's own processes, nodes its other
        peers (to connect to); reply=True asks for a sync back.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .._gen import CALL, STOP
from ..gen_server import GenServer, Reply
from ..message import Down, NodeDown, NodeUp
from ..pid import Pid, Ref
from .config import node_id_of

__all__ = ["CONFLICT", "SERVER_NAME", "NameServer", "NodeApi", "Stamp", "is_name"]

log = logging.getLogger("joerl.node.global_names")

#: The local name of each node's name server.
SERVER_NAME = "$global"
#: The tag of the message a process gets when it loses its name in a conflict.
CONFLICT = "global_name_conflict"

Stamp = tuple[int, str, int]  # (time_ns, node, seq)


class NodeApi(Protocol):
    """What the name service uses of a node: its public API only."""

    node_name: str
    node_id: int

    @property
    def system(self) -> Any: ...

    def monitor_nodes(self, pid: Any, flag: bool = True) -> None: ...
    def nodes(self) -> list[str]: ...
    def connect_to_node(self, name: str, timeout: float | None = None) -> bool: ...


_TOLD_MAX = 4096


@dataclass
class _Entry:
    pid: Pid
    stamp: Stamp
    mref: Ref | None


@dataclass
class _Claim:
    pid: Pid
    stamp: Stamp
    expires: float
    token: int  # which attempt of the local registrar (0 for a peer's claim)


def _is_stamp(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and type(value[0]) is int
        and isinstance(value[1], str)
        and type(value[2]) is int
    )


def is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


class NameServer(GenServer):
    """The per-node name server (runs in its own process; every callback in it)."""

    def __init__(self, node: NodeApi, connect_all: bool, claim_ttl: float) -> None:
        self.node = node
        self.me: str = node.node_name
        self.connect_all = connect_all
        self.claim_ttl = claim_ttl
        self.entries: dict[str, _Entry] = {}
        self.claims: dict[str, _Claim] = {}
        self.by_ref: dict[Ref, str] = {}
        self.peers: set[str] = set()
        self.connecting: set[str] = set()
        self.told: set[tuple[str, Stamp]] = set()
        self._seq = itertools.count(1)
        self._tokens = itertools.count(1)
        self._last_ns = 0

    # -- lifecycle -----------------------------------------------------------------

    def init(self, args: Any) -> Any:
        self.node.monitor_nodes(self.ctx.pid)
        for peer in self.node.nodes():
            self.peers.add(peer)
            self._send_sync(peer, reply=True)
        return None

    def terminate(self, reason: Any, state: Any) -> None:
        # This node leaves the name service: its processes' names go everywhere.
        for name, entry in list(self.entries.items()):
            if entry.pid.node == 0:
                self._broadcast(("unregister", name, entry.pid, entry.stamp))
        self.entries.clear()
        self.claims.clear()
        self.by_ref.clear()
        try:
            self.node.monitor_nodes(self.ctx.pid, False)
        except Exception:  # noqa: BLE001 - the node may be shutting down
            log.debug("cannot unsubscribe from node events", exc_info=True)

    # -- calls ---------------------------------------------------------------------

    def handle_message(self, msg: Any, ctx: Any) -> None:
        # Peers are trusted (they passed the cookie), yet a malformed call or a
        # stop sent from another node must not end the name server.
        # (GlobalNames.close() ends it with system.stop, not with STOP.)
        if msg.__class__ is tuple and len(msg) in (2, 3) and msg[0] in (CALL, STOP):
            if msg[0] == CALL and not (
                len(msg) == 3
                and isinstance(msg[1], tuple)
                and len(msg[1]) == 2
                and isinstance(msg[1][0], Pid)
                and isinstance(msg[1][1], Ref)
            ):
                log.warning("name server %s: malformed call %r", self.me, msg)
                return
            if msg[0] == STOP:
                log.warning("name server %s: ignoring %r (close() stops it)", self.me, msg)
                return
        super().handle_message(msg, ctx)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        try:
            tag = request[0] if isinstance(request, tuple) and request else None
            if tag == "claim":
                _, name, pid, stamp = request
                return Reply(self._on_claim(name, pid, stamp))
            if tag == "commit" or tag == "unregister":
                self._on_peer_message(request)
                return Reply("ok")
            if isinstance(tag, str) and tag.startswith("local_"):
                if from_[0].node != 0:
                    raise ValueError("a local request from another node")
                if tag == "local_begin":
                    _, name, pid, stamp = request
                    return Reply(self._begin(name, pid, stamp))
                if tag == "local_commit":
                    _, name, pid, stamp, token = request
                    return Reply(self._commit(name, pid, stamp, token))
                if tag == "local_unregister":
                    _, name = request
                    return Reply(self._unregister_local(name))
        except (ValueError, TypeError, IndexError) as exc:
            log.warning("name server %s: bad request %r: %s", self.me, request, exc)
            return Reply(("error", "badarg"))
        log.warning("name server %s: unknown request %r", self.me, request)
        return Reply(("error", "badarg"))

    def _begin(self, name: str, pid: Pid, stamp: Stamp | None) -> Any:
        entry = self.entries.get(name)
        if entry is not None:
            return ("taken", entry.pid)
        claim = self._live_claim(name)
        if claim is not None and claim.stamp != stamp and (stamp is None or claim.stamp < stamp):
            return ("busy",)
        if stamp is None:
            stamp = self._new_stamp()
        token = next(self._tokens)
        self.claims[name] = _Claim(pid, stamp, time.monotonic() + self.claim_ttl, token)
        return ("ok", stamp, token, sorted(self.peers))

    def _on_claim(self, name: Any, pid: Any, stamp: Any) -> Any:
        if not (is_name(name) and isinstance(pid, Pid) and _is_stamp(stamp)):
            raise ValueError("claim needs (name, pid, stamp)")
        self._saw(stamp[1])
        entry = self.entries.get(name)
        if entry is not None:
            return ("taken", entry.pid)
        claim = self._live_claim(name)
        if claim is not None and claim.stamp < stamp:
            return "busy"
        # Ours (token != 0) is replaced too: our own commit will then fail.
        self.claims[name] = _Claim(pid, stamp, time.monotonic() + self.claim_ttl, 0)
        return "ok"

    def _commit(self, name: str, pid: Pid, stamp: Stamp, token: int) -> Any:
        claim = self.claims.get(name)
        mine = claim is not None and claim.token == token
        if mine:
            del self.claims[name]
        entry = self.entries.get(name)
        if entry is not None:
            return ("taken", entry.pid)
        if not mine:
            return ("lost",)
        self._add(name, pid, stamp)
        # Sent from here, so that every peer gets it even if the registrar is
        # ended now; the registrar then calls them with it too (a no-op where
        # it has arrived) to wait until they have it.
        self._broadcast(("commit", name, pid, stamp))
        return ("ok", sorted(self.peers))

    def _unregister_local(self, name: str) -> Any:
        entry = self.entries.get(name)
        if entry is None:
            return None
        self._drop(name)
        self._broadcast(("unregister", name, entry.pid, entry.stamp))
        return (entry.pid, entry.stamp, sorted(self.peers))  # the caller waits for them

    # -- messages ------------------------------------------------------------------

    def handle_info(self, msg: Any, state: Any) -> Any:
        cls = msg.__class__
        if cls is Down:
            name = self.by_ref.pop(msg.ref, None)
            if name is not None:
                entry = self.entries.get(name)
                if entry is not None and entry.mref == msg.ref:
                    del self.entries[name]
                    log.debug("global name %r freed: %s ended (%s)", name, msg.pid, msg.reason)
        elif cls is NodeUp:
            self.connecting.discard(msg.node)
            if msg.node not in self.peers:
                self.peers.add(msg.node)
                self._send_sync(msg.node, reply=False)
        elif cls is NodeDown:
            self._node_down(msg.node)
        elif cls is tuple and msg:
            try:
                self._on_peer_message(msg)
            except (ValueError, TypeError, IndexError) as exc:
                log.warning("name server %s: bad message %r: %s", self.me, msg, exc)
        else:
            log.warning("name server %s: unexpected message %r", self.me, msg)
        return state

    def _on_peer_message(self, msg: tuple[Any, ...]) -> None:
        tag = msg[0]
        if tag == "commit":
            _, name, pid, stamp = msg
            self._check_entry(name, pid, stamp)
            self._saw(stamp[1])
            claim = self.claims.get(name)
            if claim is not None and claim.stamp == stamp:
                del self.claims[name]
            self._merge(name, pid, stamp)
        elif tag == "abort":
            _, name, stamp = msg
            claim = self.claims.get(name)
            if claim is not None and claim.stamp == stamp:
                del self.claims[name]
        elif tag == "unregister":
            _, name, pid, stamp = msg
            entry = self.entries.get(name)
            if entry is not None and entry.pid == pid and entry.stamp == stamp:
                self._drop(name)
        elif tag == "sync":
            _, peer, entries, nodes, reply = msg
            if not is_name(peer) or not isinstance(entries, list) or not isinstance(nodes, list):
                raise ValueError("sync needs (node, [entries], [nodes], reply)")
            if peer == self.me:
                return
            fresh = self._saw(peer)
            for item in entries:
                name, pid, stamp = item
                self._check_entry(name, pid, stamp)
                self._merge(name, pid, stamp)
            if reply and not fresh:
                self._send_sync(peer, reply=False)
            if self.connect_all:
                for other in nodes:
                    if is_name(other):
                        self._connect(other)
        elif tag == "$connected":
            self.connecting.discard(msg[1])
        else:
            raise ValueError(f"unknown tag {tag!r}")

    @staticmethod
    def _check_entry(name: Any, pid: Any, stamp: Any) -> None:
        if not (is_name(name) and isinstance(pid, Pid) and _is_stamp(stamp)):
            raise ValueError("an entry is (name, pid, stamp)")

    # -- the table -----------------------------------------------------------------

    def _merge(self, name: str, pid: Pid, stamp: Stamp) -> None:
        """Install an entry from a peer; the older of two registrations wins."""
        if pid.node == self.node.node_id:
            return  # a process of a previous incarnation of this node: long gone
        current = self.entries.get(name)
        if current is None:
            self._add(name, pid, stamp)
            return
        if current.stamp == stamp:
            return
        if current.pid == pid:  # one process, registered twice: keep the older stamp
            if stamp < current.stamp:
                current.stamp = stamp
            return
        if current.stamp < stamp:
            self._lost(name, pid, stamp, current.pid)
            return
        self._drop(name)
        self._add(name, pid, stamp)
        self._lost(name, current.pid, current.stamp, pid)

    def _lost(self, name: str, loser: Pid, stamp: Stamp, winner: Pid) -> None:
        """``loser`` lost ``name`` to ``winner``: its node's server tells it, once."""
        log.info("global name %r: %s keeps it, %s loses it (conflict)", name, winner, loser)
        if loser.node != 0 or (name, stamp) in self.told:
            return
        if len(self.told) >= _TOLD_MAX:
            self.told.clear()
        self.told.add((name, stamp))
        self.ctx.send(loser, (CONFLICT, name, winner))
        self._broadcast(("unregister", name, loser, stamp))

    def _add(self, name: str, pid: Pid, stamp: Stamp) -> None:
        mref = self.ctx.monitor(pid)  # may already have queued Down(noproc)
        self.entries[name] = _Entry(pid, stamp, mref)
        self.by_ref[mref] = name

    def _drop(self, name: str) -> None:
        entry = self.entries.pop(name, None)
        if entry is not None and entry.mref is not None:
            self.by_ref.pop(entry.mref, None)
            self.ctx.demonitor(entry.mref)

    def _node_down(self, peer: str) -> None:
        self.peers.discard(peer)
        self.connecting.discard(peer)
        node_id = node_id_of(peer)
        for name in [n for n, e in self.entries.items() if e.pid.node == node_id]:
            self._drop(name)
        for name in [n for n, c in self.claims.items() if c.stamp[1] == peer]:
            del self.claims[name]

    def _live_claim(self, name: str) -> _Claim | None:
        claim = self.claims.get(name)
        if claim is not None and claim.expires < time.monotonic():
            del self.claims[name]
            return None
        return claim

    def _new_stamp(self) -> Stamp:
        ns = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = ns
        return (ns, self.me, next(self._seq))

    # -- peers ---------------------------------------------------------------------

    def _saw(self, peer: str) -> bool:
        """A message from ``peer``'s server: it is up (NodeUp may have come before we
        subscribed). True if it was new to us (a sync with a reply is then sent)."""
        if peer == self.me or peer in self.peers:
            return False
        self.peers.add(peer)
        self._send_sync(peer, reply=True)
        return True

    def _send_sync(self, peer: str, reply: bool) -> None:
        owned = [(name, e.pid, e.stamp) for name, e in self.entries.items() if e.pid.node == 0]
        others = sorted(self.peers - {peer})
        self.ctx.send((SERVER_NAME, peer), ("sync", self.me, owned, others, reply))

    def _broadcast(self, msg: tuple[Any, ...]) -> None:
        for peer in sorted(self.peers):
            self.ctx.send((SERVER_NAME, peer), msg)

    def _connect(self, other: str) -> None:
        """Link to a node a peer knows (as Erlang connects transitively), in a helper."""
        if other == self.me or other in self.peers or other in self.connecting:
            return
        self.connecting.add(other)
        self.ctx.spawn_link(_connector, self.node, other, self.ctx.pid)


def _connector(ctx: Any, node: NodeApi, other: str, server: Pid) -> None:
    """Helper process: connect to ``other``; NodeUp then reaches the server."""
    try:
        node.connect_to_node(other)
    except Exception as exc:  # noqa: BLE001 - a node we cannot reach is no error here
        log.debug("name server %s: cannot connect to %s: %s", node.node_name, other, exc)
    ctx.send(server, ("$connected", other))
