"""A delaying TCP relay: the latency of a link between two simulated hosts.

Usage::

    python relay.py --delay-ms MS [--mark N]

Run in a host's namespace, behind an iptables rule of that namespace such as
``-t nat -A OUTPUT -p tcp -d OTHER -m mark ! --mark N -j REDIRECT --to-ports
PORT``: every connection the host opens to OTHER arrives here instead. The
relay asks the kernel where it was going (``SO_ORIGINAL_DST``), dials that
with the mark ``N`` on its socket (so the rule lets it through), and copies
bytes both ways, holding each chunk ``MS`` milliseconds after it was read
(order kept; the delay does not limit the throughput). A half-close is passed
on after the data before it.

Prints ``READY port=P`` once it listens; answers a ``stats`` line on standard
input with ``STATS connections=C chunks=K bytes=B``. Ends when standard input
closes.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

import gevent
from gevent import socket as gsocket
from gevent.queue import Queue
from gevent.server import StreamServer

from joerl.testing import stdin_lines

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
SO_MARK = 36  # asm-generic/socket.h

counts = {"connections": 0, "chunks": 0, "bytes": 0}


def original_destination(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


def pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
    """Copy ``src`` to ``dst``, each chunk ``delay`` seconds late."""
    queue: Queue = Queue()

    def write() -> None:
        while True:
            item = queue.get()
            if item is None:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                gevent.sleep(wait)  # the simulated latency
            try:
                dst.sendall(data)
            except OSError:
                src.close()
                return

    writer = gevent.spawn(write)
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            counts["chunks"] += 1
            counts["bytes"] += len(data)
            queue.put((time.monotonic() + delay, data))
    except OSError:
        pass
    queue.put(None)
    writer.join()


def handle(delay: float, mark: int) -> object:
    def serve(client: socket.socket, _address: object) -> None:
        counts["connections"] += 1
        try:
            host, port = original_destination(client)
            upstream = gsocket.socket()
            upstream.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
            # No Nagle here: the relay adds its delay, not a wait for ACKs.
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.connect((host, port))
        except OSError:
            client.close()
            return
        back = gevent.spawn(pump, upstream, client, delay)
        pump(client, upstream, delay)
        back.join()
        upstream.close()

    return serve


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="relay")
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--mark", type=int, default=0x6A)
    args = ap.parse_args(argv)
    server = StreamServer(("0.0.0.0", 0), handle(args.delay_ms / 1000.0, args.mark))
    server.start()
    print(f"READY port={server.server_port}", flush=True)
    for line in stdin_lines():
        if line.strip() == "stats":
            print("STATS " + " ".join(f"{k}={v}" for k, v in counts.items()), flush=True)
    server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
