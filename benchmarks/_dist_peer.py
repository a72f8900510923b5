"""The helper processes of ``bench_dist.py``: ``python -m benchmarks._dist_peer MODE ...``.

Each runs as its own OS process. It prints ``READY port=N`` (or ``READY``)
once it serves, takes commands on standard input, one a line, and answers
each measuring command with one JSON line ``{"seconds": S, "n": N}`` timed
inside the process. End of input stops it cleanly. With
``$JOERL_BENCH_PROFILE`` set to a directory, a process runs under cProfile and
writes ``DIR/MODE-NAME.prof`` as it stops. With ``$JOERL_BENCH_COUNT`` set,
it counts greenlet switches (``"switches"`` in each answer, the total on
standard error as it ends).

Modes (the Erlang counterparts are in ``dist_peer.erl``):

* ``raw-server`` / ``raw-client PORT NAIVE_PORT``: the baseline, plain gevent
  TCP with 4-byte length + msgpack frames. The client's commands: ``oneway N``
  (one ``sendall`` per frame), ``batch N`` (100 frames per ``sendall``),
  ``rr N`` (request, wait for the response), and ``batch-naive N`` (batches
  to the server's second port, whose reader makes two ``recv`` calls per
  frame: header, then body). The server's readers otherwise take whatever
  one ``recv`` gives (up to 256 KiB) and cut every whole frame out of it.
* ``rx NAME`` / ``tx NAME RX_NAME``: two joerl nodes. ``rx`` runs a sink
  actor, an echo actor and an echo GenServer, registered as ``sink``,
  ``echo``, ``server``. ``tx``'s commands: ``oneway N`` (an actor sends
  ``("ping", i)`` N times to the remote sink, then ``("end",)``; the sink
  answers ``("ack", count)``), ``oneway-dict N`` (the same with
  ``{"ping": i}``, a flat dict: a plain term too, with FLAG_TERM_MAPS), ``pingpong N`` (an actor sends and waits for
  each echo), ``call N`` (``system.call(remote_pid, i)`` from plain code) and
  ``lcall N`` (the same to a GenServer of the tx node itself).
* ``watcher NAME`` / ``victim NAME``: node-down detection. The watcher's
  command ``watch NODE`` connects to NODE and monitors it (``monitor_node``), printing
  ``UP NODE`` (or ``FAIL NODE reason``); on ``NodeDown`` it prints
  ``DOWN NODE t=UNIX_SECONDS``. A victim prints ``DOWN NODE`` when it loses a
  peer (so that the benchmark knows it may reconnect).

Node modes take ``--epmd HOST:PORT`` and ``--tick SECONDS``; the cookie comes
from ``$JOERL_COOKIE``.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent import socket
from gevent.fileobject import FileObjectPosix

BATCH = 100
RECV = 256 * 1024
_LEN = struct.Struct(">I")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def commands() -> Iterator[list[str]]:
    """Lines of standard input, split, read cooperatively (the node keeps running)."""
    stdin = FileObjectPosix(sys.stdin.fileno(), "rb", close=False)
    for line in stdin:
        words = line.decode().split()
        if words:
            yield words


#: Greenlet switches so far, counted when ``$JOERL_BENCH_COUNT`` is set (see ``main``).
SWITCHES = [0]


def _count_switch(event: str, args: Any) -> None:
    SWITCHES[0] += 1


def timed(fn: Callable[[int], Any], n: int) -> None:
    s0 = SWITCHES[0]
    t0 = time.perf_counter()
    fn(n)
    say(json.dumps({"seconds": time.perf_counter() - t0, "n": n, "switches": SWITCHES[0] - s0}))


# -- raw gevent TCP --------------------------------------------------------------


class Frames:
    """Reads 4-byte length + msgpack frames from a socket."""

    def __init__(self, sock: Any) -> None:
        import msgpack

        self.sock = sock
        self.unpackb = msgpack.unpackb
        self.buf = b""
        self.pos = 0

    def messages(self) -> list[Any]:
        """The whole frames of the next reads: at least one (none at end of stream)."""
        unpack_from, unpackb = _LEN.unpack_from, self.unpackb
        out: list[Any] = []
        while not out:
            data = self.sock.recv(RECV)
            if not data:
                return []
            buf = self.buf[self.pos :] + data if self.pos < len(self.buf) else data
            pos, end = 0, len(buf)
            while end - pos >= 4:
                (size,) = unpack_from(buf, pos)
                if end - pos - 4 < size:
                    break
                out.append(unpackb(buf[pos + 4 : pos + 4 + size]))
                pos += 4 + size
            self.buf, self.pos = buf, pos
        return out


def frame(packb: Callable[[Any], bytes], msg: Any) -> bytes:
    body = packb(msg)
    return _LEN.pack(len(body)) + body


def raw_server() -> None:
    import msgpack
    from gevent.server import StreamServer

    packb = msgpack.packb

    def handle(sock: Any, _address: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frames = Frames(sock)
        count = 0
        while True:
            msgs = frames.messages()
            if not msgs:
                return
            out = []
            for msg in msgs:
                tag = msg[0]
                if tag == "ping":
                    count += 1
                elif tag == "req":
                    out.append(frame(packb, msg))
                elif tag == "end":
                    out.append(frame(packb, ["ack", count]))
                    count = 0
            if out:
                sock.sendall(out[0] if len(out) == 1 else b"".join(out))

    def handle_frame_by_frame(sock: Any, _address: Any) -> None:
        """The naive reader: recv the 4-byte header, then recv the body, for every frame."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        unpackb = msgpack.unpackb
        count = 0

        def recv_exactly(size: int) -> bytes:
            data = sock.recv(size)
            while len(data) < size:
                more = sock.recv(size - len(data))
                if not more:
                    raise EOFError
                data += more
            return data

        try:
            while True:
                header = recv_exactly(4)
                msg = unpackb(recv_exactly(_LEN.unpack(header)[0]))
                if msg[0] == "ping":
                    count += 1
                elif msg[0] == "end":
                    sock.sendall(frame(packb, ["ack", count]))
                    count = 0
        except EOFError:
            return

    server = StreamServer(("127.0.0.1", 0), handle)
    naive = StreamServer(("127.0.0.1", 0), handle_frame_by_frame)
    server.start()
    naive.start()
    say(f"READY port={server.server_port} naive_port={naive.server_port}")
    for _ in commands():
        pass
    server.stop(timeout=1)
    naive.stop(timeout=1)


