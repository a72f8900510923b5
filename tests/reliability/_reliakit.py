"""Helpers of the fault and soak tests: node processes, RSS, attackers, and a stream that keeps count.

* :func:`start_child`: a :class:`~joerl.testing.ChildProcess` with the
  tests' cookie (a node of ``tests/multiprocess/node_main.py``, or a port
  mapper; see :func:`epmd_argv` and :func:`node_argv`).
* :func:`rss_kb`: the resident set of a process, from ``/proc``.
* :func:`start_attacker`: a child process that holds idle, slowloris and
  silent connections open to a port from 127.0.0.2 and up (the lockout tests
  of the node listener and of the port mapper).
* :class:`Stream`: a process of the test's own node that sends numbered
  messages to the ``stream`` process of a ``serve`` node and keeps the books:
  what it sent, what the far end acknowledged, and which ranges it was told
  were lost (a ``NodeDown`` or a ``Down(noconnection)`` of its monitor makes
  every unacknowledged message "in doubt"). The far end counts what arrived,
  gaps and order violations; at the end the two accounts are compared.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from joerl.actor import ActorContext
from joerl.errors import ConnectionLost, ReceiveTimeout
from joerl.message import Down, NodeDown, NodeUp
from joerl.node.names import node_name
from joerl.node.node import DistributedSystem
from joerl.testing import ChildProcess

ROOT = Path(__file__).resolve().parents[2]
NODE_MAIN = ROOT / "tests" / "multiprocess" / "node_main.py"
COOKIE = "joerl-reliability-test"
WAIT = 30.0  # generous: the machine is shared; the figures say how long things really took


#: The attacker of the lockout tests: ``host port mode:source:count ...``; prints
#: READY once every socket is open. Each ``mode:source:count`` is ``count``
#: connections from address ``source`` (127.0.0.2 and up: the legitimate
#: clients use 127.0.0.1), each reopened as soon as the target closes it:
#:
#: * ``idle``: send two bytes (the length of a message that never comes), hold;
#: * ``slowloris``: those two bytes, then one byte every 0.5 s;
#: * ``silent``: send nothing (a half-open connection).
ATTACKER = r"""
import sys, time
import gevent
import gevent.event
from gevent import socket

host, port = sys.argv[1], int(sys.argv[2])
plan = [arg.split(":") for arg in sys.argv[3:]]
total = sum(int(c) for _, _, c in plan)
opened = [0]
all_open = gevent.event.Event()  # set once every planned socket has connected

def once(mode, src):
    s = socket.socket()
    try:
        s.bind((src, 0))
        s.connect((host, port))
    except OSError:
        s.close()
        return 0.0
    opened[0] += 1
    if opened[0] >= total:
        all_open.set()
    t0 = time.monotonic()
    try:
        if mode == "slowloris":
            s.sendall(b"\x01\x00")
            s.settimeout(0.5)
            while True:
                try:
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    s.sendall(b"\x81")
        else:
            if mode == "idle":
                s.sendall(b"\x01\x00")
            while s.recv(4096):
                pass
    except OSError:
        pass
    finally:
        s.close()
    return time.monotonic() - t0

def attacker(mode, src):
    while True:
        if once(mode, src) < 0.05:
            gevent.sleep(0.05)  # closed at once: reconnect, but do not spin

for mode, src, count in plan:
    for _ in range(int(count)):
        gevent.spawn(attacker, mode, src)
all_open.wait()
print("READY opened=%d" % opened[0], flush=True)
gevent.event.Event().wait()  # attack until the test kills this process
"""


def start_attacker(port: int, plan: list[str], host: str = "127.0.0.1") -> ChildProcess:
    """Run :data:`ATTACKER` against ``host:port`` with ``plan``
    (``mode:source:count`` items); returns once every connection is open
    (close it after)."""
    child = ChildProcess([sys.executable, "-c", ATTACKER, host, str(port), *plan], cwd=ROOT, timeout=60.0)
    child.wait_line("READY", timeout=60.0)
    return child


def rss_kb(pid: int) -> int:
    """The resident set size of process ``pid`` in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def start_child(argv: list[str]) -> ChildProcess:
    """``argv`` as a child process with the tests' cookie and waits (close it after)."""
    return ChildProcess(argv, cookie=COOKIE, cwd=ROOT, timeout=WAIT)


def epmd_argv(address: str) -> list[str]:
    """A port mapper process on ``address`` (port 0: any free port), quiet."""
    return [sys.executable, "-m", "joerl.epmd", "--log-level", "warning", address]


def node_argv(name: str, epmd: str, role: str, *options: str, tick: float = 60.0) -> list[str]:
    return [sys.executable, str(NODE_MAIN), name, "--epmd", epmd, "--tick", str(tick), role, *options]


