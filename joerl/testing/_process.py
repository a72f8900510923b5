"""A program (a node, a port mapper, an example) run as a child process of a test.

:class:`ChildProcess` starts it, reads its standard output line by line in a
greenlet, waits for a line (``READY port=N``) with a deadline, and kills and
reaps it at the end, so that a test leaves no process and no zombie behind.
:func:`child_env` is the environment a child node gets; :func:`fields` parses
a ``READY`` line. :func:`stdin_lines` is the child's side of
:meth:`ChildProcess.write_line`: the lines of its standard input, read
without blocking the hub.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import gevent
from gevent import subprocess
from gevent.os import make_nonblocking, nb_read
from gevent.queue import Empty, Queue

#: Where this joerl package lives: children find it first on their ``PYTHONPATH``.
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])

#: What :meth:`ChildProcess.wait_line` looks for: a prefix, or a predicate on the line.
LineMatch = str | Callable[[str], bool]


def child_env(cookie: str | None = None) -> dict[str, str]:
    """The environment for a child node.

    This process's environment, with ``$JOERL_COOKIE`` set to ``cookie`` (if
    given), the directory of this joerl package first on ``$PYTHONPATH`` (a
    child imports the same joerl, installed or not) and no
    ``$JOERL_EPMD_ADDRESS`` (pass the port mapper explicitly).

    Args:
        cookie: the cookie the child's node uses.

    Returns:
        A new dict.

    Example::

        subprocess.run([sys.executable, "-m", "joerl", "demo"], env=child_env("secret"))
    """
    from ..node.config import COOKIE_ENV, EPMD_ENV

    env = dict(os.environ)
    if cookie is not None:
        env[COOKIE_ENV] = cookie
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))
    env.pop(EPMD_ENV, None)
    return env


def fields(line: str) -> dict[str, str]:
    """The ``key=value`` words after a line's first word.

    Args:
        line: e.g. ``"READY port=4370 node=a"``.

    Returns:
        e.g. ``{"port": "4370", "node": "a"}``.

    Example::

        port = int(fields(child.wait_line("READY"))["port"])
    """
    return dict(word.split("=", 1) for word in line.split()[1:] if "=" in word)


def stdin_lines(fd: int | None = None) -> Iterator[str]:
    """The lines of standard input (or of ``fd``), until it closes, read cooperatively.

    For a child program a test drives with :meth:`ChildProcess.write_line`:
    only the greenlet that iterates waits for input; the hub, and the
    child's actors and links, run meanwhile (``for line in sys.stdin``
    would block them all). The file descriptor is made non-blocking.

    Args:
        fd: the file descriptor to read (default: standard input's).

    Yields:
        Each line, decoded as UTF-8 (an undecodable byte replaced), without
        its newline; at the end, a last line that has none.

    Example::

        print(f"READY node={node.node_name}", flush=True)
        for line in stdin_lines():  # the test's commands, until it closes our input
            if line == "nodes":
                print("NODES " + ",".join(node.nodes()), flush=True)
        node.shutdown()
    """
    fd = sys.stdin.fileno() if fd is None else fd
    make_nonblocking(fd)
    pending = b""
    while data := nb_read(fd, 65536):
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


class ChildProcess:
    """A child process whose standard output a greenlet reads line by line.

    Its standard input is a pipe (:meth:`write_line`) or ``/dev/null``; its
    standard error goes to a temporary file (so a chatty child never blocks
    on a full pipe; :meth:`stderr` reads it). Use it as a context manager,
    or call :meth:`close`, to kill and reap it; :meth:`terminate` asks it to
    stop first.

    Args:
        argv: the program and its arguments.
        cookie: the cookie a node child uses (see :func:`child_env`).
        env: the whole environment instead (default: ``child_env(cookie)``).
        cwd: the working directory (default: this process's).
        timeout: the default deadline, in seconds, of every wait.
        stdin: give it a pipe to read (True) or ``/dev/null`` (False).

    Attributes:
        proc: the ``gevent.subprocess.Popen``.
        pid: its process id.
        lines: every line of its standard output so far.
        ready: the fields of its ``READY`` line, once :meth:`wait_ready` saw it.

    Example::

        with ChildProcess([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"]) as epmd:
            port = int(epmd.wait_ready()["port"])
            ...
        # killed and reaped here
    """

    def __init__(
        self,
        argv: list[str],
        *,
        cookie: str | None = None,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
        stdin: bool = True,
    ) -> None:
        self.argv = argv
        self.timeout = timeout
        self._err: IO[bytes] = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            env=child_env(cookie) if env is None else env,
            cwd=cwd,
        )
        self.pid: int = self.proc.pid
        self.lines: list[str] = []
        self._err_text: str | None = None  # what stderr() returns once closed
        self.ready: dict[str, str] = {}
        self._queue: Queue = Queue()
        self._reader = gevent.spawn(self._read)

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ChildProcess {' '.join(self.argv[1:4])} pid={self.pid}>"

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def wait_line(self, match: LineMatch, timeout: float | None = None) -> str:
        """The next line that starts with ``match`` (or for which ``match(line)``
        is true); the lines before it are skipped (they stay in :attr:`lines`).

        Args:
            match: a prefix, or a predicate on a line.
            timeout: seconds to wait (default: the constructor's).

        Returns:
            The line, without its newline.

        Raises:
            AssertionError: no such line within ``timeout`` seconds, or the
                child closed its output first (the message holds its output
                and its standard error).

        Example::

            child.wait_line("FLOOD_READY")
            child.wait_line(lambda line: "joined" in line)
        """
        timeout = self.timeout if timeout is None else timeout
        test = match if callable(match) else (lambda line: line.startswith(match))
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(
                    f"{self}: no line {match!r} within {timeout}s; output: {self.lines}\n{self.stderr()}"
                ) from None
            if line is None:
                self._queue.put(None)
                try:
                    status = f"exited ({self.proc.wait(timeout=min(1.0, timeout))})"
                except subprocess.TimeoutExpired:
                    status = "closed its output"
                raise AssertionError(f"{self}: {status} before {match!r}; output: {self.lines}\n{self.stderr()}")
            if test(line):
                return str(line)

    def wait_ready(self, timeout: float | None = None) -> dict[str, str]:
        """Wait for the ``READY key=value ...`` line joerl's daemons print.

        Args:
            timeout: seconds to wait (default: the constructor's).

        Returns:
            Its :func:`fields` (also kept in :attr:`ready`), e.g. ``{"port": "4370"}``.

        Raises:
            AssertionError: as :meth:`wait_line`.

        Example::

            port = int(ChildProcess(argv).wait_ready()["port"])
        """
        self.ready = fields(self.wait_line("READY", timeout))
        return self.ready

    def write_line(self, text: str) -> None:
        """Write ``text`` and a newline to its standard input.

        Raises:
            ValueError: it was started with ``stdin=False``.
            OSError: it closed its input (it exited).
        """
        if self.proc.stdin is None:
            raise ValueError(f"{self} has no standard input pipe")
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to exit and its output to be read.

        Args:
            timeout: seconds to wait (default: the constructor's).

        Returns:
            Its exit status (negative: the signal that killed it).

        Raises:
            subprocess.TimeoutExpired: it still runs after ``timeout``.
        """
        timeout = self.timeout if timeout is None else timeout
        code = int(self.proc.wait(timeout=timeout))
        self._reader.join(timeout)
        return code

    def stderr(self, limit: int = 20000) -> str:
        """The last ``limit`` bytes of its standard error so far, decoded (also after :meth:`close`)."""
        if self._err_text is not None:
            return self._err_text[-limit:]
        self._err.seek(0)
        return self._err.read()[-limit:].decode("utf-8", "replace")

    def alive(self) -> bool:
        """True while it runs (it has not exited, or not been reaped)."""
        return self.proc.poll() is None

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to it, if it still runs (``SIGSTOP`` freezes it, ``SIGCONT`` thaws it)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signum)
            except ProcessLookupError:  # it just exited
                pass

    def terminate(self, timeout: float | None = None, signum: int = signal.SIGTERM) -> int:
        """Ask it to stop (``signum``), kill it if it has not within ``timeout``, reap it.

        Args:
            timeout: seconds it has to exit (default: the constructor's).
            signum: the signal that asks (a frozen child is thawed first).

        Returns:
            Its exit status (``-signum``, or ``-9`` when it had to be killed).

        Example::

            assert node.terminate(5.0) == -signal.SIGTERM
        """
        self.send_signal(signal.SIGCONT)
        self.send_signal(signum)
        try:
            self.proc.wait(timeout=self.timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            pass
        self.close()
        return int(self.proc.returncode)

    def close(self) -> None:
        """Kill it (SIGKILL, if still running), reap it and close the pipes (idempotent)."""
        if self.proc.poll() is None:
            self.send_signal(signal.SIGCONT)  # a stopped process dies of SIGKILL too; be tidy
            try:
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
        if self._err_text is None:
            self._err_text = self.stderr(limit=1 << 20)
            self._err.close()


class ProcessGroup:
    """The child processes of one test: each started through it is killed and
    reaped by :meth:`close` (last started, first closed).

    Args:
        **defaults: keyword arguments of every :class:`ChildProcess` it starts
            (``cookie``, ``env``, ``cwd``, ``timeout``, ``stdin``).

    Example::

        with ProcessGroup(cookie="secret", timeout=30.0) as group:
            epmd = group.start([sys.executable, "-m", "joerl.epmd", "127.0.0.1:0"])
            port = int(epmd.wait_ready()["port"])
        # every child killed and reaped here

    A pytest fixture::

        @pytest.fixture
        def children() -> Iterator[ProcessGroup]:
            with ProcessGroup(cookie=COOKIE) as group:
                yield group
    """

    def __init__(self, **defaults: Any) -> None:
        self.defaults = defaults
        self.children: list[ChildProcess] = []

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, argv: list[str], **options: Any) -> ChildProcess:
        """Start ``argv`` as a :class:`ChildProcess` of this group.

        Args:
            argv: the program and its arguments.
            **options: keyword arguments of :class:`ChildProcess`, over the group's.

        Returns:
            The child, running (not waited for).
        """
        child = ChildProcess(argv, **{**self.defaults, **options})
        self.children.append(child)
        return child

    def close(self) -> None:
        """Kill and reap every child (idempotent), the last started first."""
        while self.children:
            self.children.pop().close()
