"""Routing to Erlang nodes: the runtime's signals as Erlang control messages, and the node's one Router.

:class:`NodeRouter` is what the runtime talks to (``joerl._router.Router``)
on a node with Erlang distribution on: a signal for a pid of an Erlang node
(its node id is one :class:`~joerl.erlang.mapping.TermMap` learnt), or for a
``(name, node)`` whose node the port mapper lists as an Erlang node, goes to
:class:`ErlangRouting`; everything else to joerl's own
:class:`~joerl.node.routing.Routing`.

:class:`ErlangRouting` maps each signal to its control message
(:mod:`joerl.erlang.control`), pids, refs, terms and reasons through the
``TermMap``, and hands it to the Erlang links:

====================  ==========================================================
runtime               Erlang
====================  ==========================================================
send                  SEND_SENDER (SEND from plain code), REG_SEND to a name
link / unlink         LINK / UNLINK_ID
exit of a link        EXIT;  ``exit(pid, reason)``: EXIT2
monitor / demonitor   MONITOR_P / DEMONITOR_P (a pid, or a name atom)
down                  MONITOR_P_EXIT (from the name, when monitored by name)
reply                 ALIAS_SEND to the ``[alias | Ref]`` tag (or SEND ``{Ref, Reply}``)
call                  OTP 25's: MONITOR_P, then ``{'$gen_call', {Caller, [alias | Ref]}, Req}``;
                      the reply comes as ALIAS_SEND, the server's end as MONITOR_P_EXIT
====================  ==========================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gevent import get_hub, getcurrent

from .._router import RemoteName, RemoteTarget
from ..erlang.control import (
    DemonitorP,
    Exit,
    Exit2,
    Link,
    MonitorP,
    MonitorPExit,
    RegSend,
    Send,
    SendSender,
    UnlinkId,
)
from ..erlang.dflags import SEND_SENDER
from ..erlang.terms import Atom
from ..errors import CallError, CallTimeout, EpmdError, NodeUnreachable
from ..message import NOCONNECTION
from ..pid import SYSTEM_PID, Pid, Ref
from .locator import JOERL_EXTRA

if TYPE_CHECKING:
    from .._gen import From, Pending
    from .._router import Inbound
    from ..epmd import NodeInfo
    from ..erlang.mapping import TermMap
    from .erl_peers import ErlangLinks, ErlPeer
    from .routing import Routing
    from .stats import NodeStats

__all__ = ["ErlangRouting", "NodeRouter", "is_joerl_node"]


def is_joerl_node(info: NodeInfo) -> bool:
    """Does the port mapper's entry describe a joerl node (else an Erlang one)?"""
    return info.kind == "joerl" or info.extra == JOERL_EXTRA or "node_id" in info.metadata