def wait_for(cond: Callable[[], Any], event: Event, timeout: float, what: str) -> Any:
    """Wait until ``cond()`` is true, re-checking whenever ``event`` is set."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{what}: not within {timeout}s")
        event.clear()
        event.wait(remaining)


class Stream:
    """Numbered messages ``("s", seq)`` from a process of ``node`` to the
    ``stream`` process of node ``peer``, and the books on them.

    The sender monitors the sink and the peer node. It keeps at most
    ``window`` messages unsettled (None: no limit); a message is settled once
    the sink acknowledged it or once the sender was told it may be lost.
    After a loss report it monitors the sink again before it sends more, so
    that a message lost to a failed reconnection is reported too (its
    ``Monitor`` fails with ``noconnection``); between reconnection attempts
    that fail at once it backs off (50 ms, doubling, at most 0.5 s), as an
    application would.

    Args:
        node: the test's node.
        peer: the ``serve`` node to stream to.
        total: how many messages to send (None: until :meth:`stop`).
        window: the most unsettled messages (None: no limit).
        batch: messages sent between two looks at the mailbox.
        stop_on_loss: send nothing more after the first loss report (for a
            peer that will not come back).
    """

    def __init__(
        self,
        node: DistributedSystem,
        peer: str,
        *,
        total: int | None = None,
        window: int | None = None,
        batch: int = 100,
        stop_on_loss: bool = False,
    ) -> None:
        self.node, self.peer = node, node_name(peer)  # name@host: what NodeUp and NodeDown name
        self.total, self.window, self.batch = total, window, batch
        self.stop_on_loss = stop_on_loss
        self.sent = 0  #: messages sent (the next seq)
        self.acked_hi = -1  #: the highest seq the sink acknowledged
        self.acked_received = 0  #: how many messages the sink had when it last acknowledged
        self.ack_violations = 0  #: order violations the sink reported in its acks
        self.acks_out_of_order = 0  #: acks that went backwards (must stay 0)
        self.acks: list[tuple[float, int]] = []  #: (time, highest seq acknowledged)
        self.reported: list[list[Any]] = []  #: [first, last, time, why]: ranges reported maybe lost
        self.reported_hi = -1
        self.node_downs: list[tuple[float, Any]] = []
        self.node_ups: list[float] = []
        self.downs: list[tuple[float, Any]] = []
        self.send_errors: list[str] = []  #: exceptions a send raised (a send should never raise)
        self.final: tuple[int, int, int, list[list[int]]] | None = None
        self.sink: Any = None
        self.changed = Event()
        self._stopping = False
        self._final_wanted = True
        self._mon: Any = None
        self._retry_at = 0.0
        self._delay = 0.0
        ready = Event()
        self._ready = ready
        self.ref = node.spawn_fn(self._run)
        if not ready.wait(WAIT):
            raise AssertionError(f"the stream to {peer} did not start: {self.ref}")

    # -- the test's side ---------------------------------------------------------

    def wait(self, cond: Callable[[Stream], Any], timeout: float = WAIT, what: str = "") -> Any:
        """Wait until ``cond(self)`` holds (re-checked on every ack and report)."""

        def check() -> Any:
            value = cond(self)
            if value or self.ref.is_alive():
                return value
            raise AssertionError(f"the stream's process died before {what or cond!r}")

        return wait_for(check, self.changed, timeout, what or "stream condition")

    def stop(self, final: bool = True, timeout: float = WAIT) -> None:
        """Stop sending; with ``final``, ask the sink for its account (:attr:`final`)."""
        self._final_wanted = final
        self._stopping = True
        self.node.system.send(self.ref.pid, ("stop",))
        if not self.ref.join(timeout):
            raise AssertionError("the stream did not stop")
        if final and self.final is None:
            raise AssertionError(f"the sink of {self.peer} gave no account within {timeout}s")

    # -- the books -----------------------------------------------------------------

    def missing(self) -> list[tuple[int, int]]:
        """The ranges of seqs the sink never got (needs :attr:`final`)."""
        assert self.final is not None
        _, highest, _, gaps = self.final
        out = [(a, b) for a, b in gaps]
        if highest < self.sent - 1:
            out.append((highest + 1, self.sent - 1))
        return out

    def unreported(self) -> int:
        """How many missing seqs fall in no reported range (must be 0)."""
        ranges = sorted((r[0], r[1]) for r in self.reported)
        count = 0
        for a, b in self.missing():
            seq = a
            while seq <= b:
                cover = next(((lo, hi) for lo, hi in ranges if lo <= seq <= hi), None)
                if cover is None:
                    nxt = min((lo for lo, _ in ranges if lo > seq), default=b + 1)
                    stop = min(b, nxt - 1)
                    count += stop - seq + 1
                    seq = stop + 1
                else:
                    seq = cover[1] + 1
        return count

    def reported_count(self) -> int:
        return sum(r[1] - r[0] + 1 for r in self.reported)

    def first_ack_after(self, t: float, above: int) -> float | None:
        """When the first ack after ``t`` acknowledged a seq above ``above``."""
        return next((at for at, hi in self.acks if at >= t and hi > above), None)

    # -- the sending process --------------------------------------------------------------

    def _run(self, ctx: ActorContext) -> None:
        node, peer = self.node, self.peer
        node.monitor_node(ctx.pid, peer)
        ctx.send(("stream", peer), ("hello",))
        _, self.sink = ctx.receive(match=lambda m: m.__class__ is tuple and m[0] == "hello", timeout=WAIT)
        self._mon = ctx.monitor(self.sink)
        self._ready.set()
        sink = self.sink
        send = ctx.send
        while not self._stopping:
            while ctx.mailbox_len:
                self._handle(ctx.receive(), ctx)
            if self._stopping:
                break
            if self.stop_on_loss and self.reported:
                self._take(ctx, None)
                continue
            now = time.monotonic()
            if self._mon is None:
                if now < self._retry_at:
                    self._take(ctx, self._retry_at - now)
                    continue
                self._mon = ctx.monitor(sink)
            room = self.batch
            if self.total is not None:
                room = min(room, self.total - self.sent)
            if self.window is not None:
                settled = max(self.acked_hi, self.reported_hi) + 1
                room = min(room, self.window - (self.sent - settled))
            if room <= 0:
                self._take(ctx, None)  # an ack, a report, or stop
                continue
            seq = self.sent
            try:
                for _ in range(room):
                    send(sink, ("s", seq))
                    seq += 1
            except ConnectionLost as exc:
                self.send_errors.append(f"{type(exc).__name__}: {exc}")
                seq += 1  # that one is gone too: the exception was its report
            finally:
                self.sent = seq
            gevent.idle()  # let the link's greenlets write and read
        if self._final_wanted:
            self._ask_final(ctx)

    def _take(self, ctx: ActorContext, timeout: float | None) -> None:
        try:
            msg = ctx.receive(timeout=WAIT * 2 if timeout is None else timeout)
        except ReceiveTimeout:
            return
        self._handle(msg, ctx)

    def _handle(self, msg: Any, ctx: ActorContext) -> None:
        now = time.monotonic()
        cls = msg.__class__
        if cls is tuple:
            tag = msg[0]
            if tag == "ack":
                _, hi, received, violations = msg
                if hi < self.acked_hi:
                    self.acks_out_of_order += 1
                elif hi > self.acked_hi:
                    self.acked_hi, self.acked_received = hi, received
                    self._delay = 0.0
                self.ack_violations = max(self.ack_violations, violations)
                self.acks.append((now, hi))
            elif tag == "sunk":
                self.final = (msg[1], msg[2], msg[3], [list(g) for g in msg[4]])
        elif cls is NodeDown:
            if msg.node == self.peer:
                self.node_downs.append((now, msg.reason))
                self._loss(now, "NodeDown")
        elif cls is NodeUp:
            if msg.node == self.peer:
                self.node_ups.append(now)
        elif cls is Down:
            if msg.ref == self._mon:
                self._mon = None
                self.downs.append((now, msg.reason))
                self._loss(now, f"Down({msg.reason})")
                self._retry_at = now + self._delay
                self._delay = min(0.5, self._delay * 2 or 0.05)
        self.changed.set()

    def _loss(self, now: float, why: str) -> None:
        first = max(self.acked_hi, self.reported_hi) + 1
        last = self.sent - 1
        if last >= first:
            self.reported.append([first, last, now, why])
            self.reported_hi = last

    def _ask_final(self, ctx: ActorContext) -> None:
        """The sink's account: received, highest, violations, gaps (asked again
        if a reconnection swallowed the question)."""
        deadline = time.monotonic() + WAIT
        while self.final is None and time.monotonic() < deadline:
            if self._mon is None:
                self._mon = ctx.monitor(self.sink)
            ctx.send(self.sink, ("end",))
            try:
                msg = ctx.receive(match=lambda m: m.__class__ is tuple and m[0] == "sunk", timeout=5.0)
            except ReceiveTimeout:
                continue
            self._handle(msg, ctx)
        while ctx.mailbox_len:
            self._handle(ctx.receive(), ctx)
