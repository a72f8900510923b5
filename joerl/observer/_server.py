"""The observer's HTTP server: a ``gevent.pywsgi`` server of :class:`~joerl.observer._app.ObserverApp`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gevent.pywsgi import WSGIServer

from ._app import ObserverApp, WSGIApp
from ._history import History
from ._source import Source

__all__ = ["Observer", "serve"]

log = logging.getLogger("joerl.observer")


class Observer:
    """A running web observer (see :func:`serve`); a context manager that stops it.

    Attributes:
        url: where to open it (with the token, if there is one).
        port: the port it listens on.
        app: its WSGI application.
    """

    def __init__(self, server: WSGIServer, app: ObserverApp, history: History, host: str) -> None:
        self._server = server
        self.app = app
        self._history = history
        self.port: int = server.server_port
        shown = f"[{host}]" if ":" in host else host
        token = f"?token={app.token}" if app.token else ""
        self.url = f"http://{shown}:{self.port}/{token}"

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Observer {self.url}>"

    def stop(self) -> None:
        """Stop serving (safe twice)."""
        self._history.stop()
        self._server.stop(timeout=1.0)


def serve(
    target: Any,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    token: str | None = None,
    node: str | None = None,
    interval: float = 1.0,
    keep: int = 300,
    timeout: float = 5.0,
    mounts: Mapping[str, WSGIApp] | None = None,
) -> Observer:
    """Serve the web observer of ``target`` (a DistributedSystem, or an ActorSystem) over HTTP.

    Args:
        target: a node (its cluster is shown through it) or a local ActorSystem.
        port: the port (0: a free one; read ``Observer.port``).
        host: the address to bind: 127.0.0.1 by default (anything else
            exposes every process's details: use a ``token``).
        token: a secret every request must carry (the URL's ``?token=``).
        node: the node shown first (default: ``target``'s own).
        interval: seconds between the charts' samples.
        keep: samples kept per node (300 at 1 s: five minutes).
        timeout: seconds to wait for another node's answer.
        mounts: more WSGI apps by path (``{"/metrics": app}``). ``/metrics``
            is the Prometheus exposition of ``target``
            (:mod:`joerl.metrics.prometheus`) when ``prometheus-client`` is installed.

    Returns:
        The running :class:`Observer`.

    Raises:
        OSError: the address cannot be bound.
        ValueError: ``interval`` or ``keep`` is not positive.
    """
    if not interval > 0 or keep < 1:
        raise ValueError(f"interval must be > 0 and keep >= 1, got {interval!r} and {keep!r}")
    source = Source(target, node, timeout)
    history = History(source.metrics, source.default_node, interval, keep)
    app = ObserverApp(source, history, token, {**_metrics(target), **(mounts or {})})
    server = WSGIServer((host, port), app, log=None, error_log=log)
    server.start()
    history.start()
    observer = Observer(server, app, history, host)
    log.info("observer of %s at %s", source.default_node, observer.url)
    return observer


def _metrics(target: Any) -> dict[str, WSGIApp]:
    """``/metrics``: the Prometheus exposition of ``target``, if the ``prometheus`` extra is installed."""
    try:
        from ..metrics.prometheus import CONTENT_TYPE, Exporter
    except ImportError:
        return {}
    exporter = Exporter(target)

    def metrics(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = exporter.exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(body)))])
        return [body]

    return {"/metrics": metrics}