class ErlangRouting:
    """Signals for Erlang nodes (see the module docstring).

    Args:
        links: the Erlang links.
        terms: the pid, ref, term and reason mapping.
        inbound: the runtime's Inbound (answers to what cannot be delivered).
        pending: the node's table of calls waiting for answers.
        make_ref: the runtime's ref maker.
        stats: the node's counters.
        lookup: ``lookup(name)``: the port mapper's record of node ``name`` (the node's Locator).
    """

    def __init__(
        self,
        links: ErlangLinks,
        terms: TermMap,
        inbound: Inbound,
        pending: Pending,
        make_ref: Any,
        stats: NodeStats,
        lookup: Any,
    ) -> None:
        self.links = links
        self.terms = terms
        self.inbound = inbound
        self.pending = pending
        self._make_ref = make_ref
        self.stats = stats
        self._lookup = lookup
        self._hub = get_hub()
        self._kinds: dict[str, bool] = {}
        self._unlink_ids = itertools.count(1)
        #: Monitors Erlang processes hold by name on ours: ref -> the name atom (its MONITOR_P_EXIT names it).
        self.named: dict[Ref, Atom] = {}

    # -- which node is Erlang's -------------------------------------------------------------

    def owns(self, node_id: int) -> bool:
        """Is ``node_id`` the id of an Erlang node?"""
        return node_id in self.terms.erlang

    def is_erlang(self, name: str) -> bool:
        """Is node ``name`` an Erlang node? (The port mapper says, the first time.)"""
        if name in self.links.peers:
            return True
        known = self._kinds.get(name)
        if known is not None:
            return known
        if "@" not in name or getcurrent() is self._hub:
            return False
        try:
            info = self._lookup(name)
        except EpmdError:
            return False
        if info is None:
            return False
        kind = self._kinds[name] = not is_joerl_node(info)
        return kind

    def _peer(self, node_id: int) -> ErlPeer:
        peer = self.links.by_id.get(node_id)
        return peer if peer is not None else self.links.peer(self.terms.erlang[node_id].name)

    def _send(self, peer: ErlPeer, msg: Any, counted: bool = False) -> None:
        if self.links.send(peer, msg):
            self.stats.sent += counted
        else:
            self.stats.dropped_unreachable += counted

    # -- the Router's signals ------------------------------------------------------------------

    def send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        t = self.terms
        peer = self._peer(to.node)
        link = peer.link
        if sender is None or sender == SYSTEM_PID or (link is not None and not link.flags & SEND_SENDER):
            out: Any = Send(t.pid_out(to), t.message_out(msg))  # (SEND_SENDER only to a peer that reads it)
        else:
            out = SendSender(t.pid_out(sender), t.pid_out(to), t.message_out(msg))
        self._send(peer, out, True)

    def send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        t = self.terms
        out = RegSend(t.pid_out(sender or SYSTEM_PID), Atom(name), t.message_out(msg))
        self._send(self.links.peer(node), out, True)

    def link(self, local: Pid, remote: Pid) -> None:
        self._send(self._peer(remote.node), Link(self.terms.pid_out(local), self.terms.pid_out(remote)))

    def unlink(self, local: Pid, remote: Pid) -> None:
        t = self.terms
        self._send(self._peer(remote.node), UnlinkId(next(self._unlink_ids), t.pid_out(local), t.pid_out(remote)))

    def link_exit(self, local: Pid, remote: Pid, reason: Any) -> None:
        t = self.terms
        self._send(self._peer(remote.node), Exit(t.pid_out(local), t.pid_out(remote), t.reason_out(reason)))

    def exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        t = self.terms
        self._send(self._peer(to.node), Exit2(t.pid_out(sender), t.pid_out(to), t.reason_out(reason)))

    def monitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        t = self.terms
        if isinstance(target, RemoteName):
            msg = MonitorP(t.pid_out(watcher), Atom(target.name), t.ref_out(ref))
            self._send(self.links.peer(target.node), msg)
        else:
            self._send(self._peer(target.node), MonitorP(t.pid_out(watcher), t.pid_out(target), t.ref_out(ref)))

    def demonitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        t = self.terms
        if isinstance(target, RemoteName):
            peer = self.links.peers.get(target.node)
            if peer is not None:
                self._send(peer, DemonitorP(t.pid_out(watcher), Atom(target.name), t.ref_out(ref)))
        else:
            self._send(self._peer(target.node), DemonitorP(t.pid_out(watcher), t.pid_out(target), t.ref_out(ref)))

    def down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        t = self.terms
        proc: Any = self.named.pop(ref, None) or t.pid_out(pid)
        self._send(
            self._peer(watcher.node), MonitorPExit(proc, t.pid_out(watcher), t.ref_out(ref), t.reason_out(reason))
        )

    def reply(self, from_: From, value: Any) -> None:
        self._send(self._peer(from_[1].node), self.terms.reply_out(from_, value))

    def call(self, server: Pid | RemoteName, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        """OTP 25's call (see the module docstring); blocks the calling greenlet.

        Raises:
            CallTimeout: no reply in time. CallError: the server (or its node) is gone.
        """
        t = self.terms
        if isinstance(server, RemoteName):
            peer = self.links.peer(server.node)
            target: Any = Atom(server.name)
            shown: Any = f"{server.name}@{server.node}" if "@" not in server.node else (server.name, server.node)
        else:
            peer = self._peer(server.node)
            target = t.pid_out(server)
            shown = server
        ref = self._make_ref()
        ecaller = t.pid_out(caller or SYSTEM_PID)
        eref = t.ref_out(ref)
        message = t.call_out(caller or SYSTEM_PID, ref, request)
        if isinstance(target, Atom):
            send: Any = RegSend(ecaller, target, message)
        else:
            send = SendSender(ecaller, target, message)
        waiter = self.pending.add(ref)
        peer.calls.add(ref)
        try:
            self.links.send(peer, MonitorP(ecaller, target, eref))
            self._send(peer, send, True)
            result = self.pending.wait(waiter, ref, timeout)
        finally:
            self.pending.discard(ref)
            peer.calls.discard(ref)
            if peer.ready:
                self.links.send(peer, DemonitorP(ecaller, target, eref))
        if result is None:
            raise CallTimeout(shown, timeout)  # type: ignore[arg-type]
        ok, value = result
        if ok:
            return value
        raise CallError(shown, value)

    def is_alive(self, pid: Pid, timeout: float = 5.0) -> bool:
        """``erlang:is_process_alive(Pid)`` on its node, through its ``rex`` (False if no answer in time)."""
        node = self.terms.erlang[pid.node].name
        request = (Atom("call"), Atom("erlang"), Atom("is_process_alive"), [pid], Atom("user"))
        try:
            return self.call(RemoteName("rex", node), request, timeout, None) is True
        except (CallError, CallTimeout, NodeUnreachable):
            return False

    # -- what could not be delivered ---------------------------------------------------------------

    def unreachable(self, peer: ErlPeer, msgs: list[Any], reason: str) -> None:
        """A dial failed: answer what waited on it as Erlang does (``noconnection``)."""
        t = self.terms
        for msg in msgs:
            cls = msg.__class__
            if cls is Link:
                self._hub.loop.run_callback(
                    self.inbound.exit, t.pid_in(msg.to_pid), t.pid_in(msg.from_pid), NOCONNECTION, True
                )
            elif cls is MonitorP:
                ref = t.ref_in(msg.ref)
                if not self.pending.resolve(ref, (False, NOCONNECTION)):
                    to = msg.to_proc
                    pid = t.pid_in(to) if not isinstance(to, Atom) else Pid._unchecked(peer.node_id, 0, 0)
                    self.inbound.down(t.pid_in(msg.from_pid), ref, pid, NOCONNECTION)
            elif cls in (Send, SendSender, RegSend):
                self.stats.dropped_unreachable += 1

    def lost(self, peer: ErlPeer) -> None:
        """``peer``'s link went: fire every link and monitor across it, fail its calls."""
        self.inbound.node_down(peer.node_id, peer.name, NOCONNECTION)
        for ref in list(peer.calls):
            self.pending.resolve(ref, (False, NOCONNECTION))
        for ref in [r for r in self.named if r.node == peer.node_id]:
            del self.named[ref]


class NodeRouter:
    """The node's one Router: Erlang nodes' signals to :class:`ErlangRouting`, the rest to joerl's routing.

    Args:
        routing: joerl's routing.
    """

    def __init__(self, routing: Routing) -> None:
        self.joerl = routing
        #: Set once the Erlang side is built.
        self.erl: ErlangRouting | None = None
        #: ``local_send(name, msg, sender)``: a ``{Name, Node}`` from Erlang (atoms) that names this node.
        self.local_send: Callable[[str, Any, Pid | None], None] | None = None

    @property
    def node_name(self) -> str:
        return self.joerl.node_name

    @property
    def node_id(self) -> int:
        return self.joerl.node_id

    def local_pid(self, pid: Pid) -> Pid:
        return self.joerl.local_pid(pid)

    def _by_pid(self, pid: Pid) -> ErlangRouting | None:
        erl = self.erl
        return erl if erl is not None and pid.node in erl.terms.erlang else None

    @staticmethod
    def _named(target: Any) -> Any:
        """A ``(name, node)`` with Erlang's atoms in it, as the runtime spells it (strs)."""
        if isinstance(target, RemoteName):
            name: Any = target.name
            node: Any = target.node
            if name.__class__ is Atom or node.__class__ is Atom:
                return RemoteName(str(name), str(node))
        return target

    def _by_target(self, target: Any) -> ErlangRouting | None:
        if isinstance(target, RemoteName):
            erl = self.erl
            return erl if erl is not None and erl.is_erlang(target.node) else None
        return self._by_pid(target)

    def route_send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        erl = self._by_pid(to)
        if erl is not None:
            erl.send(sender, to, msg)
        else:
            self.joerl.route_send(sender, to, msg)

    def route_try_send(self, sender: Pid | None, to: Pid, msg: Any) -> bool:
        erl = self._by_pid(to)
        if erl is not None:
            erl.send(sender, to, msg)  # (Erlang has no flow control: never held back)
            return True
        return self.joerl.route_try_send(sender, to, msg)

    def route_send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        name, node = str(name), str(node)  # (an Erlang {Name, Node} holds atoms)
        if node == self.node_name and self.local_send is not None:
            self.local_send(name, msg, sender)
            return
        erl = self._by_target(RemoteName(name, node))
        if erl is not None:
            erl.send_named(sender, name, node, msg)
        else:
            self.joerl.route_send_named(sender, name, node, msg)

    def route_link(self, local: Pid, remote: Pid) -> None:
        erl = self._by_pid(remote)
        (erl.link if erl is not None else self.joerl.route_link)(local, remote)

    def route_unlink(self, local: Pid, remote: Pid) -> None:
        erl = self._by_pid(remote)
        (erl.unlink if erl is not None else self.joerl.route_unlink)(local, remote)

    def route_link_exit(self, local: Pid, remote: Pid, reason: Any) -> None:
        erl = self._by_pid(remote)
        (erl.link_exit if erl is not None else self.joerl.route_link_exit)(local, remote, reason)

    def route_exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        erl = self._by_pid(to)
        (erl.exit if erl is not None else self.joerl.route_exit)(sender, to, reason)

    def route_monitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        target = self._named(target)
        erl = self._by_target(target)
        (erl.monitor if erl is not None else self.joerl.route_monitor)(watcher, target, ref)

    def route_demonitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        target = self._named(target)
        erl = self._by_target(target)
        (erl.demonitor if erl is not None else self.joerl.route_demonitor)(watcher, target, ref)

    def route_down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        erl = self._by_pid(watcher)
        (erl.down if erl is not None else self.joerl.route_down)(watcher, ref, pid, reason)

    def route_reply(self, from_: From, value: Any) -> None:
        erl = self.erl
        if erl is not None and from_[1].node in erl.terms.erlang:
            erl.reply(from_, value)
        else:
            self.joerl.route_reply(from_, value)

    def call(self, server: Pid | RemoteName, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        server = self._named(server)
        erl = self._by_target(server)
        if erl is not None:
            return erl.call(server, request, timeout, caller)
        return self.joerl.call(server, request, timeout, caller)

    def is_alive(self, pid: Pid) -> bool:
        erl = self._by_pid(pid)
        return erl.is_alive(pid) if erl is not None else self.joerl.is_alive(pid)
