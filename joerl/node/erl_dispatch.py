"""What Erlang nodes send, applied to the runtime through its Inbound (a link's reader greenlet).

The sibling of :mod:`~joerl.node.dispatch` for Erlang's control messages:

* SEND, SEND_SENDER, REG_SEND: into the mailbox (``ctx.sender`` is the
  Erlang sender where the message carries it); ``{'$gen_call', ...}``
  becomes joerl's call, so a joerl GenServer answers ``gen_server:call``;
  a reply to one of our calls (``{Ref, Reply}``) resolves it;
* ALIAS_SEND: the reply to one of our calls, sent to its alias;
* LINK, UNLINK_ID (acknowledged), EXIT, EXIT2, MONITOR_P (a pid or a name),
  DEMONITOR_P, MONITOR_P_EXIT: links, monitors and exit signals;
  a process that does not run is answered ``noproc``;
* REG_SEND to ``net_kernel``: the ``is_auth`` call of ``net_adm:ping``;
* REG_SEND to ``rex`` and SPAWN_REQUEST of ``erpc:execute_call/4`` (what
  ``rpc:call`` uses): run a handler of the node's rpc server
  (:mod:`joerl.rpc`'s ``RpcHandlers``, named ``"Module:Function"``), and
  nothing else: another name is answered as an undefined function
  (``{badrpc, _}`` for the caller);
* SPAWN_REQUEST of ``Module:Function`` (or ``joerl:Name``): a factory the
  node registered (``register_factory``), else the error ``badarg``.

A message for a process that is not running is dropped and counted
(``noproc``), as Erlang drops it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gevent

from .._gen import as_call
from .._stats import DROP_NOPROC
from ..erlang.control import (
    AliasSend,
    DemonitorP,
    Exit,
    Exit2,
    Link,
    MonitorP,
    MonitorPExit,
    RegSend,
    Send,
    SendSender,
    SpawnReply,
    SpawnRequest,
    UnlinkId,
    UnlinkIdAck,
)
from ..erlang.terms import Atom, ErlangPid
from ..errors import CallError, CallTimeout, LinkDown
from ..message import NOPROC
from ..pid import Pid

if TYPE_CHECKING:
    from ..system import ActorSystem
    from .erl_link import ErlangLink
    from .erl_routing import ErlangRouting
    from .spawn import Spawner

__all__ = ["ErlangDispatch"]

log = logging.getLogger("joerl.node")

_NET_KERNEL = Atom("net_kernel")
_REX = Atom("rex")
_ERPC = Atom("erpc")
_EXECUTE_CALL = Atom("execute_call")
_EXECUTE_CAST = Atom("execute_cast")
_LINK = Atom("link")
_MONITOR = Atom("monitor")
_UNDEF = Atom("undef")
_ERROR = Atom("error")
_RETURN = Atom("return")
_BADRPC = Atom("badrpc")
_YES = Atom("yes")
#: The id bit of the pids that answer erpc's spawn requests: they name no process.
_VIRTUAL = 1 << 63


class ErlangDispatch:
    """Control messages from Erlang nodes (see the module docstring).

    Args:
        routing: the Erlang routing (mapping, links, pending calls, Inbound).
        system: the node's actor system.
        spawner: the node's remote-spawn service (its factories).
    """

    def __init__(self, routing: ErlangRouting, system: ActorSystem, spawner: Spawner) -> None:
        self._routing = routing
        self._terms = routing.terms
        self._inbound = routing.inbound
        self._pending = routing.pending
        self._stats = routing.stats
        self._system = system
        self._spawner = spawner

    def on_message(self, link: ErlangLink, msg: Any) -> None:
        """One control message from ``link``'s peer (its reader greenlet)."""
        t = self._terms
        inbound = self._inbound
        cls = msg.__class__
        if cls is SendSender:
            self._deliver(t.pid_in(msg.to_pid), msg.message, t.pid_in(msg.from_pid))
        elif cls is Send:
            self._deliver(t.pid_in(msg.to_pid), msg.message, None)
        elif cls is RegSend:
            self._reg_send(link, msg)
        elif cls is AliasSend:
            reply = t.reply_in(msg.message)
            if reply is None or not self._pending.resolve(t.ref_in(msg.alias), (True, reply[1])):
                self._late()
        elif cls is Link:
            local = t.pid_in(msg.to_pid)
            if local.node != 0 or not inbound.add_link(local, t.pid_in(msg.from_pid)):
                _answer(link, Exit(msg.to_pid, msg.from_pid, Atom(NOPROC)))
        elif cls is UnlinkId:
            local = t.pid_in(msg.to_pid)
            if local.node == 0:
                inbound.remove_link(local, t.pid_in(msg.from_pid))
            _answer(link, UnlinkIdAck(msg.id, msg.to_pid, msg.from_pid))
        elif cls is Exit or cls is Exit2:
            local = t.pid_in(msg.to_pid)
            if local.node == 0:
                inbound.exit(t.pid_in(msg.from_pid), local, t.reason_in(msg.reason), cls is Exit)
        elif cls is MonitorP:
            self._monitor(link, msg)
        elif cls is DemonitorP:
            target = self._target(msg.to_proc)
            ref = t.ref_in(msg.ref)
            self._routing.named.pop(ref, None)
            if target is not None:
                inbound.remove_monitor(target, ref)
        elif cls is MonitorPExit:
            ref = t.ref_in(msg.ref)
            reason = t.reason_in(msg.reason)
            if self._pending.resolve(ref, (False, reason)):
                return  # the server of one of our calls ended: the call fails
            proc = msg.from_proc
            pid = t.pid_in(proc) if proc.__class__ is ErlangPid else Pid._unchecked(t.learn(link.peer_name), 0, 0)
            inbound.down(t.pid_in(msg.to_pid), ref, pid, reason)
        elif cls is SpawnRequest:
            self._spawn(link, msg)
        elif cls is UnlinkIdAck or cls is SpawnReply:
            pass  # (we never spawn on Erlang nodes; an unlink needs no ack here)
        else:
            log.debug("ignoring %s from %s", cls.__name__, link.peer_name)

    # -- messages ------------------------------------------------------------------------------

    def _deliver(self, to: Pid, message: Any, sender: Pid | None) -> None:
        if to.node != 0:
            self._stats.dropped_stale += 1
            return
        mailbox = self._inbound.mailbox(to.id)
        if mailbox is None:
            self._system.stats.drop(DROP_NOPROC)
            return
        reply = self._terms.reply_in(message) if message.__class__ is tuple and len(message) == 2 else None
        if reply is not None and self._pending.resolve(reply[0], (True, reply[1])):
            return  # a reply ``{Ref, Reply}`` to one of our calls
        self._stats.received += 1
        payload = as_call(self._terms.call_in(message))
        if mailbox.maxsize is None:
            mailbox.deliver(payload, sender)
        elif not mailbox.try_put((payload, sender)):
            self._system.stats.drop("mailbox_full")  # (Erlang has no flow control: never block the link)

    def _reg_send(self, link: ErlangLink, msg: RegSend) -> None:
        name = msg.to_name
        if name == _NET_KERNEL:
            call = self._terms.call_in(msg.message)
            if isinstance(call, tuple) and len(call) == 3 and call[0] == "$gen_call":
                _answer(link, self._terms.reply_out(call[1], _YES))  # {is_auth, Node}: yes
            return
        pid = self._system.whereis(name.name) if isinstance(name, Atom) else None
        if name == _REX and self._rex_call(link, msg.message):
            return
        sender = self._terms.pid_in(msg.from_pid) if isinstance(msg.from_pid, ErlangPid) else None
        if pid is None:
            self._system.stats.drop(DROP_NOPROC)
            return
        self._deliver(pid, msg.message, sender)

    def _late(self) -> None:
        extra = self._stats.extra
        extra["late_replies"] = extra.get("late_replies", 0) + 1

    # -- monitors ----------------------------------------------------------------------------------

    def _target(self, proc: Any) -> Pid | None:
        if isinstance(proc, Atom):
            return self._system.whereis(proc.name)
        local = self._terms.pid_in(proc)
        return local if local.node == 0 else None

    def _monitor(self, link: ErlangLink, msg: MonitorP) -> None:
        t = self._terms
        proc = msg.to_proc
        if proc == _NET_KERNEL:
            return  # net_kernel is this node itself: its monitor fires with the link
        local = self._target(proc)
        ref = t.ref_in(msg.ref)
        if isinstance(proc, Atom) and local is not None:
            self._routing.named[ref] = proc
        if local is None or not self._inbound.add_monitor(t.pid_in(msg.from_pid), local, ref):
            self._routing.named.pop(ref, None)
            _answer(link, MonitorPExit(proc, msg.from_pid, msg.ref, Atom(NOPROC)))

    # -- rpc and spawn -----------------------------------------------------------------------------

    def _rex_call(self, link: ErlangLink, message: Any) -> bool:
        """``{'$gen_call', From, {call, M, F, A, GL}}`` to ``rex``: answered from the node's rpc handlers."""
        call = self._terms.call_in(message)
        if not (isinstance(call, tuple) and len(call) == 3 and call[0] == "$gen_call"):
            return False
        request = call[2]
        if not (isinstance(request, tuple) and len(request) == 5 and request[0] == Atom("call")):
            return False
        from_ = call[1]

        def body(ctx: Any) -> None:
            ok, value = self._run_rpc(request[1], request[2], request[3])
            answer = value if ok else (_BADRPC, (Atom("EXIT"), value))
            try:
                ctx.system.reply(from_, answer)
            except Exception:  # noqa: BLE001 - the answer cannot cross: say so
                ctx.system.reply(from_, (_BADRPC, Atom("badreply")))

        self._system.spawn_fn(body)
        return True

    def _run_rpc(self, module: Any, function: Any, args: Any) -> tuple[bool, Any]:
        """Run the handler ``"Module:Function"`` of the local rpc server: (True, value) or (False, reason)."""
        from ..rpc import REX

        if not (isinstance(module, Atom) and isinstance(function, Atom) and isinstance(args, list)):
            return False, (Atom("badarg"), [])
        name = f"{module.name}:{function.name}"
        try:
            answer = self._system.call(REX, ("call", name, args), None)
        except (CallError, CallTimeout):
            return False, (_UNDEF, [])  # no rpc server here: nothing is callable
        if answer[0] == "ok":
            return True, answer[1]
        if answer[0] == "error" and answer[1] == "raised":
            return False, ((Atom("exception"), *answer[2:5]), [])
        return False, (_UNDEF, [(module, function, len(args), [])])

    def _spawn(self, link: ErlangLink, msg: SpawnRequest) -> None:
        t = self._terms
        mfa, args, opts = msg.mfa, msg.args, msg.opts
        opts = list(opts) if isinstance(opts, list) else []
        requester = t.pid_in(msg.from_pid) if isinstance(msg.from_pid, ErlangPid) else None
        if not (isinstance(mfa, tuple) and len(mfa) == 3 and isinstance(args, list) and requester is not None):
            _answer(link, SpawnReply(msg.req_id, msg.from_pid, 0, Atom("badarg")))
            return
        module, function, _ = mfa
        if module == _ERPC and function in (_EXECUTE_CALL, _EXECUTE_CAST):
            self._erpc(link, msg, function == _EXECUTE_CALL, _MONITOR in opts)
            return
        try:
            name = function.name if module == Atom("joerl") else f"{module}:{function}"
            pid = self._spawner.spawn_local(name, tuple(t.to_local(args)))
        except Exception as exc:  # noqa: BLE001 - the requester gets an error, not silence
            log.info("spawn request %s from %s refused: %s", mfa, link.peer_name, exc)
            _answer(link, SpawnReply(msg.req_id, msg.from_pid, 0, Atom("badarg")))
            return
        flags = 0
        if _LINK in opts:  # (before the child runs: it has not been scheduled yet)
            self._inbound.add_link(pid, requester)
            flags |= 1
        if _MONITOR in opts:
            self._inbound.add_monitor(requester, pid, t.ref_in(msg.req_id))
            flags |= 2
        _answer(link, SpawnReply(msg.req_id, msg.from_pid, flags, t.pid_out(pid)))

    def _erpc(self, link: ErlangLink, msg: SpawnRequest, call: bool, monitored: bool) -> None:
        """``erpc:execute_call(Ref, M, F, A)`` (what ``rpc:call`` spawns), the erpc way but with no process.

        The spawn is answered with a pid that names no process (bit 63 set: the
        runtime never hands such ids out); a greenlet runs the handler, and the
        answer goes to the requester's monitor as that pid's exit reason
        ``{Ref, return, Value}`` (or ``{Ref, error, Reason, Stack}``), as erpc reads it.
        """
        t = self._terms
        args = t.to_local(msg.args)
        if not (isinstance(args, list) and len(args) == (4 if call else 3)):
            _answer(link, SpawnReply(msg.req_id, msg.from_pid, 0, Atom("badarg")))
            return
        ref = args[0] if call else None
        module, function, fargs = args[-3:]
        epid = t.pid_out(Pid._unchecked(0, _VIRTUAL | self._system.make_ref().id, 0))
        _answer(link, SpawnReply(msg.req_id, msg.from_pid, 2 if monitored else 0, epid))

        def run() -> None:
            ok, value = self._run_rpc(module, function, fargs)
            if call and monitored:
                reason = (ref, _RETURN, value) if ok else (ref, _ERROR, *value)
                _answer(link, MonitorPExit(epid, msg.from_pid, msg.req_id, t.reason_out(reason)))

        gevent.spawn(run)


def _answer(link: ErlangLink, msg: Any) -> None:
    try:
        link.send(msg)
    except LinkDown:
        pass  # the link is going: its loss tells the rest
