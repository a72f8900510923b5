"""Helpers for testing code built on joerl (and for joerl's own tests).

* :func:`running_epmd` runs a port mapper in this process on a free loopback port.
* :func:`node_cluster` starts several nodes on it and shuts them down after.
* :func:`wait_until` polls a condition with a deadline, for the rare case
  where there is no event to wait on.
* :func:`free_port` finds a free loopback port (for subprocess daemons).
* :func:`live_greenlets` lists the greenlets still running (leak checks);
  :class:`FakeClock` is a clock a test moves by hand.
* :class:`ChildProcess` runs a program (a node, a port mapper) as a child
  process and reads its standard output line by line, so a test can wait for
  a line such as ``READY port=N``; :func:`child_env` is the environment it
  gets and :func:`fields` parses such a line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
from gevent import get_hub, subprocess
from gevent.queue import Empty, Queue

#: Where this joerl package lives: children find it first on their ``PYTHONPATH``.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[1])


class FakeClock:
    """A clock a test moves by hand: pass it where a ``clock`` (a callable
    returning seconds) is accepted, e.g. ``EpmdServer(clock=...)``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def live_greenlets(kind: type = gevent.Greenlet) -> set[Any]:
    """The greenlets of ``kind`` in this process that have not finished
    (``greenlet.greenlet`` to count the hub and raw greenlets too): take one
    set before a test and one after to find what it left running."""
    import gc

    return {o for o in gc.get_objects() if isinstance(o, kind) and not o.dead}


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port that was free a moment ago (bind to 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01, what: str = "") -> Any:
    """Poll ``cond()`` until it is truthy; return its value.

    Raises:
        TimeoutError: it stayed falsy for ``timeout`` seconds.
    """
    loop = get_hub().loop
    deadline = loop.now() + timeout
    while True:
        value = cond()
        if value:
            return value
        if loop.now() >= deadline:
            raise TimeoutError(f"condition {what or cond!r} not met within {timeout}s")
        gevent.sleep(interval)


@contextlib.contextmanager
def running_epmd(**options: Any) -> Iterator[str]:
    """Run a joerl port mapper on ``127.0.0.1:0`` in this process; yield its address."""
    from .epmd import EpmdServer

    server = EpmdServer("127.0.0.1:0", **options)
    server.start()
    try:
        yield f"127.0.0.1:{server.port}"
    finally:
        server.stop()


@contextlib.contextmanager
def node_cluster(
    *names: str, cookie: str = "joerl-test-cookie", tick_time: float = 60.0, **options: Any
) -> Iterator[list[Any]]:
    """Start a port mapper and one :class:`~joerl.node.node.DistributedSystem` per
    name, all in this process on loopback; shut everything down afterwards."""
    from .node.node import DistributedSystem

    with running_epmd() as epmd_address:
        nodes: list[Any] = []
        try:
            for name in names:
                nodes.append(
                    DistributedSystem(
                        name,
                        "127.0.0.1:0",
                        epmd_address,
                        cookie=cookie,
                        start_epmd=False,
                        tick_time=tick_time,
                        **options,
                    )
                )
            yield nodes
        finally:
            for node in reversed(nodes):
                node.shutdown()


def child_env(cookie: str | None = None) -> dict[str, str]:
    """The environment for a child node: this process's, with ``$JOERL_COOKIE``
    set to ``cookie`` (if given), the directory of this joerl package first
    on ``$PYTHONPATH`` (a child imports the same joerl, installed or not) and
    no ``$JOERL_EPMD_ADDRESS`` (pass the port mapper explicitly)."""
    from .node.config import COOKIE_ENV, EPMD_ENV

    env = dict(os.environ)
    if cookie is not None:
        env[COOKIE_ENV] = cookie
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))
    env.pop(EPMD_ENV, None)
    return env


def fields(line: str) -> dict[str, str]:
    """The ``key=value`` words after a line's first: ``"READY port=1 b=x"`` -> ``{"port": "1", "b": "x"}``."""
    return dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)


class ChildProcess:
    """A child process whose standard output a greenlet reads line by line.

    Its standard input is a pipe (:meth:`write_line`), its standard error
    goes to a temporary file (so a chatty child never blocks on a full pipe;
    :meth:`stderr` reads it). Use it as a context manager, or call
    :meth:`close`, to kill and reap it.

    Args:
        argv: the program and its arguments.
        cookie: the cookie a node child uses (see :func:`child_env`).
        env: the whole environment instead (default: ``child_env(cookie)``).
        cwd: the working directory (default: this process's).
        timeout: the default deadline, in seconds, of every wait.
    """

    def __init__(
        self,
        argv: list[str],
        *,
        cookie: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.argv = argv
        self.timeout = timeout
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=child_env(cookie) if env is None else env,
            cwd=cwd,
        )
        self.pid: int = self.proc.pid
        self.lines: list[str] = []  #: every line of standard output so far
        self.ready: dict[str, str] = {}  #: the fields of the READY line (:meth:`wait_ready`)
        self._queue: Queue = Queue()
        self._reader = gevent.spawn(self._read)

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_line(self, prefix: str, timeout: float | None = None) -> str:
        """The next line starting with ``prefix`` (other lines before it are skipped).

        Raises:
            AssertionError: no such line within ``timeout`` seconds, or the
                child closed its output first (the message holds its output).
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(f"{self}: no line {prefix!r} within {timeout}s; output: {self.lines}") from None
            if line is None:
                self._queue.put(None)
                raise AssertionError(
                    f"{self}: exited ({self.proc.wait()}) before {prefix!r}; output: {self.lines}\n{self.stderr()}"
                )
            if line.startswith(prefix):
                return line

    def wait_ready(self, timeout: float | None = None) -> dict[str, str]:
        """Wait for the ``READY ...`` line joerl's daemons print; its :func:`fields`."""
        self.ready = fields(self.wait_line("READY", timeout))
        return self.ready

    def write_line(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit (and its output to be read); its exit status."""
        timeout = self.timeout if timeout is None else timeout
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def stderr(self, limit: int = 20000) -> str:
        """The last ``limit`` bytes of its standard error so far."""
        self._err.seek(0)
        return self._err.read()[-limit:].decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Kill it (SIGKILL, if still running) and reap it; close the pipes."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)  # a stopped process dies of SIGKILL too; be tidy
                self.proc.kill()
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=self.timeout)
        self._reader.join(self.timeout)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:  # a broken stdin pipe
                    pass
        self._err.close()

    def __repr__(self) -> str:
        return f"<ChildProcess {' '.join(self.argv[1:4])} pid={self.pid}>"
