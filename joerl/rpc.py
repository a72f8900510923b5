"""Remote procedure calls (Erlang's ``rpc`` / ``erpc``): call a function another node registered.

No code travels: a node runs only the functions it registered by name in its
:class:`RpcHandlers`. Each node runs one rpc server, a process registered as
``"rex"`` (as Erlang's), started by :func:`start` or on demand by
:func:`register`; it runs each request in a process of its own, so a slow
handler holds up no other request.

Between nodes (GenServer calls and casts to ``("rex", node)``)::

    call ("call", name, [arg, ...])  -> ("ok", value)
                                      | ("error", "raised", type, message, traceback)
                                      | ("error", "no_such_handler", name)
                                      | ("error", "badarg", what)
    cast ("cast", name, [arg, ...])     run and forget (a failure is logged there)

What a caller gets (:func:`call`): the handler's return value; :class:`RpcError`
when the handler raised (with the remote exception's type, message and
traceback text), when no handler has that name, when the target runs no rpc
server, or when the value cannot be sent back; :class:`~joerl.errors.NodeUnreachable`
when the node cannot be reached or its link went during the call;
:class:`~joerl.errors.CallTimeout` when no answer came in time (the handler
may still run to its end there).

Erlang nodes reach the same :class:`RpcHandlers` (a node made with
``erlang=True``): ``rpc:call(Node, Module, Function, Args)`` runs the handler
named ``"Module:Function"``, and anything else answers ``{badrpc, _}``. And
:func:`call` with an Erlang node's name runs ``Module:Function`` there,
through its ``rex`` (``{badrpc, Reason}`` raises :class:`RpcError`).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import gevent

from . import gen_server
from .actor import ActorContext
from .erlang.terms import Atom
from .errors import CallError, CallTimeout, NodeUnreachable, RpcError, SerializationError, StartError
from .gen_server import GenServer, NoReply, Reply
from .message import NOCONNECTION, NOPROC, SHUTDOWN
from .pid import Pid
from .system import ActorSystem

__all__ = ["REX", "RpcError", "RpcHandlers", "RpcServer", "call", "cast", "multicall", "register", "start"]

log = logging.getLogger(__name__)

#: The local name of each node's rpc server (Erlang's ``rex``).
REX = "rex"


class RpcHandlers:
    """The functions a node lets its peers call, by name (a plain table, no process).

    A name is a non-empty str; an Erlang ``{Module, Function}`` maps to
    ``"Module:Function"``.
    """

    def __init__(self) -> None:
        self._fns: dict[str, Callable[..., Any]] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._fns

    def __len__(self) -> int:
        return len(self._fns)

    def register(self, name: str, fn: Callable[..., Any], *, replace: bool = False) -> None:
        """Let peers call ``fn(*args)`` as ``name``.

        Raises:
            TypeError: ``name`` is not a non-empty str, or ``fn`` is not callable.
            ValueError: ``name`` is registered already (pass ``replace=True``).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"an rpc handler name must be a non-empty str, not {name!r}")
        if not callable(fn):
            raise TypeError(f"an rpc handler must be callable, not {fn!r}")
        if name in self._fns and not replace:
            raise ValueError(f"rpc handler {name!r} is registered already; pass replace=True to replace it")
        self._fns[name] = fn

    def unregister(self, name: str) -> bool:
        """Remove ``name``; False if it was not registered."""
        return self._fns.pop(name, None) is not None

    def lookup(self, name: Any) -> Callable[..., Any] | None:
        """The function registered as ``name``, or None."""
        return self._fns.get(name) if isinstance(name, str) else None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._fns)


class _Rex(GenServer):
    """The rpc server of one node (every callback runs in it)."""

    def __init__(self, handlers: RpcHandlers) -> None:
        self.handlers = handlers
        self.dropped = 0

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply | NoReply:
        if isinstance(request, tuple) and len(request) == 3 and request[0] == "call":
            _, name, args = request
            fn = self.handlers.lookup(name)
            if fn is None:
                return Reply(("error", "no_such_handler", name))
            if not isinstance(args, (list, tuple)):
                return Reply(("error", "badarg", "the arguments must be a list"))
            self.ctx.spawn(_run, fn, name, list(args), from_)
            return NoReply()
        if isinstance(request, tuple) and request and request[0] in ("register", "unregister"):
            if from_[0].node != 0:
                return Reply(("error", "badarg", "handlers are registered by their own node"))
            if request[0] == "register":
                try:
                    self.handlers.register(*request[1:3], replace=request[3])
                except (TypeError, ValueError) as exc:
                    return Reply(("error", "badarg", exc))
                return Reply(("ok",))
            return Reply(("ok", self.handlers.unregister(request[1])))
        self.dropped += 1
        log.warning("rpc server: bad request %r", request)
        return Reply(("error", "badarg", "not an rpc request"))

    def handle_cast(self, request: Any, state: Any) -> Any:
        if isinstance(request, tuple) and len(request) == 3 and request[0] == "cast":
            fn = self.handlers.lookup(request[1])
            if fn is not None and isinstance(request[2], (list, tuple)):
                self.ctx.spawn(_run, fn, request[1], list(request[2]), None)
                return state
        self.dropped += 1
        log.warning("rpc server: dropped cast %r (no such handler, or malformed)", request)
        return state

    def handle_info(self, msg: Any, state: Any) -> Any:
        self.dropped += 1
        log.warning("rpc server: dropped unexpected message %r", msg)
        return state


