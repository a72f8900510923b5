"""Process groups (OTP 23+ ``pg``): named groups of processes across nodes.

A *scope* is a process registered under the scope's name (``"pg"`` by
default) on every node that starts it (:func:`start`), holding a replica of
the scope's groups. A local process joins or leaves through its own node's
scope process, which monitors it and tells its peers; reads come from the
local replica. Eventually consistent across nodes, as OTP's.

* A process may join a group several times; ``leave`` removes one membership
  per pid. A process that ends leaves every group.
* A ``NodeDown``, or the end of a peer's scope process, drops that node's
  members. On ``NodeUp`` both scope processes send each other their local
  memberships (a *sync*), which replaces what the receiver held for that node.
* ``monitor_scope`` / ``monitor`` subscribers receive :class:`PgEvent`
  messages, shaped as OTP's ``{Ref, join | leave, Group, Pids}``.

Works on a plain ActorSystem (one node) and on a node, through the node's
public API only (``system``, ``node_name``, ``nodes``, ``monitor_nodes``).
Between scope processes (plain tuples sent to ``(scope, node)``)::

    ("$pg_join", node, group, [pid, ...])       members joined on ``node``
    ("$pg_leave", node, group, [pid, ...])      one membership each left
    ("$pg_sync", node, scope_pid, [(group, [pid, ...]), ...], reply)
        all local memberships of ``node``; ``reply=True`` asks for one back.

A malformed message is logged, counted (:attr:`Scope.dropped`) and dropped.
A group is any hashable plain value (str, int, a tuple of them).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, NamedTuple

from . import gen_server
from ._gen import CALL, STOP
from .errors import NoProcError, StartError
from .gen_server import GenServer, Reply
from .message import SHUTDOWN, Down, NodeDown, NodeUp
from .pid import Pid, Ref
from .system import ActorSystem

__all__ = ["DEFAULT_SCOPE", "PgEvent", "Scope", "get_members", "join", "leave", "start"]

log = logging.getLogger(__name__)

#: The name of the default scope (OTP's ``pg``).
DEFAULT_SCOPE = "pg"
_ALL = ("$pg_scope",)  # the key of whole-scope subscribers


class PgEvent(NamedTuple):
    """A change a :meth:`Scope.monitor_scope` / :meth:`Scope.monitor` subscriber receives.

    The shape of OTP's ``{Ref, join | leave, Group, Pids}``.

    Attributes:
        ref: the subscription's ref (what ``monitor_scope``/``monitor`` returned).
        kind: ``"join"`` or ``"leave"``.
        group: the group that changed.
        pids: the pids that joined or left (a pid appears once per membership).
    """

    ref: Ref
    kind: str
    group: Any
    pids: list[Pid]


def _check_group(group: Any) -> None:
    try:
        hash(group)
    except TypeError:
        raise TypeError(f"a process group must be a hashable value (a str, an int, a tuple), not {group!r}") from None


class _ScopeServer(GenServer):
    """The scope process of one node (every callback runs in it)."""

    def __init__(self, scope: str, node: Any) -> None:  # node: its public API only
        self.scope = scope
        self.node = node
        self.me = node.node_name if node is not None else ""
        self.members: dict[Any, list[Pid]] = {}  # every member, local and remote
        self.local: dict[Any, list[Pid]] = {}
        self.joined: dict[Pid, tuple[Ref, Counter[Any]]] = {}  # local pid -> its monitor, its groups
        self.remote: dict[str, dict[Any, list[Pid]]] = {}  # node -> its groups
        self.peers: dict[str, tuple[Pid, Ref]] = {}  # node -> its scope process, our monitor of it
        self.targets: set[str] = set()  # nodes our sync went to: they get every change
        self.subs: dict[Any, dict[Ref, Pid]] = {}  # group (or _ALL) -> subscriptions
        self.sub_refs: dict[Ref, tuple[Any, Pid, Ref]] = {}  # sub ref -> (key, watcher, watcher monitor)
        self.watching: dict[Ref, Ref] = {}  # monitor of a watcher -> its subscription
        self.dropped = 0

    def init(self, args: Any) -> Any:
        if self.node is not None:
            self.node.monitor_nodes(self.ctx.pid)
            for peer in self.node.nodes():
                self._sync_to(peer, reply=True)
        return None

    def terminate(self, reason: Any, state: Any) -> None:
        if self.node is not None:
            try:
                self.node.monitor_nodes(self.ctx.pid, False)
            except Exception:  # noqa: BLE001 - the node may be shutting down
                log.debug("pg scope %r: cannot unsubscribe from node events", self.scope, exc_info=True)

    def handle_message(self, msg: Any, ctx: Any) -> None:
        # A stop or a malformed call from a peer must not end the scope (stop() uses system.stop).
        if msg.__class__ is tuple and msg and msg[0] in (CALL, STOP):
            if msg[0] == STOP or len(msg) != 3 or not isinstance(msg[1], tuple) or len(msg[1]) != 2:
                self._drop_bad(msg, "not a call this scope takes")
                return
        super().handle_message(msg, ctx)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        if from_[0].node != 0 or not isinstance(request, tuple) or not request:
            self._drop_bad(request, "a request from another node, or malformed")
            return Reply(("error", "badarg"))
        tag = request[0]
        if tag == "join":
            return Reply(self._join(request[1], request[2]))
        if tag == "leave":
            return Reply(("ok", self._leave(request[1], request[2])))
        if tag == "subscribe":
            return Reply(("ok", self._subscribe(request[1], request[2])))
        if tag == "demonitor":
            return Reply(("ok", self._unsubscribe(request[1])))
        if tag == "get_members":
            return Reply(("ok", list(self.members.get(request[1], ()))))
        return Reply(("error", "badarg"))

    def _join(self, group: Any, pids: list[Pid]) -> Any:
        for pid in pids:
            if not self.ctx.system.is_process_alive(pid):
                return ("error", "noproc", pid)
        for pid in pids:
            entry = self.joined.get(pid)
            if entry is None:
                entry = self.joined[pid] = (self.ctx.monitor(pid), Counter())
            entry[1][group] += 1
        self.local.setdefault(group, []).extend(pids)
        self._add(group, pids)
        self._broadcast(("$pg_join", self.me, group, pids))
        return ("ok",)

    def _leave(self, group: Any, pids: list[Pid]) -> bool:
        left = [pid for pid in pids if self._leave_one(group, pid)]
        if left:
            self._broadcast(("$pg_leave", self.me, group, left))
        return bool(left)

    def _leave_one(self, group: Any, pid: Pid) -> bool:
        entry = self.joined.get(pid)
        if entry is None or not entry[1][group]:
            return False
        ref, groups = entry
        groups[group] -= 1
        if not groups[group]:
            del groups[group]
        if not groups:
            del self.joined[pid]
            self.ctx.demonitor(ref, flush=True)
        self._discard(self.local, group, [pid])
        self._remove(group, [pid])
        return True

    def _subscribe(self, watcher: Pid, key: Any) -> tuple[Ref, Any]:
        ref = self.ctx.system.make_ref()
        mref = self.ctx.monitor(watcher)
        self.subs.setdefault(key, {})[ref] = watcher
        self.sub_refs[ref] = (key, watcher, mref)
        self.watching[mref] = ref
        if key == _ALL:
            return ref, {group: list(pids) for group, pids in self.members.items()}
        return ref, list(self.members.get(key, ()))

    def _unsubscribe(self, ref: Ref) -> bool:
        found = self.sub_refs.pop(ref, None)
        if found is None:
            return False
        key, _watcher, mref = found
        self.watching.pop(mref, None)
        self.ctx.demonitor(mref, flush=True)
        subs = self.subs.get(key)
        if subs is not None:
            subs.pop(ref, None)
            if not subs:
                del self.subs[key]
        return True

    def _notify(self, kind: str, group: Any, pids: list[Pid]) -> None:
        for key in (_ALL, group):
            subs = self.subs.get(key)
            if subs:
                for ref, watcher in list(subs.items()):
                    self.ctx.send(watcher, PgEvent(ref, kind, group, list(pids)))

    def _add(self, group: Any, pids: list[Pid]) -> None:
        if pids:
            self.members.setdefault(group, []).extend(pids)
            self._notify("join", group, pids)

    def _remove(self, group: Any, pids: list[Pid]) -> None:
        gone = self._discard(self.members, group, pids)
        if gone:
            self._notify("leave", group, gone)

    @staticmethod
    def _discard(table: dict[Any, list[Pid]], group: Any, pids: list[Pid]) -> list[Pid]:
        """Remove one membership of each pid from ``table[group]``; those removed."""
        items = table.get(group)
        if items is None:
            return []
        gone = []
        for pid in pids:
            if pid in items:
                items.remove(pid)
                gone.append(pid)
        if not items:
            del table[group]
        return gone

    def _replace_remote(self, peer: str, groups: dict[Any, list[Pid]]) -> None:
        """What ``peer`` holds now is ``groups``: apply the difference."""
        old = self.remote.pop(peer, {})
        if groups:
            self.remote[peer] = groups
        for group in set(old) | set(groups):
            before, after = Counter(old.get(group, ())), Counter(groups.get(group, ()))
            self._remove(group, list((before - after).elements()))
            self._add(group, list((after - before).elements()))

    def handle_info(self, msg: Any, state: Any) -> Any:
        cls = msg.__class__
        if cls is Down:
            self._down(msg)
        elif cls is NodeUp:
            self._sync_to(msg.node, reply=False)
        elif cls is NodeDown:
            self.targets.discard(msg.node)
            peer = self.peers.pop(msg.node, None)
            if peer is not None:
                self.ctx.demonitor(peer[1], flush=True)
            self._replace_remote(msg.node, {})
        elif cls is tuple and msg and msg[0] in ("$pg_join", "$pg_leave", "$pg_sync"):
            try:
                self._from_peer(msg)
            except (ValueError, TypeError, IndexError) as exc:
                self._drop_bad(msg, str(exc))
        else:
            self._drop_bad(msg, "unexpected")
        return state

    def _down(self, msg: Down) -> None:
        entry = self.joined.get(msg.pid)
        if entry is not None and entry[0] == msg.ref:  # a member ended: it leaves every group
            del self.joined[msg.pid]
            for group, count in entry[1].items():
                pids = [msg.pid] * count
                self._discard(self.local, group, pids)
                self._remove(group, pids)
                self._broadcast(("$pg_leave", self.me, group, pids))
            return
        sub = self.watching.pop(msg.ref, None)
        if sub is not None:  # a subscriber ended
            self._unsubscribe(sub)
            return
        for peer, (_pid, ref) in list(self.peers.items()):
            if ref == msg.ref:  # a peer's scope process ended: its members go
                del self.peers[peer]
                self._replace_remote(peer, {})
                return

    def _from_peer(self, msg: tuple[Any, ...]) -> None:
        tag, peer = msg[0], msg[1]
        if not isinstance(peer, str) or not peer or peer == self.me:
            raise ValueError("no peer node name")
        if tag == "$pg_sync":
            _, _, scope_pid, items, reply = msg
            if not isinstance(scope_pid, Pid) or not isinstance(items, list):
                raise ValueError("sync needs (node, scope_pid, [(group, [pid])], reply)")
            groups: dict[Any, list[Pid]] = {}
            for group, pids in items:
                _check_group(group)
                groups.setdefault(group, []).extend(self._pids(pids))
            known = self.peers.get(peer)
            if known is None or known[0] != scope_pid:
                if known is not None:
                    self.ctx.demonitor(known[1], flush=True)
                self.peers[peer] = (scope_pid, self.ctx.monitor(scope_pid))
            self._replace_remote(peer, groups)
            if reply:
                self._sync_to(peer, reply=False)
            return
        _, _, group, pids = msg
        _check_group(group)
        pids = self._pids(pids)
        if tag == "$pg_join":
            self.remote.setdefault(peer, {}).setdefault(group, []).extend(pids)
            self._add(group, pids)
        else:
            held = self.remote.get(peer, {})
            gone = self._discard(held, group, pids)
            if not held:
                self.remote.pop(peer, None)
            self._remove(group, gone)

    @staticmethod
    def _pids(pids: Any) -> list[Pid]:
        if not isinstance(pids, list) or not all(isinstance(p, Pid) for p in pids):
            raise ValueError("members must be a list of pids")
        return pids

    def _sync_to(self, peer: str, reply: bool) -> None:
        self.targets.add(peer)
        items = [(group, list(pids)) for group, pids in self.local.items()]
        self.ctx.send((self.scope, peer), ("$pg_sync", self.me, self.ctx.pid, items, reply))

    def _broadcast(self, msg: tuple[Any, ...]) -> None:
        for peer in sorted(self.targets):
            self.ctx.send((self.scope, peer), msg)

    def _drop_bad(self, msg: Any, why: str) -> None:
        self.dropped += 1
        log.warning("pg scope %r: dropped %r (%s)", self.scope, msg, why)


class Scope:
    """A handle on this node's scope process (make one with :func:`start`): reads come
    from this node's replica in the caller's greenlet, changes are calls.

    Attributes:
        name: the scope's name (its scope process is registered under it).
        system: the ActorSystem the scope process runs on.
    """

    def __init__(self, node_or_system: Any, name: str = DEFAULT_SCOPE) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a pg scope name must be a non-empty str, not {name!r}")
        node = None if isinstance(node_or_system, ActorSystem) else node_or_system
        self.system: ActorSystem = node_or_system if node is None else node.system
        self.name = name
        self._server = _ScopeServer(name, node)
        try:
            self._ref = gen_server.start(self.system, self._server, name=name)
        except StartError as exc:
            raise StartError(("already_started", name)) from exc

    @property
    def pid(self) -> Pid:
        """The pid of this node's scope process."""
        return self._ref.pid

    @property
    def dropped(self) -> int:
        """Messages from peers this scope process dropped as malformed or unexpected."""
        return self._server.dropped

    def join(self, group: Any, pids: Any) -> None:
        """Add ``pids`` (a pid, ref or context, or a list; local processes) to ``group``.

        Raises:
            TypeError: ``group`` is not hashable, or a member is not a pid.
            ValueError: a pid of another node (a process joins on its own node).
            NoProcError: a process is not alive.
        """
        join(self.system, group, pids, self._ref.pid)

    def leave(self, group: Any, pids: Any) -> bool:
        """Remove one membership of each of ``pids`` from ``group``.

        Returns:
            True if any was a member (OTP's ``ok``), else False (``not_joined``).

        Raises:
            TypeError, ValueError: as :meth:`join`.
        """
        return leave(self.system, group, pids, self._ref.pid)

    def get_members(self, group: Any) -> list[Pid]:
        """Every member of ``group`` on every node, a pid once per membership (a local read)."""
        return list(self._server.members.get(group, ()))

    def get_local_members(self, group: Any) -> list[Pid]:
        """The members of ``group`` that run on this node (a local read)."""
        return list(self._server.local.get(group, ()))

    def which_groups(self) -> list[Any]:
        """Every group with at least one member anywhere (a local read)."""
        return list(self._server.members)

    def which_local_groups(self) -> list[Any]:
        """Every group with at least one member on this node (a local read)."""
        return list(self._server.local)

    def monitor_scope(self, watcher: Any) -> tuple[Ref, dict[Any, list[Pid]]]:
        """Subscribe ``watcher`` (a local process) to every join and leave in this scope.

        Returns:
            ``(ref, {group: members})``: the subscription's ref and the groups now;
            a :class:`PgEvent` tagged ``ref`` follows each change, until :meth:`demonitor`.
        """
        result: tuple[Ref, dict[Any, list[Pid]]] = self._subscribe(watcher, _ALL)
        return result

    def monitor(self, group: Any, watcher: Any) -> tuple[Ref, list[Pid]]:
        """Subscribe ``watcher`` (a local process) to the joins and leaves of ``group``.

        Returns:
            ``(ref, members)``: the subscription's ref and the group's members now.
        """
        _check_group(group)
        result: tuple[Ref, list[Pid]] = self._subscribe(watcher, group)
        return result

    def demonitor(self, ref: Ref) -> bool:
        """End a subscription; False if ``ref`` is none (any more)."""
        return bool(_call(self.system, self._ref.pid, ("demonitor", ref))[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop this node's scope process: peers drop this node's members. Safe twice."""
        if self.system.is_process_alive(self._ref.pid):
            self.system.stop(self._ref.pid, SHUTDOWN, timeout)

    def _subscribe(self, watcher: Any, key: Any) -> Any:  # -> (ref, current members)
        pid = getattr(watcher, "pid", watcher)
        if not isinstance(pid, Pid) or pid.node != 0:
            raise TypeError(f"a pg subscriber is a local process (a Pid, ActorRef or context), not {watcher!r}")
        return _call(self.system, self._ref.pid, ("subscribe", pid, key))[1]


def _local_pids(pids: Any) -> list[Pid]:
    items = list(pids) if isinstance(pids, (list, tuple, set, frozenset)) else [pids]
    found = []
    for item in items:
        pid = getattr(item, "pid", item)
        if not isinstance(pid, Pid):
            raise TypeError(f"expected a Pid (or an ActorRef/ActorContext), not {item!r}")
        if pid.node != 0:
            raise ValueError(f"{pid} runs on another node: a process joins and leaves groups on its own node")
        found.append(pid)
    return found


def start(node_or_system: Any, scope: str = DEFAULT_SCOPE) -> Scope:
    """Start the scope ``scope`` on a node or a plain ActorSystem (OTP's ``pg:start``).

    Args:
        node_or_system: a node (the scope follows its peers) or an ActorSystem.
        scope: the scope's name; its process is registered under it.

    Returns:
        The :class:`Scope` handle.

    Raises:
        StartError: the name is taken on this node (``("already_started", scope)``).
    """
    return Scope(node_or_system, scope)


def _call(system: Any, scope: str | Pid, request: tuple[Any, ...]) -> Any:
    return getattr(system, "system", system).call(scope, request, 5.0)


def join(system: Any, group: Any, pids: Any, scope: str | Pid = DEFAULT_SCOPE) -> None:
    """``pg:join`` on ``system`` (or a node): as :meth:`Scope.join`, by scope name.

    Raises:
        CallError: no such scope runs there. Others: as :meth:`Scope.join`.
    """
    _check_group(group)
    answer = _call(system, scope, ("join", group, _local_pids(pids)))
    if answer[0] == "error":
        raise NoProcError(answer[2])


def leave(system: Any, group: Any, pids: Any, scope: str | Pid = DEFAULT_SCOPE) -> bool:
    """``pg:leave``: as :meth:`Scope.leave`, by scope name.

    Raises:
        CallError: no such scope runs there. Others: as :meth:`Scope.join`.
    """
    _check_group(group)
    return bool(_call(system, scope, ("leave", group, _local_pids(pids)))[1])


def get_members(system: Any, group: Any, scope: str = DEFAULT_SCOPE) -> list[Pid]:
    """``pg:get_members``, asked of the scope process (a :class:`Scope` reads without a call).

    Raises:
        CallError: no such scope runs there.
    """
    members: list[Pid] = _call(system, scope, ("get_members", group))[1]
    return members
