"""Worker pools: a supervised set of worker processes lent out one caller at
a time (the shape of Erlang's poolboy).

:func:`start_pool` starts a pool manager process and, linked under it, a
:class:`~joerl.supervisor.DynamicSupervisor` of ``size`` workers. A caller
checks a worker out (:meth:`Pool.checkout`), uses it (calls, sends) and
checks it back in (:meth:`Pool.checkin`). When every worker is out, up to
``max_overflow`` extra workers are started; an overflow worker is stopped
when it comes back. Beyond that a checkout waits (``block=True``, raising
:class:`PoolTimeout` after ``timeout``) or fails at once (:class:`PoolFull`).

The manager monitors every actor that holds a worker: if it dies, the worker
goes back to the pool. A worker that dies is replaced. :meth:`Pool.transaction`
checks out, runs the caller's code and checks in whatever happens;
:meth:`Pool.map` runs many items on the workers, and the module's :func:`map`
runs ``fn(item)`` for many items on K worker processes from a plain script.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent

from .actor import ActorContext, ActorRef
from .errors import CallTimeout, PoolError, PoolFull, PoolTimeout
from .gen_server import From, GenServer, NoReply, Reply, cast
from .gen_server import start as start_server
from .message import SHUTDOWN, Down
from .pid import Pid, Ref
from .supervisor import ChildSpec, DynamicSupervisor, start_child, start_link, terminate_child
from .system import ActorSystem

__all__ = ["Pool", "PoolError", "PoolFull", "PoolTimeout", "map", "start_pool"]

log = logging.getLogger("joerl.pool")

Via = ActorSystem | ActorContext


class _Manager(GenServer):
    """The pool's process: lends workers, takes them back, watches borrowers."""

    _joerl_supervisor = True  # stopped first at system shutdown; stops its workers

    def __init__(self, spec: ChildSpec, size: int, max_overflow: int) -> None:
        self.spec, self.size, self.max_overflow = spec, size, max_overflow
        self.idle: deque[Pid] = deque()
        self.workers: dict[Ref, Pid] = {}  # worker monitors
        self.out: dict[Pid, tuple[Ref, Ref | None]] = {}  # worker -> (cref, borrower monitor)
        self.by_cref: dict[Ref, Pid] = {}
        self.borrowers: dict[Ref, Pid] = {}  # borrower monitor -> worker
        self.waiting: deque[tuple[From, Ref, Ref | None]] = deque()
        self.overflow = 0
        self.sup: Pid | None = None

    def init(self, args: Any) -> Any:
        self.sup = start_link(self.ctx, DynamicSupervisor(self.spec)).pid
        for _ in range(self.size):
            self.idle.append(self._new())
        return None

    def _new(self) -> Pid:
        pid = start_child(self.ctx, self.sup, ())
        assert pid is not None, "a pool worker's start returned IGNORE"
        self.workers[self.ctx.monitor(pid)] = pid
        return pid

    def _lend(self, worker: Pid, cref: Ref, borrower: Pid | None) -> Pid:
        mref = self.ctx.monitor(borrower) if borrower is not None else None
        self.out[worker] = (cref, mref)
        self.by_cref[cref] = worker
        if mref is not None:
            self.borrowers[mref] = worker
        return worker

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply | NoReply:
        """``("checkout", block, cref, borrower)`` and ``("status",)``."""
        if request[0] == "status":
            return Reply(self._status())
        _, block, cref, borrower = request
        if self.idle:
            return Reply(self._lend(self.idle.popleft(), cref, borrower))
        if self.overflow < self.max_overflow:
            self.overflow += 1
            return Reply(self._lend(self._new(), cref, borrower))
        if not block:
            return Reply(None)
        mref = self.ctx.monitor(borrower) if borrower is not None else None
        self.waiting.append((from_, cref, mref))
        return NoReply()

    def handle_cast(self, request: Any, state: Any) -> Any:
        """``("checkin", worker)``; ``("cancel", cref)`` from a checkout that timed out."""
        if request[0] == "checkin":
            self._checkin(request[1])
        else:
            cref = request[1]
            for entry in self.waiting:
                if entry[1] == cref:
                    self.waiting.remove(entry)
                    if entry[2] is not None:
                        self.ctx.demonitor(entry[2], flush=True)
                    break
            worker = self.by_cref.get(cref)
            if worker is not None:  # lent just as the caller gave up: the reply was dropped
                self._checkin(worker)
        return state

    def handle_info(self, msg: Any, state: Any) -> Any:
        """A borrower died (its worker comes back) or a worker died (replaced)."""
        if msg.__class__ is not Down:
            return state
        worker = self.borrowers.pop(msg.ref, None)
        if worker is not None:
            log.info(
                "pool %s: borrower %s of %s ended (%s); worker checked in", self.ctx.pid, msg.pid, worker, msg.reason
            )
            self._checkin(worker)
            return state
        for entry in self.waiting:
            if entry[2] == msg.ref:
                self.waiting.remove(entry)
                return state
        worker = self.workers.pop(msg.ref, None)
        if worker is not None:
            self._lost(worker)
        return state

    def _checkin(self, worker: Pid) -> None:
        lent = self.out.pop(worker, None)
        if lent is None:
            return  # not out (checked in twice, or died meanwhile)
        cref, mref = lent
        del self.by_cref[cref]
        if mref is not None:
            self.borrowers.pop(mref, None)
            self.ctx.demonitor(mref, flush=True)
        self._give(worker)

    def _give(self, worker: Pid) -> None:
        if self.waiting:
            from_, cref, mref = self.waiting.popleft()
            self.out[worker] = (cref, mref)
            self.by_cref[cref] = worker
            if mref is not None:
                self.borrowers[mref] = worker
            self.reply(from_, worker)
        elif self.overflow > 0:
            self.overflow -= 1
            for ref, pid in list(self.workers.items()):
                if pid == worker:
                    del self.workers[ref]
                    self.ctx.demonitor(ref, flush=True)
            terminate_child(self.ctx, self.sup, worker)
        else:
            self.idle.append(worker)

    def _lost(self, worker: Pid) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        lent = self.out.pop(worker, None)
        if lent is not None:
            del self.by_cref[lent[0]]
            if lent[1] is not None:
                self.borrowers.pop(lent[1], None)
                self.ctx.demonitor(lent[1], flush=True)
        if self.overflow > 0 and not self.waiting:
            self.overflow -= 1
            return
        try:
            self._give(self._new())
        except Exception:  # noqa: BLE001 - the pool runs one short; logged
            log.exception("pool %s: could not replace worker %s", self.ctx.pid, worker)

    def _status(self) -> dict[str, int]:
        return {
            "size": self.size,
            "max_overflow": self.max_overflow,
            "idle": len(self.idle),
            "checked_out": len(self.out),
            "overflow": self.overflow,
            "waiting": len(self.waiting),
        }

    def terminate(self, reason: Any, state: Any) -> None:
        """Stop the workers' supervisor (all workers at once) before the pool ends."""
        if self.sup is not None:
            self.ctx.unlink(self.sup)
            self.ctx.system.stop(self.sup, SHUTDOWN, None)