def _run(ctx: ActorContext, fn: Callable[..., Any], name: str, args: list[Any], from_: Any) -> None:
    """One request's process: run the handler, answer the caller (if it waits)."""
    try:
        answer: Any = ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - the caller gets it as an RpcError
        answer = ("error", "raised", type(exc).__qualname__, str(exc), traceback.format_exc())
        if from_ is None:
            log.warning("rpc cast %r raised:\n%s", name, answer[4])
            return
    if from_ is None:
        return
    try:
        ctx.system.reply(from_, answer)
    except SerializationError as exc:
        ctx.system.reply(from_, ("error", "badreply", type(exc).__qualname__, str(exc), ""))


class RpcServer:
    """A handle on this node's rpc server (make one with :func:`start`).

    Attributes:
        handlers: its :class:`RpcHandlers` (changing it takes effect at once).
        system: the ActorSystem it runs on.
    """

    def __init__(self, system: ActorSystem, handlers: RpcHandlers) -> None:
        self.system = system
        self.handlers = handlers
        self._server = _Rex(handlers)
        self._ref = gen_server.start(system, self._server, name=REX)

    @property
    def pid(self) -> Pid:
        """The rpc server's pid."""
        return self._ref.pid

    @property
    def dropped(self) -> int:
        """Requests and messages the server dropped as malformed or unknown."""
        return self._server.dropped

    def register(self, name: str, fn: Callable[..., Any], *, replace: bool = False) -> None:
        """As :meth:`RpcHandlers.register`."""
        self.handlers.register(name, fn, replace=replace)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the rpc server (calls to this node then fail with ``no_server``). Safe twice."""
        if self.system.is_process_alive(self._ref.pid):
            self.system.stop(self._ref.pid, SHUTDOWN, timeout)


def _system(node: Any) -> ActorSystem:
    system: ActorSystem = node if isinstance(node, ActorSystem) else node.system
    return system


def start(node: Any, handlers: RpcHandlers | None = None) -> RpcServer:
    """Start this node's rpc server, registered as ``"rex"``.

    Args:
        node: a :class:`~joerl.node.node.DistributedSystem` (or an ActorSystem).
        handlers: the table to serve (default: a new, empty one).

    Returns:
        The :class:`RpcServer` handle.

    Raises:
        StartError: an rpc server (or another process named ``"rex"``) runs already.
    """
    return RpcServer(_system(node), handlers if handlers is not None else RpcHandlers())


def register(node: Any, name: str, fn: Callable[..., Any], *, replace: bool = False) -> None:
    """Let peers call ``fn(*args)`` on ``node`` as ``name``; starts the rpc server if none runs.

    Args:
        node: the serving node (a DistributedSystem; an ActorSystem serves only itself).
        name: what callers ask for, e.g. ``"math:add"`` (a non-empty str).
        fn: the function; it runs in a process of its own for each request.
        replace: replace a function registered under ``name`` already.

    Raises:
        TypeError, ValueError: as :meth:`RpcHandlers.register`.
        CallError: another process holds the name ``"rex"``.
    """
    system = _system(node)
    if system.whereis(REX) is None:
        try:
            start(system)
        except StartError:
            pass  # started meanwhile
    answer = system.call(REX, ("register", name, fn, replace), 5.0)
    if answer[0] != "ok":
        raise answer[2] if isinstance(answer[2], Exception) else TypeError(answer[2])


def _target(target_node: Any) -> str:
    if not isinstance(target_node, str) or not target_node:
        raise TypeError(f"the target node must be a node name (a non-empty str), not {target_node!r}")
    return target_node


def call(node: Any, target_node: str, name: str, *args: Any, timeout: float | None = 5.0) -> Any:
    """Run the handler ``name`` on ``target_node`` with ``args`` and return its value.

    Args:
        node: the calling node (a DistributedSystem).
        target_node: the node to run it on (this node's own name works too).
        name: what the target registered the function as.
        *args: its positional arguments (plain data: they cross the link).
        timeout: seconds to wait for the answer; None waits forever.

    Returns:
        What the handler returned.

    Raises:
        RpcError: the handler raised, no such handler, no rpc server there,
            or the result could not be sent back (``kind`` says which).
        NodeUnreachable: the node cannot be reached, or its link went meanwhile.
        CallTimeout: no answer within ``timeout``.
    """
    target_node = _target(target_node)
    if not isinstance(name, str) or not name:
        raise TypeError(f"an rpc handler name must be a non-empty str, not {name!r}")
    request: Any = ("call", name, list(args))
    erlang = getattr(node, "erlang", None)
    if erlang is not None and erlang.is_erlang(target_node):
        request = _erlang_request(name, args)  # rpc:call on an Erlang node, through its rex
    try:
        answer = _system(node).call((REX, target_node), request, timeout)
    except CallTimeout:
        raise
    except CallError as exc:
        if exc.reason == NOPROC:
            raise RpcError(target_node, name, "no_server", remote_message="it runs no rpc server") from exc
        if exc.reason == NOCONNECTION:
            raise NodeUnreachable(target_node, NOCONNECTION) from exc
        raise RpcError(target_node, name, "server_down", remote_message=repr(exc.reason)) from exc
    if request[0] != "call":  # Erlang's rex answers the value, or {badrpc, Reason}
        if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == Atom("badrpc"):
            raise RpcError(target_node, name, "raised", remote_message=repr(answer[1]))
        return answer
    if isinstance(answer, tuple) and answer and answer[0] == "ok" and len(answer) == 2:
        return answer[1]
    if isinstance(answer, tuple) and len(answer) >= 2 and answer[0] == "error":
        kind = str(answer[1])
        if kind in ("raised", "badreply") and len(answer) == 5:
            raise RpcError(target_node, name, kind, str(answer[2]), str(answer[3]), str(answer[4]))
        return _fail(target_node, name, kind, answer)
    raise RpcError(target_node, name, "badarg", remote_message=f"unexpected answer {answer!r}")


def _erlang_request(name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Erlang's rex request for ``"Module:Function"`` (``{call, M, F, Args, user}``)."""
    module, sep, function = name.partition(":")
    if not sep or not module or not function:
        raise TypeError(f"a function of an Erlang node is named 'Module:Function', not {name!r}")
    return (Atom("call"), Atom(module), Atom(function), list(args), Atom("user"))


def _fail(node: str, name: str, kind: str, answer: tuple[Any, ...]) -> Any:
    detail = "" if kind == "no_such_handler" else str(answer[2]) if len(answer) > 2 else ""
    raise RpcError(node, name, kind, remote_message=detail)


def cast(node: Any, target_node: str, name: str, *args: Any) -> None:
    """Run the handler ``name`` on ``target_node`` and do not wait (``rpc:cast``).

    Never fails once sent: an unknown handler, or one that raises, is logged
    on the target node (and counted in its :attr:`RpcServer.dropped` when unknown).

    Args:
        node: the calling node.
        target_node: the node to run it on.
        name: what the target registered the function as.
        *args: its positional arguments (plain data).

    Raises:
        TypeError: ``target_node`` or ``name`` is not a non-empty str.
    """
    target_node = _target(target_node)
    if not isinstance(name, str) or not name:
        raise TypeError(f"an rpc handler name must be a non-empty str, not {name!r}")
    gen_server.cast(_system(node), (REX, target_node), ("cast", name, list(args)))


def multicall(
    node: Any, nodes: Iterable[str], name: str, *args: Any, timeout: float | None = 5.0
) -> tuple[dict[str, Any], dict[str, Exception]]:
    """:func:`call` ``name`` on every node of ``nodes`` at once (``rpc:multicall``).

    Args:
        node: the calling node.
        nodes: the nodes to run it on.
        name: what they registered the function as.
        *args: its positional arguments (plain data).
        timeout: seconds to wait for all the answers; None waits forever.

    Returns:
        ``(results, errors)``: the value each node returned, by node name, and
        the exception each failed node gave (RpcError, NodeUnreachable,
        CallTimeout), by node name. Every node is in exactly one of them.

    Raises:
        TypeError: a node or ``name`` is not a non-empty str.
    """
    targets = list(dict.fromkeys(_target(n) for n in nodes))

    def one(target: str) -> tuple[bool, Any]:
        try:
            return True, call(node, target, name, *args, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - handed to the caller in errors
            return False, exc

    jobs = {n: gevent.spawn(one, n) for n in targets}
    gevent.joinall(list(jobs.values()))
    results: dict[str, Any] = {}
    errors: dict[str, Exception] = {}
    for n, job in jobs.items():
        if job.successful():
            ok, value = job.value
            (results if ok else errors)[n] = value
        else:  # the greenlet was killed
            errors[n] = RpcError(n, name, "server_down", remote_message=repr(job.exception))
    return results, errors