class RawLink:
    """The client's end of one raw connection."""

    def __init__(self, port: int) -> None:
        import msgpack

        self.packb = msgpack.packb
        self.sock = sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frames = Frames(sock)
        self.pending: list[Any] = []

    def next_message(self) -> Any:
        while not self.pending:
            msgs = self.frames.messages()
            if not msgs:
                raise ConnectionError("the raw server closed the connection")
            self.pending.extend(msgs)
        return self.pending.pop(0)

    def finish(self, n: int) -> None:
        self.sock.sendall(frame(self.packb, ["end"]))
        ack = self.next_message()
        if ack != ["ack", n]:
            raise RuntimeError(f"raw server acknowledged {ack!r}, expected {n}")

    def oneway(self, n: int) -> None:
        sendall, packb, pack = self.sock.sendall, self.packb, _LEN.pack
        for i in range(n):
            body = packb(["ping", i])
            sendall(pack(len(body)) + body)
        self.finish(n)

    def batch(self, n: int) -> None:
        sendall, packb, pack = self.sock.sendall, self.packb, _LEN.pack
        out = []
        for i in range(n):
            body = packb(["ping", i])
            out.append(pack(len(body)) + body)
            if len(out) == BATCH:
                sendall(b"".join(out))
                out = []
        if out:
            sendall(b"".join(out))
        self.finish(n)

    def rr(self, n: int) -> None:
        sendall, packb, pack, next_message = self.sock.sendall, self.packb, _LEN.pack, self.next_message
        for i in range(n):
            body = packb(["req", i])
            sendall(pack(len(body)) + body)
            if next_message()[1] != i:
                raise RuntimeError(f"request {i} got another answer")