class Pool:
    """A handle on a running pool (made by :func:`start_pool`).

    Every method takes ``via``: None from plain code, or the calling actor's
    ActorContext, so that the pool watches that actor while it holds a worker.

    Attributes:
        pid: the pool manager's pid.
        system: the system it runs in.
    """

    __slots__ = ("pid", "system")

    def __init__(self, system: ActorSystem, pid: Pid) -> None:
        self.system, self.pid = system, pid

    def __repr__(self) -> str:
        return f"<Pool {self.pid}>"

    def checkout(self, *, block: bool = True, timeout: float | None = 5.0, via: ActorContext | None = None) -> Pid:
        """Borrow a worker; give it back with :meth:`checkin`.

        Args:
            block: wait for a worker when none is free (else fail at once).
            timeout: seconds to wait (None: for ever).
            via: the calling actor's context (the pool takes the worker back if it dies).

        Returns:
            The worker's pid.

        Raises:
            PoolTimeout: no worker within ``timeout``.
            PoolFull: ``block=False`` and no worker free.
            CallError: the pool is not running.
        """
        cref = self.system.make_ref()
        borrower = via.pid if via is not None else None
        caller: Any = via if via is not None else self.system
        try:
            worker = caller.call(self.pid, ("checkout", block, cref, borrower), timeout)
        except CallTimeout:
            cast(self.system, self.pid, ("cancel", cref))
            raise PoolTimeout(self.pid, timeout) from None
        if worker is None:
            raise PoolFull(self.pid)
        return worker  # type: ignore[no-any-return]

    def checkin(self, worker: Pid | ActorRef) -> None:
        """Give ``worker`` back (an overflow worker is stopped). Never fails."""
        pid = worker.pid if isinstance(worker, ActorRef) else worker
        cast(self.system, self.pid, ("checkin", pid))

    @contextlib.contextmanager
    def _held(self, timeout: float | None, via: ActorContext | None) -> Iterator[Pid]:
        worker = self.checkout(timeout=timeout, via=via)
        try:
            yield worker
        finally:
            self.checkin(worker)

    def transaction(
        self,
        fn: Callable[[Pid], Any] | float | None = None,
        timeout: float | None = 5.0,
        *,
        via: ActorContext | None = None,
    ) -> Any:
        """Borrow a worker for a block of code, and give it back whatever happens.

        ``with pool.transaction(timeout) as worker: ...`` or
        ``pool.transaction(fn)``, which returns ``fn(worker)``.

        Args:
            fn: the function to run with the worker, or (as a context manager)
                the checkout timeout.
            timeout: the checkout timeout when ``fn`` is a function.
            via: the calling actor's context.

        Returns:
            ``fn(worker)``, or a context manager yielding the worker.

        Raises:
            PoolTimeout, PoolFull: as :meth:`checkout`; and whatever ``fn`` raises.
        """
        if callable(fn):
            with self._held(timeout, via) as worker:
                return fn(worker)
        return self._held(fn if fn is not None else timeout, via)

    def map(
        self,
        fn: Callable[[Pid, Any], Any],
        items: Iterable[Any],
        *,
        workers: int | None = None,
        timeout: float | None = None,
    ) -> list[Any]:
        """``[fn(worker, item) for item in items]``, up to ``workers`` items at a time,
        each on a worker borrowed for it (from plain code: each runs in a greenlet).

        Args:
            fn: called with a borrowed worker and one item.
            items: the items.
            workers: how many run at once (default: size + max_overflow).
            timeout: the checkout timeout of each item.

        Returns:
            The results, in the order of ``items``.

        Raises:
            Exception: the first item (in input order) that raised; no new
                item starts once one has raised.
        """
        todo = list(items)
        if workers is None:
            status = self.status()
            workers = status["size"] + status["max_overflow"]
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        results: list[Any] = [None] * len(todo)
        failures: list[tuple[int, BaseException]] = []
        feed = iter(range(len(todo)))

        def run() -> None:
            for i in feed:
                if failures:
                    return
                try:
                    results[i] = self.transaction(lambda w: fn(w, todo[i]), timeout)  # noqa: B023
                except Exception as exc:  # noqa: BLE001 - re-raised below, in input order
                    failures.append((i, exc))

        gevent.joinall([gevent.spawn(run) for _ in range(min(workers, len(todo)))])
        if failures:
            raise min(failures, key=lambda f: f[0])[1]
        return results

    def status(self, timeout: float | None = 5.0) -> dict[str, int]:
        """``{"size", "max_overflow", "idle", "checked_out", "overflow", "waiting"}``."""
        return self.system.call(self.pid, ("status",), timeout)  # type: ignore[no-any-return]

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the pool and all its workers; True once it has ended."""
        return self.system.stop(self.pid, SHUTDOWN, timeout)


def start_pool(
    system: ActorSystem,
    worker: ChildSpec | Callable[..., Any],
    *,
    size: int = 5,
    max_overflow: int = 0,
    name: str | None = None,
) -> Pool:
    """Start a pool of ``size`` workers (plus up to ``max_overflow`` on demand).

    Args:
        system: the system to run in.
        worker: a ChildSpec (its ``start(ctx)`` makes one worker; its restart
            type is ignored: the pool replaces dead workers itself), or a
            factory of Actor instances (an Actor class).
        size: workers started at once and kept.
        max_overflow: extra workers started when all are out, stopped when back.
        name: register the pool manager under this name.

    Returns:
        The Pool.

    Raises:
        ValueError: a bad size or max_overflow.
        StartError: a worker failed to start.
    """
    for what, n in (("size", size), ("max_overflow", max_overflow)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{what} must be an int >= 0, got {n!r}")
    if size + max_overflow < 1:
        raise ValueError("a pool needs size + max_overflow >= 1")
    if isinstance(worker, ChildSpec):
        spec = dataclasses.replace(worker, restart="temporary")
    else:
        spec = ChildSpec.worker("pool_worker", worker, restart="temporary")
    ref = start_server(system, _Manager(spec, size, max_overflow), name=name, timeout=None)
    return Pool(system, ref.pid)


class _Runner(GenServer):
    """A worker of :func:`map`: runs ``fn(item)`` in its own process."""

    def handle_call(self, request: Any, from_: From, state: Any) -> Reply:
        fn, item = request
        try:
            return Reply(("ok", fn(item)))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller
            return Reply(("error", exc, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))))


def map(system: ActorSystem, fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int = 4) -> list[Any]:  # noqa: A001
    """Run ``fn(item)`` for every item on ``workers`` worker processes; for a plain script.

    A pool of ``workers`` processes runs for the call and is stopped after it.

    Args:
        system: the system to run in.
        fn: the function; it runs in a worker process.
        items: its arguments, one call each.
        workers: how many processes (and so items) run at once.

    Returns:
        The results, in the order of ``items``.

    Raises:
        Exception: the first item (in input order) that raised, re-raised
            with the worker's traceback in its ``__notes__``.
    """
    pool = start_pool(system, _Runner, size=workers)

    def one(worker: Pid, item: Any) -> Any:
        outcome = system.call(worker, (fn, item), None)
        if outcome[0] == "error":
            outcome[1].add_note(f"raised in pool worker {worker}:\n{outcome[2]}")
            raise outcome[1]
        return outcome[1]

    try:
        return pool.map(one, items, workers=workers)
    finally:
        pool.stop()
