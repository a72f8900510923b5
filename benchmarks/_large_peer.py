"""The helper processes of ``bench_large.py``: ``python -m benchmarks._large_peer MODE ...``.

As ``_dist_peer.py``: each prints ``READY`` (``READY port=N``), takes commands
on standard input and answers a measuring command with one JSON line
``{"seconds": S, "n": N, ...}`` timed inside the process.

* ``raw-server`` / ``raw-client PORT``: plain gevent TCP. The client's
  ``big SIZE N`` writes N frames ``Len:32 | SIZE bytes`` with one ``sendall``
  each (the bytes made once, up front), the server reads each whole frame
  into one buffer and answers a 4-byte ack; the client waits for each ack.
* ``rx NAME [--compress CODECS]`` / ``tx NAME RX [--compress CODECS]``: two
  joerl nodes. ``rx`` runs ``sink`` (answers ``("ack", size)`` to every
  message) and ``echo``. ``tx``'s commands: ``big SIZE N`` (an actor sends
  ``("blob", bytes)`` of SIZE bytes N times, waiting for each ack),
  ``doc SIZE N`` (the same with a JSON-like nested dict of about SIZE bytes:
  the serialization codec's road, and compressible), ``bystand SIZE`` (one
  big message while another actor keeps doing ping-pong with ``echo``: the
  answer has the round trips' times before and during the transfer).
  Every answer carries ``bytes_out``, the link's bytes written during it.
  The message of ``big`` and ``doc`` is made by the first command of its
  kind and size and kept for the next ones (the one before it dropped
  first): a sample's memory is what sending costs, not making the message.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from typing import Any

from gevent import socket

from ._dist_peer import commands, say

_LEN = struct.Struct(">I")


def document(size: int) -> dict[str, Any]:
    """A JSON-like nested dict of about ``size`` bytes of msgpack: records of
    names, tags and numbers, as an API's answer looks (compresses about 10x)."""
    records = []
    i = 0
    while len(records) * 96 < size:
        records.append({"id": i, "user": f"user-{i % 997}", "tags": ["red", "green", "blue"][: i % 3 + 1],
                        "score": (i * 7919) % 1000, "active": i % 2 == 0, "city": ("Oslo", "Lima", "Pune")[i % 3]})  # fmt: skip
        i += 1
    return {"kind": "page", "records": records}


def recv_exactly(sock: Any, view: memoryview) -> bool:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if not n:
            return False
        got += n
    return True


def raw_server() -> None:
    from gevent.server import StreamServer

    def handle(sock: Any, _addr: Any) -> None:
        head = bytearray(4)
        while recv_exactly(sock, memoryview(head)):
            (size,) = _LEN.unpack(head)
            body = bytearray(size)
            if not recv_exactly(sock, memoryview(body)):
                return
            sock.sendall(_LEN.pack(size))

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    say(f"READY port={server.server_port}")
    for _ in commands():
        pass
    server.stop()


