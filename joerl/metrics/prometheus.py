"""The Prometheus exporter: a node's metrics over HTTP, with liveness and readiness probes.

Needs the ``prometheus`` extra (the ``prometheus-client`` package). Each
:class:`Exporter` owns its own ``CollectorRegistry`` (never the process-wide
default, so that several nodes in one process never mix their series), and
every series carries a ``node`` label (a link's also a ``peer`` label). The
values are read from :func:`joerl.metrics.snapshot` at each scrape: nothing
is counted twice and nothing runs between scrapes.

:func:`serve` answers, on ``gevent.pywsgi`` (bound to 127.0.0.1 unless told
otherwise):

* ``/metrics``: the exposition format;
* ``/healthz``: liveness, 200 while the system runs (a hub that answers is
  alive), 503 once it is shut down;
* ``/readyz``: readiness, 200 while a node is registered and listening (a
  plain ``ActorSystem``: while it runs) and the application's own ``ready``
  check, if given, says yes; 503 with the reason otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gevent import pywsgi

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "joerl.metrics.prometheus needs the prometheus-client package: pip install 'joerl[prometheus]'"
    ) from exc

from ..node.node import DistributedSystem
from ..system import ActorSystem
from . import COUNTERS, GAUGES, PEER_COUNTERS, PEER_GAUGES, snapshot

__all__ = ["CONTENT_TYPE", "Exporter", "MetricsServer", "serve"]

log = logging.getLogger(__name__)

#: The content type of ``/metrics`` (the text exposition format).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Target = ActorSystem | DistributedSystem


class Exporter:
    """The collector of one system or node, in a registry of its own (:attr:`registry`).

    Args:
        target: the system or node.
        prefix: the metric name prefix.
    """

    def __init__(self, target: Target, prefix: str = "joerl") -> None:
        self.target = target
        self.prefix = prefix
        #: This exporter's own registry (the process-wide default is never used).
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """The metrics now (prometheus_client's collector protocol)."""
        snap = snapshot(self.target)
        node = str(snap["name"])
        p = self.prefix
        for key, doc in COUNTERS.items():
            value = snap.get(key)
            if key == "messages_dropped":
                family = CounterMetricFamily(f"{p}_{key}", doc, labels=["node", "reason"])
                for reason, n in sorted({**snap[key], **snap.get("node_messages_dropped", {})}.items()):
                    family.add_metric([node, reason], n)
                yield family
            elif value is not None:
                family = CounterMetricFamily(f"{p}_{key}", doc, labels=["node"])
                family.add_metric([node], value)
                yield family
        for key, doc in GAUGES.items():
            if key in snap:
                gauge = GaugeMetricFamily(f"{p}_{key}", doc, labels=["node"])
                gauge.add_metric([node], snap[key])
                yield gauge
        peers: dict[str, dict[str, Any]] = snap.get("peers", {})
        if peers:
            yield from _per_peer(p, node, peers)

    def exposition(self) -> bytes:
        """The registry in the text exposition format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)


def _per_peer(p: str, node: str, peers: dict[str, dict[str, Any]]) -> Iterable[Metric]:
    for key, doc in PEER_COUNTERS.items():
        family = CounterMetricFamily(f"{p}_link_{key}", doc, labels=["node", "peer"])
        for peer, values in sorted(peers.items()):
            family.add_metric([node, peer], values[key])
        yield family
    for key, doc in PEER_GAUGES.items():
        gauge = GaugeMetricFamily(f"{p}_link_{key}", doc, labels=["node", "peer"])
        for peer, values in sorted(peers.items()):
            gauge.add_metric([node, peer], values[key])
        yield gauge


def _readiness(target: Target, ready: Callable[[], bool] | None) -> str | None:
    """None when ready, else why not."""
    if target.closed:
        return "shut down"
    if isinstance(target, DistributedSystem) and not target.listen_port:
        return "not listening"
    if ready is not None:
        try:
            if not ready():
                return "the application is not ready"
        except Exception as exc:  # noqa: BLE001 - a failing check is "not ready", not a crash
            return f"the readiness check raised {type(exc).__name__}: {exc}"
    return None


class MetricsServer:
    """The HTTP server :func:`serve` started: ``port``, ``url``, :meth:`stop`."""

    def __init__(self, exporter: Exporter, server: pywsgi.WSGIServer, host: str) -> None:
        self.exporter = exporter
        self._server = server
        self.host = host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 2.0) -> None:
        """Stop answering and close the socket."""
        self._server.stop(timeout=timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    target: Target,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    ready: Callable[[], bool] | None = None,
    prefix: str = "joerl",
) -> MetricsServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` for ``target`` over HTTP.

    Args:
        target: the system or node.
        port: the TCP port (0 picks a free one: read ``MetricsServer.port``).
        host: the address to bind; the loopback by default (metrics tell a
            lot about a node: expose them on purpose, behind what guards them).
        ready: the application's own readiness check, called at each ``/readyz``.
        prefix: the metric name prefix.

    Returns:
        The running server; ``stop()`` it (a node's shutdown does not).
    """
    exporter = Exporter(target, prefix)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET, HEAD")])
            return [b"GET only\n"]
        if path == "/metrics":
            body = exporter.exposition()
            start_response("200 OK", [("Content-Type", CONTENT_TYPE)])
            return [body]
        if path == "/healthz":
            return _plain(start_response, None if not target.closed else "shut down")
        if path == "/readyz":
            return _plain(start_response, _readiness(target, ready))
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz, /readyz\n"]

    server = pywsgi.WSGIServer((host, port), app, log=None, error_log=log)
    server.start()
    return MetricsServer(exporter, server, host)


def _plain(start_response: Callable[..., Any], problem: str | None) -> list[bytes]:
    if problem is None:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [f"not ok: {problem}\n".encode()]