def raw_client(port: int, naive_port: int) -> None:
    link, naive = RawLink(port), RawLink(naive_port)
    ops = {"oneway": link.oneway, "batch": link.batch, "rr": link.rr, "batch-naive": naive.batch}
    say("READY")
    for words in commands():
        timed(ops[words[0]], int(words[1]))
    link.sock.close()
    naive.sock.close()


# -- joerl nodes ------------------------------------------------------------------


def start_node(args: argparse.Namespace) -> Any:
    from joerl.node.node import DistributedSystem

    return DistributedSystem(args.name, "127.0.0.1:0", args.epmd, start_epmd=False, tick_time=args.tick)


def echo_server_class() -> Any:
    from joerl import gen_server

    class Echo(gen_server.GenServer):
        def init(self, args: Any) -> Any:
            return None

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            if request == "pid":
                return gen_server.Reply(self.ctx.pid, state)
            return gen_server.Reply(request, state)

    return Echo


def node_rx(args: argparse.Namespace) -> None:
    from joerl import gen_server
    from joerl.actor import Actor

    node = start_node(args)
    system = node.system

    class Sink(Actor):
        count = 0

        def handle_message(self, msg: Any, ctx: Any) -> None:
            if msg.__class__ is dict:  # oneway-dict
                self.count += 1
                return
            tag = msg[0]
            if tag == "ping":
                self.count += 1
            elif tag == "end":
                ctx.send(ctx.sender, ("ack", self.count))
                self.count = 0
            elif tag == "hello":
                ctx.send(ctx.sender, ("here",))

    def echo(ctx: Any) -> None:
        receive, send = ctx.receive, ctx.send
        while True:
            msg = receive()
            send(ctx.sender, msg)

    system.register("sink", system.spawn(Sink()).pid)
    system.register("echo", system.spawn_fn(echo).pid)
    system.register("server", gen_server.start(system, echo_server_class()(), None).pid)
    say(f"READY port={node.listen_port}")
    for _ in commands():
        pass
    node.shutdown()


def node_tx(args: argparse.Namespace) -> None:
    from gevent.event import AsyncResult

    from joerl import gen_server

    node = start_node(args)
    system = node.system
    rx = args.rx

    def ask(ctx: Any, dest: Any, msg: Any, out: AsyncResult) -> None:
        ctx.send(dest, msg)
        ctx.receive(timeout=10)
        out.set(ctx.sender)

    def remote_pid(name: str, msg: Any) -> Any:
        out: AsyncResult = AsyncResult()
        system.spawn_fn(ask, (name, rx), msg, out)
        return out.get(timeout=15)

    sink = remote_pid("sink", ("hello",))
    echo = remote_pid("echo", ("hello",))
    server = system.call(("server", rx), "pid", 10)
    local = gen_server.start(system, echo_server_class()(), None).pid

    def in_actor(body: Callable[..., None], n: int) -> None:
        done: AsyncResult = AsyncResult()

        def run(ctx: Any) -> None:
            try:
                body(ctx, n)
                done.set(None)
            except BaseException as exc:
                done.set_exception(exc)
                raise

        system.spawn_fn(run)
        done.get(timeout=300)

    def oneway_body(ctx: Any, n: int, dicts: bool = False) -> None:
        send = ctx.send
        if dicts:  # a flat dict: a plain term too, in SEND_TERMS (two loops keep each tight)
            for i in range(n):
                send(sink, {"ping": i})
        else:
            for i in range(n):
                send(sink, ("ping", i))
        send(sink, ("end",))
        ack = ctx.receive(timeout=120)
        if ack != ("ack", n):
            raise RuntimeError(f"the sink acknowledged {ack!r}, expected {n}")

    def pingpong_body(ctx: Any, n: int) -> None:
        send, receive = ctx.send, ctx.receive
        for i in range(n):
            send(echo, ("ping", i))
            if receive(timeout=10) != ("ping", i):
                raise RuntimeError(f"the echo of ('ping', {i}) did not come back")

    def calls(pid: Any) -> Callable[[int], None]:
        call = system.call

        def run_calls(n: int) -> None:
            for i in range(n):
                if call(pid, i) != i:
                    raise RuntimeError(f"call {i} got another answer")

        return run_calls

    ops: dict[str, Callable[[int], None]] = {
        "oneway": lambda n: in_actor(oneway_body, n),
        "oneway-dict": lambda n: in_actor(lambda ctx, n: oneway_body(ctx, n, dicts=True), n),
        "pingpong": lambda n: in_actor(pingpong_body, n),
        "call": calls(server),
        "lcall": calls(local),
    }
    say("READY")
    for words in commands():
        timed(ops[words[0]], int(words[1]))
    node.shutdown()


