"""An ActorSystem inside a gevent.pywsgi server: every HTTP request is a GenServer call.

The ``Visits`` GenServer owns the state (hit counts); the WSGI handlers, one
greenlet per connection, only call it, so no lock is needed. ``/slow`` shows a
deferred reply: the server answers through a timer to itself and meanwhile
keeps serving other requests.

    GET /hit/<key>     -> {"key": k, "hits": n, "total": t}
    GET /stats         -> {"hits": {...}, "total": t}
    GET /slow?ms=N     -> {"waited_ms": N}   (0 <= N <= 5000)

Run: ``python examples/wsgi_server.py --port 8000`` (``--port 0`` picks a free
port; either way a ``READY port=N`` line is printed once it listens;
``--requests N`` stops after N requests). No monkey-patching is needed: joerl
and pywsgi both run on gevent's own sockets and greenlets.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.pywsgi import WSGIServer

import joerl
from joerl.errors import CallError, CallTimeout
from joerl.gen_server import From, GenServer, GenServerRef, NoReply, Reply, start
from joerl.system import ActorSystem


class Visits(GenServer):
    """Counts hits per key; every call counts towards ``total``."""

    def init(self, args: Any) -> dict[str, Any]:
        return {"hits": {}, "total": 0}

    def handle_call(self, request: Any, from_: From, state: dict[str, Any]) -> Reply | NoReply:
        state["total"] += 1
        op = request[0]
        if op == "hit":
            key = request[1]
            hits = state["hits"][key] = state["hits"].get(key, 0) + 1
            return Reply({"key": key, "hits": hits, "total": state["total"]})
        if op == "stats":
            return Reply({"hits": dict(state["hits"]), "total": state["total"]})
        if op == "slow":
            self.send_after(request[1] / 1000, ("wake", from_, request[1]))
            return NoReply()
        raise ValueError(f"unknown request {request!r}")

    def handle_info(self, msg: Any, state: dict[str, Any]) -> dict[str, Any]:
        if msg[0] == "wake":
            self.reply(msg[1], {"waited_ms": msg[2]})
        return state


class App:
    """The WSGI application: turns a request into a call, the reply into JSON."""

    def __init__(self, visits: GenServerRef, limit: int | None) -> None:
        self.visits = visits
        self.limit = limit
        self.served = 0
        self.done = Event()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            status, body = self.handle(environ)
        finally:
            self.served += 1
            if self.limit is not None and self.served >= self.limit:
                self.done.set()
        data = json.dumps(body).encode()
        print(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} -> {status} {body}", flush=True)
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def handle(self, environ: dict[str, Any]) -> tuple[str, Any]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/hit/") and len(path) > 5:
            request: tuple[Any, ...] = ("hit", path[5:])
        elif path == "/stats":
            request = ("stats",)
        elif path == "/slow":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            try:
                ms = int(query.get("ms", ["100"])[0])
            except ValueError:
                return "400 Bad Request", {"error": "ms must be an integer"}
            if not 0 <= ms <= 5000:
                return "400 Bad Request", {"error": "ms must be in 0..5000"}
            request = ("slow", ms)
        else:
            return "404 Not Found", {"error": f"no route for {path!r}"}
        try:
            return "200 OK", self.visits.call(request, timeout=10.0)
        except CallTimeout as exc:  # the server is alive but did not answer in time
            return "504 Gateway Timeout", {"error": str(exc)}
        except CallError as exc:  # the server crashed during the call, or is not running
            return "500 Internal Server Error", {"error": str(exc)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--requests", type=int, default=None, help="stop after this many requests")
    args = parser.parse_args(argv)

    system = ActorSystem("wsgi")
    served = {"requests": 0}

    def serve(system: ActorSystem) -> Callable[[], None]:
        # The actors start first, then the HTTP server that calls them.
        app = App(start(system, Visits(), name="visits"), args.requests)
        server = WSGIServer((args.host, args.port), app, spawn=Pool(1000), log=None)
        server.start()
        print(f"READY port={server.server_port}", flush=True)
        # With --requests N: once N are served, shut the system down (ends joerl.run's wait).
        gevent.spawn(lambda: (app.done.wait(), system.shutdown()))

        def stop_http() -> None:  # before the system stops: no request meets a stopped actor
            server.stop(timeout=5)  # stop accepting, let running handlers finish
            served["requests"] = app.served

        return stop_http

    status = joerl.run(serve, system)  # until Ctrl+C or SIGTERM (or --requests N), then a clean shutdown
    print(f"served {served['requests']} requests", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
