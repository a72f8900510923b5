"""The Prometheus exporter, scraped over a real socket and parsed with prometheus_client's parser."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from gevent import socket

from joerl import ActorSystem, DistributedSystem, gen_server
from joerl.testing import Probe, node_cluster, wait_until

prometheus_client = pytest.importorskip("prometheus_client", reason="the prometheus extra is not installed")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from joerl.metrics import prometheus  # noqa: E402

COOKIE = "prometheus-test-cookie"


def http_get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    """One HTTP/1.0 request over a plain socket: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"{method} {path} HTTP/1.0\r\nHost: test\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.decode().partition("\r\n\r\n")
    status_line, *header_lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


@pytest.fixture
def pair() -> Iterator[list[DistributedSystem]]:
    with node_cluster("pa", "pb", cookie=COOKIE, global_names=False) as nodes:
        yield nodes


class Echo(gen_server.GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> gen_server.Reply:
        return gen_server.Reply(request, state)


def test_two_nodes_have_their_own_registries_and_node_labels(pair: list[DistributedSystem]) -> None:
    a, b = pair
    inbox = Probe(b, name="inbox")
    for i in range(20):
        a.system.send(("inbox", b.node_name), i)
    wait_until(lambda: len(inbox.pending()) == 20, timeout=10)
    with prometheus.serve(a) as sa, prometheus.serve(b) as sb:
        assert sa.exporter.registry is not sb.exporter.registry
        assert sa.exporter.registry is not prometheus_client.REGISTRY
        status, headers, body = http_get(sa.port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        got = samples(body)
        node_a = (("node", a.node_name),)
        assert got[("joerl_node_messages_sent_total", node_a)] == 20
        assert got[("joerl_links_alive", node_a)] == 1
        assert got[("joerl_links_up_total", node_a)] >= 1
        link = (("node", a.node_name), ("peer", b.node_name))
        assert got[("joerl_link_bytes_out_total", link)] > 0 and got[("joerl_link_frames_out_total", link)] >= 1
        assert all(dict(labels).get("node") == a.node_name for _, labels in got)
        got_b = samples(http_get(sb.port, "/metrics")[2])
        node_b = (("node", b.node_name),)
        assert got_b[("joerl_node_messages_received_total", node_b)] == 20
        assert got_b[("joerl_processes_alive", node_b)] >= 1


def test_counters_move_between_scrapes(pair: list[DistributedSystem], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="joerl")
    a, _b = pair
    with prometheus.serve(a) as server:
        before = samples(http_get(server.port, "/metrics")[2])
        ref = gen_server.start(a.system, Echo())
        for i in range(10):
            assert ref.call(i) == i
        a.spawn_fn(lambda ctx: 1 / 0).wait(5)
        a.system.send(ref.pid, "unexpected")  # handled (logged), not dropped
        after = samples(http_get(server.port, "/metrics")[2])
        node = (("node", a.node_name),)
        assert after[("joerl_processes_spawned_total", node)] - before[("joerl_processes_spawned_total", node)] == 2
        assert after[("joerl_processes_crashed_total", node)] - before[("joerl_processes_crashed_total", node)] == 1
        assert after[("joerl_messages_sent_total", node)] - before[("joerl_messages_sent_total", node)] >= 11


def test_health_and_readiness(pair: list[DistributedSystem]) -> None:
    a, _b = pair
    flag = {"ready": False}
    with prometheus.serve(a, ready=lambda: flag["ready"]) as server:
        assert http_get(server.port, "/healthz")[:1] == (200,)
        status, _, body = http_get(server.port, "/readyz")
        assert status == 503 and "application is not ready" in body
        flag["ready"] = True
        assert http_get(server.port, "/readyz")[0] == 200
        assert http_get(server.port, "/nope")[0] == 404
        assert http_get(server.port, "/metrics", method="POST")[0] == 405


def test_a_shut_down_system_is_neither_live_nor_ready() -> None:
    system = ActorSystem()
    server = prometheus.serve(system)
    try:
        assert http_get(server.port, "/readyz")[0] == 200
        system.shutdown()
        status, _, body = http_get(server.port, "/healthz")
        assert status == 503 and "shut down" in body
        assert http_get(server.port, "/readyz")[0] == 503
        assert http_get(server.port, "/metrics")[0] == 200  # the last values stay readable
    finally:
        server.stop()


def test_bound_to_the_loopback_by_default() -> None:
    with ActorSystem() as system, prometheus.serve(system) as server:
        assert server.host == "127.0.0.1" and server.url == f"http://127.0.0.1:{server.port}"
