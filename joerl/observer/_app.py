"""The observer's WSGI application: the page, its static files, and the JSON it polls.

Routes (every one behind the token, when there is one)::

    GET /                          the single page (index.html; hash routes inside)
    GET /static/<file>             its script, style and vendored libraries
    GET /api/nodes                 the default node, its report and its visible peers
    GET /api/node?node=N           node N's report (runtime, links, counters, names)
    GET /api/processes?node=N      node N's processes
    GET /api/process?pid=<a.b.c>   one process (with a GenServer's or GenStatem's state)
    GET /api/metrics?node=N        node N's counters and gauges (joerl.metrics.snapshot)
    GET /api/history?node=N        node N's samples for the charts
    GET <mount>                    what ``mounts`` adds (``/metrics``, say)

A token is taken from the ``token`` query parameter (which also sets a
cookie, so that the page's own requests carry it), the cookie, or an
``Authorization: Bearer`` header; without it every route answers 401.
"""

from __future__ import annotations

import hmac
import json
import logging
import mimetypes
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from ._history import History
from ._source import Source, parse_pid

__all__ = ["ObserverApp"]

log = logging.getLogger("joerl.observer")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_COOKIE = "joerl_observer"
_STATIC = resources.files("joerl.observer") / "static"


class ObserverApp:
    """The WSGI callable (see the module docstring).

    Args:
        source: what is shown.
        history: the charts' samples.
        token: the secret every request must carry (None: none needed).
        mounts: more WSGI apps by exact path (``{"/metrics": app}``).
    """

    def __init__(
        self, source: Source, history: History, token: str | None = None, mounts: Mapping[str, WSGIApp] | None = None
    ) -> None:
        self.source = source
        self.history = history
        self.token = token
        self.mounts = dict(mounts or {})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/") or "/"
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if not self._allowed(environ, query):
            return _respond(
                start_response, "401 Unauthorized", b"a token is needed: open the observer's URL with ?token=..."
            )
        extra = []
        if self.token is not None and query.get("token"):
            extra.append(("Set-Cookie", f"{_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"))
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _respond(start_response, "405 Method Not Allowed", b"the observer is read-only")
        mount = self.mounts.get(path)
        if mount is not None:
            return mount(environ, start_response)
        if path == "/" or path == "/index.html":
            return self._static(start_response, "index.html", extra)
        if path.startswith("/static/"):
            return self._static(start_response, path[len("/static/") :], extra)
        if path.startswith("/api/"):
            return self._api(start_response, path[len("/api/") :], query)
        return _respond(start_response, "404 Not Found", b"not found")

    def _allowed(self, environ: dict[str, Any], query: dict[str, str]) -> bool:
        if self.token is None:
            return True
        offered = query.get("token") or _cookie(environ.get("HTTP_COOKIE", ""))
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if not offered and auth.startswith("Bearer "):
            offered = auth[len("Bearer ") :]
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())

    def _static(self, start_response: Callable[..., Any], name: str, extra: list[tuple[str, str]]) -> Iterable[bytes]:
        parts = name.split("/")
        if not name or any(p in ("", ".", "..") for p in parts):
            return _respond(start_response, "404 Not Found", b"not found")
        item = _STATIC.joinpath(*parts)
        if not item.is_file():
            return _respond(start_response, "404 Not Found", b"not found")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        return _respond(start_response, "200 OK", item.read_bytes(), kind, [("Cache-Control", "no-cache"), *extra])

    def _api(self, start_response: Callable[..., Any], what: str, query: dict[str, str]) -> Iterable[bytes]:
        node = query.get("node") or self.source.default_node
        try:
            if what == "nodes":
                body: Any = self.source.nodes()
            elif what == "node":
                body = self.source.node(node)
            elif what == "processes":
                self.history.watch(node)
                body = self.source.processes(node)
            elif what == "process":
                body = self.source.process(parse_pid(query.get("pid", "")))
                if body is None:
                    return _json(start_response, {"error": "no such process (it is not alive)"}, "404 Not Found")
            elif what == "metrics":
                body = self.source.metrics(node)
            elif what == "history":
                body = self.history.series(node)
            else:
                return _json(start_response, {"error": f"no such endpoint: {what}"}, "404 Not Found")
        except ValueError as exc:
            return _json(start_response, {"error": str(exc)}, "400 Bad Request")
        except Exception as exc:  # noqa: BLE001 - a node that cannot be asked is shown, never raised
            log.debug("observer: %s failed", what, exc_info=True)
            return _json(start_response, {"error": f"{type(exc).__name__}: {exc}"}, "502 Bad Gateway")
        return _json(start_response, body)


def _cookie(header: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == _COOKIE:
            return value
    return ""


def _json(start_response: Callable[..., Any], body: Any, status: str = "200 OK") -> Iterable[bytes]:
    data = json.dumps(body, default=str).encode()
    return _respond(start_response, status, data, "application/json", [("Cache-Control", "no-store")])


def _respond(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    kind: str = "text/plain; charset=utf-8",
    headers: list[tuple[str, str]] | None = None,
) -> Iterable[bytes]:
    start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body))), *(headers or [])])
    return [body]