def node_watcher(args: argparse.Namespace) -> None:
    from joerl.errors import NodeUnreachable
    from joerl.message import NodeDown

    node = start_node(args)
    system = node.system

    def mon(ctx: Any) -> None:
        while True:
            msg = ctx.receive()
            if msg.__class__ is NodeDown:
                say(f"DOWN {msg.node} t={time.time():.6f}")

    watcher = system.spawn_fn(mon).pid

    def watch(name: str) -> None:
        try:
            node.connect_to_node(name, timeout=10)
        except NodeUnreachable as exc:
            say(f"FAIL {name} {exc}")
            return
        node.monitor_node(watcher, name)
        say(f"UP {name}")

    say(f"READY port={node.listen_port}")
    for words in commands():
        if words[0] == "watch":
            gevent.spawn(watch, words[1])
    node.shutdown()


def node_victim(args: argparse.Namespace) -> None:
    from joerl.message import NodeDown

    node = start_node(args)
    system = node.system

    def mon(ctx: Any) -> None:
        while True:
            msg = ctx.receive()
            if msg.__class__ is NodeDown:
                say(f"DOWN {msg.node}")

    node.monitor_nodes(system.spawn_fn(mon).pid)
    say(f"READY port={node.listen_port}")
    for _ in commands():
        pass
    node.shutdown()


# -- the command line -----------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks._dist_peer")
    sub = ap.add_subparsers(dest="mode", required=True)
    sub.add_parser("raw-server")
    client = sub.add_parser("raw-client")
    client.add_argument("port", type=int)
    client.add_argument("naive_port", type=int)
    for mode in ("rx", "tx", "watcher", "victim"):
        p = sub.add_parser(mode)
        p.add_argument("name")
        if mode == "tx":
            p.add_argument("rx")
        p.add_argument("--epmd", required=True)
        p.add_argument("--tick", type=float, default=60.0)
    return ap.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    modes: dict[str, Callable[[], None]] = {
        "raw-server": raw_server,
        "raw-client": lambda: raw_client(args.port, args.naive_port),
        "rx": lambda: node_rx(args),
        "tx": lambda: node_tx(args),
        "watcher": lambda: node_watcher(args),
        "victim": lambda: node_victim(args),
    }
    run = modes[args.mode]
    if os.environ.get("JOERL_BENCH_COUNT"):  # count greenlet switches: the total goes to stderr at the end
        import atexit

        import greenlet

        greenlet.settrace(_count_switch)
        atexit.register(lambda: print(f"SWITCHES {SWITCHES[0]}", file=sys.stderr, flush=True))
    where = os.environ.get("JOERL_BENCH_PROFILE")
    if not where:
        run()
        return
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        run()
    finally:
        prof.disable()
        label = getattr(args, "name", None) or str(os.getpid())
        prof.dump_stats(os.path.join(where, f"{args.mode}-{label}.prof"))


if __name__ == "__main__":
    main(sys.argv[1:])