def raw_client(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    say("READY")
    ack = bytearray(4)
    for words in commands():
        size, n = int(words[1]), int(words[2])
        blob = b"x" * size
        t0 = time.perf_counter()
        for _ in range(n):
            sock.sendall(_LEN.pack(size) + blob)  # (one copy, as a frame is built)
            recv_exactly(sock, memoryview(ack))
        say(json.dumps({"seconds": time.perf_counter() - t0, "n": n, "bytes_out": n * (size + 4)}))
    sock.close()


def start_node(args: argparse.Namespace) -> Any:
    from joerl.node.config import LinkConfig
    from joerl.node.node import DistributedSystem

    codecs = tuple(c for c in args.compress.split(",") if c)
    config = LinkConfig(compression=codecs)
    return DistributedSystem(args.name, "127.0.0.1:0", args.epmd, start_epmd=False, link_config=config)


def node_rx(args: argparse.Namespace) -> None:
    node = start_node(args)
    system = node.system

    def sink(ctx: Any) -> None:
        while True:
            msg = ctx.receive()
            size = len(msg[1]) if msg.__class__ is tuple else len(msg["records"])
            del msg  # (not kept while the next one arrives: a sample's memory is what receiving it costs)
            ctx.send(ctx.sender, ("ack", size))

    def echo(ctx: Any) -> None:
        while True:
            msg = ctx.receive()
            ctx.send(ctx.sender, msg)

    system.register("sink", system.spawn_fn(sink).pid)
    system.register("echo", system.spawn_fn(echo).pid)
    say(f"READY port={node.listen_port}")
    for _ in commands():
        pass
    node.shutdown()


def node_tx(args: argparse.Namespace) -> None:
    from gevent.event import AsyncResult, Event

    node = start_node(args)
    system = node.system
    sink, echo = ("sink", args.rx), ("echo", args.rx)

    def in_actor(body: Any, *a: Any) -> Any:
        done: AsyncResult = AsyncResult()

        def run(ctx: Any) -> None:
            try:
                done.set(body(ctx, *a))
            except BaseException as exc:
                done.set_exception(exc)
                raise

        system.spawn_fn(run)
        return done.get(timeout=600)

    def link() -> Any:
        return next(peer.link for peer in node._peers if peer.link is not None)

    def sends(ctx: Any, msg: Any, n: int) -> None:
        for _ in range(n):
            ctx.send(sink, msg)
            if ctx.receive(timeout=300)[0] != "ack":
                raise RuntimeError("the sink did not acknowledge")

    def pinger(ctx: Any, stop: Event, rtts: list[float], most: int, done: Event) -> None:
        while not stop.is_set() and len(rtts) < most:
            t0 = time.perf_counter()
            ctx.send(echo, ("ping",))
            ctx.receive(timeout=300)
            rtts.append(time.perf_counter() - t0)
        done.set()

    in_actor(sends, ("blob", b"warm"), 1)  # the link is up before anything is timed
    made: dict[tuple[str, int], Any] = {}  # the message of the last big/doc command

    def message(cmd: str, size: int) -> Any:
        if (cmd, size) not in made:
            made.clear()  # (before the next is made)
            made[cmd, size] = ("blob", b"x" * size) if cmd == "big" else document(size)
        return made[cmd, size]

    say("READY")
    for words in commands():
        cmd, size = words[0], int(words[1])
        out0 = link().stats.bytes_out
        answer: dict[str, Any]
        if cmd in ("big", "doc"):
            n = int(words[2])
            msg = message(cmd, size)
            t0 = time.perf_counter()
            in_actor(sends, msg, n)
            answer = {"seconds": time.perf_counter() - t0, "n": n}
        else:  # bystand
            msg = message("big", size)
            idle: list[float] = []
            during: list[float] = []
            stop, done = Event(), Event()
            system.spawn_fn(pinger, stop, idle, 200, done)  # round trips on the idle link
            done.wait(60)
            stop, done = Event(), Event()
            system.spawn_fn(pinger, stop, during, 10**9, done)  # and during the transfer
            t0 = time.perf_counter()
            in_actor(sends, msg, 1)
            seconds = time.perf_counter() - t0
            stop.set()
            done.wait(60)  # (its last round trip may have waited behind the big frame)
            answer = {"seconds": seconds, "n": 1, "rtt_idle_ms": statistics.median(idle) * 1000,
                      "rtt_max_ms": max(during) * 1000, "rtt_during": len(during)}  # fmt: skip
        answer["bytes_out"] = link().stats.bytes_out - out0
        say(json.dumps(answer))
    node.shutdown()


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks._large_peer")
    sub = ap.add_subparsers(dest="mode", required=True)
    sub.add_parser("raw-server")
    sub.add_parser("raw-client").add_argument("port", type=int)
    for mode in ("rx", "tx"):
        p = sub.add_parser(mode)
        p.add_argument("name")
        if mode == "tx":
            p.add_argument("rx")
        p.add_argument("--epmd", required=True)
        p.add_argument("--compress", default="")
    args = ap.parse_args(argv)
    if args.mode == "raw-server":
        raw_server()
    elif args.mode == "raw-client":
        raw_client(args.port)
    elif args.mode == "rx":
        node_rx(args)
    else:
        node_tx(args)


if __name__ == "__main__":
    main(sys.argv[1:])
