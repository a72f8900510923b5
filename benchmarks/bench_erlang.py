"""Erlang interop benchmarks (issue 18): a joerl node and Erlang nodes speaking Erlang's distribution.

Three nodes find each other through one private port mapper (``bench_dist``'s
``Cluster``): the Erlang node ``rx`` (``dist_peer:rx()``: a sink, an echo and a
gen_server ``server``), the Erlang node ``txe`` (``dist_peer:tx(rx)``) and
``pyrx``, a joerl node with ``erlang=True`` in this process, with the same
three processes as ``rx`` (and an rpc handler ``erlang:whereis``, which
``dist_peer:tx`` uses to find them). A second Erlang sender, ``txp``, runs
``dist_peer:tx(pyrx)``. The contestants take turns:

* ``one-way``: N ``{ping, I}`` to a sink, then an ack: Erlang -> joerl
  (``txp`` -> ``pyrx``) and joerl -> Erlang (a joerl process of ``pyrx`` ->
  ``rx``'s sink), each beside Erlang -> Erlang (``txe`` -> ``rx``).
* ``call``: N ``gen_server:call`` round trips: Erlang -> joerl (``txp`` ->
  ``pyrx``'s GenServer) and joerl -> Erlang (``pyrx``'s ``call`` ->
  ``rx``'s gen_server), each beside Erlang -> Erlang.

No targets: the figures and ratios are reported. Needs ``erl`` and ``erlc``
(else no rows).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from joerl import gen_server, rpc
from joerl.erlang import Atom
from joerl.gen_server import GenServer, Reply
from joerl.testing import Probe

from .bench_dist import Cluster
from .harness import Figure, Row

PING, END, ACK, HELLO, HERE = (Atom(a) for a in ("ping", "end", "ack", "hello", "here"))


@dataclass(frozen=True)
class Params:
    repeats: int
    one_way_n: int
    call_n: int

    @classmethod
    def for_mode(cls, quick: bool) -> Params:
        return cls(3, 20_000, 2_000) if quick else cls(5, 50_000, 5_000)


class _Server(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request)


def _sink(ctx: Any) -> None:
    count = 0
    while True:
        msg = ctx.receive()
        tag = msg[0]
        if tag == PING:
            count += 1
        elif tag == END:
            ctx.send(msg[1], (ACK, count))
            count = 0
        elif tag == HELLO:
            ctx.send(msg[1], (HERE, ctx.pid))


def _echo(ctx: Any) -> None:
    while True:
        sender, msg = ctx.receive()
        ctx.send(sender, msg)


def _node(cluster: Cluster) -> Any:
    """``pyrx@127.0.0.1``: the joerl node, registered at the cluster's port mapper as Erlang finds nodes."""
    from joerl.node.node import DistributedSystem

    saved = os.environ.get("ERL_EPMD_PORT")
    os.environ["ERL_EPMD_PORT"] = str(cluster.epmd_port)
    try:
        node = DistributedSystem(
            "pyrx@127.0.0.1", "127.0.0.1:0", cookie=cluster.cookie, start_epmd=False, erlang=True, global_names=False
        )
    finally:
        if saved is None:
            os.environ.pop("ERL_EPMD_PORT", None)
        else:
            os.environ["ERL_EPMD_PORT"] = saved
    node.register("sink", node.spawn_fn(_sink).pid)
    node.register("echo", node.spawn_fn(_echo).pid)
    gen_server.start(node.system, _Server(), name="server")
    rpc.register(node, "erlang:whereis", lambda name: node.whereis(str(name)))
    return node


def _rate(answer: dict[str, Any]) -> float:
    return float(answer["n"]) / float(answer["seconds"])


def run(quick: bool) -> list[Row]:
    p = Params.for_mode(quick)
    with Cluster() as c:
        if not c.build_erlang():
            print("  erlang: erl/erlc not installed: no figures", file=sys.stderr)
            return []
        rx = c.erl("erl-rx", "rx", "dist_peer:rx().")
        rx.ready()
        node = _node(c)
        try:
            txe = c.erl("erl-txe", "txe", "dist_peer:tx('rx@127.0.0.1').")
            txp = c.erl("erl-txp", "txp", "dist_peer:tx('pyrx@127.0.0.1').")
            txe.ready()
            txp.ready()
            return _measure(p, node, txe, txp)
        finally:
            node.shutdown()


def _measure(p: Params, node: Any, txe: Any, txp: Any) -> list[Row]:
    timeout = 300.0
    probe = Probe(node, timeout=60)
    probe.ctx.send(("sink", "rx@127.0.0.1"), (HELLO, probe.pid))
    rx_sink = probe.receive()[1]

    def joerl_to_erlang_one_way(n: int) -> float:
        t0 = time.perf_counter()
        send = probe.ctx.send
        for i in range(n):
            send(rx_sink, (PING, i))
        send(rx_sink, (END, probe.pid))
        got = probe.receive()
        assert got == (ACK, n), got
        return n / (time.perf_counter() - t0)

    def joerl_to_erlang_call(n: int) -> float:
        t0 = time.perf_counter()
        for i in range(n):
            node.call(("server", "rx@127.0.0.1"), i, timeout=30)
        return n / (time.perf_counter() - t0)

    samples: dict[str, list[float]] = {k: [] for k in ("ee-ow", "ej-ow", "je-ow", "ee-call", "ej-call", "je-call")}
    for _ in range(p.repeats):
        samples["ee-ow"].append(_rate(txe.command(f"oneway {p.one_way_n}", timeout)))
        samples["ej-ow"].append(_rate(txp.command(f"oneway {p.one_way_n}", timeout)))
        samples["je-ow"].append(joerl_to_erlang_one_way(p.one_way_n))
        samples["ee-call"].append(_rate(txe.command(f"call {p.call_n}", timeout)))
        samples["ej-call"].append(_rate(txp.command(f"call {p.call_n}", timeout)))
        samples["je-call"].append(joerl_to_erlang_call(p.call_n))
    probe.stop()
    fig = {k: Figure(k, "msg/s" if k.endswith("ow") else "calls/s", v) for k, v in samples.items()}
    extra = {"one_way_n": p.one_way_n, "call_n": p.call_n, "repeats": p.repeats}
    return [
        Row("erlang one-way", fig["ej-ow"], fig["ee-ow"], None, note="Erlang -> joerl node, beside Erlang -> Erlang: "
            "N {ping, I} to a sink, then an ack", extra=extra),
        Row("erlang one-way", fig["je-ow"], fig["ee-ow"], None, note="joerl process -> Erlang sink, beside Erlang -> "
            "Erlang", extra=extra),
        Row("erlang call", fig["ej-call"], fig["ee-call"], None, note="gen_server:call from Erlang to a joerl "
            "GenServer, beside gen_server:call between two Erlang nodes", extra=extra),
        Row("erlang call", fig["je-call"], fig["ee-call"], None, note="node.call from joerl to an Erlang gen_server "
            "(OTP 25's alias protocol), beside Erlang -> Erlang", extra=extra),
    ]  # fmt: skip
