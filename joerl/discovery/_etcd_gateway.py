"""A small client of etcd v3's HTTP/JSON gateway: leases, keys under a prefix, and a watch.

etcd's own Python clients speak gRPC, whose threads and event loop do not
mix with gevent's; the gateway (``/v3/...``, JSON with base64 keys and
values, served by every etcd 3.4 and later) does, through geventhttpclient
(extra ``etcd``), a gevent HTTP client. Only what :class:`EtcdDiscovery`
needs is here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

__all__ = ["EtcdError", "EtcdGateway", "prefix_end"]

#: The largest JSON reply accepted, in bytes (a range of many thousand keys fits).
MAX_REPLY = 16 * 1024 * 1024
#: The longest line of a watch stream (one change's events).
MAX_WATCH_EVENT = 4 * 1024 * 1024


class EtcdError(Exception):
    """etcd answered with an error, or something that is not its JSON."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise EtcdError(f"expected base64 text, got {type(text).__name__}")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise EtcdError(f"invalid base64 from etcd: {exc}") from None


def prefix_end(prefix: bytes) -> bytes:
    """The ``range_end`` of every key that starts with ``prefix`` (its last byte plus one)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return b"\x00"  # every key
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _http() -> Any:
    try:
        import geventhttpclient
    except ImportError as exc:  # pragma: no cover - the extra is part of the test extra
        raise ImportError("EtcdDiscovery needs geventhttpclient: pip install 'joerl[etcd]'") from exc
    return geventhttpclient


class EtcdGateway:
    """Requests to one etcd endpoint's JSON gateway.

    Args:
        endpoint: ``http://host:port`` (or ``https://``).
        timeout: seconds to connect, and to wait for each reply.

    Raises:
        ImportError: geventhttpclient is not installed.
    """

    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        http = _http()
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self._url = http.URL(self.endpoint + "/")
        self._client = http.HTTPClient.from_url(
            self._url, connection_timeout=timeout, network_timeout=timeout, concurrency=4
        )

    def __repr__(self) -> str:
        return f"<EtcdGateway {self.endpoint}>"

    def close(self) -> None:
        self._client.close()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON to ``/v3/<path>``; the decoded reply.

        Raises:
            EtcdError: an HTTP error status, or a reply that is not a JSON object.
            OSError: the endpoint cannot be reached (or timed out).
        """
        response = self._client.post("/v3/" + path, body=json.dumps(body).encode(), headers=_HEADERS)
        try:
            data = response.read(MAX_REPLY + 1)
        finally:
            response.release()
        if len(data) > MAX_REPLY:
            raise EtcdError(f"reply to {path} over {MAX_REPLY} bytes")
        reply = _json(data)
        if response.status_code != 200:
            raise EtcdError(f"{path}: HTTP {response.status_code}: {reply.get('message') or reply.get('error')}")
        return reply

    # -- the calls the strategy makes ------------------------------------------------

    def grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; its id."""
        return int(self.call("lease/grant", {"TTL": ttl})["ID"])

    def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; its new TTL in seconds (0: the lease is gone)."""
        result = self.call("lease/keepalive", {"ID": lease}).get("result", {})
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        """End ``lease`` now (its keys are deleted)."""
        self.call("lease/revoke", {"ID": lease})

    def put(self, key: bytes, value: bytes, lease: int) -> None:
        self.call("kv/put", {"key": _b64(key), "value": _b64(value), "lease": lease})

    def range(self, prefix: bytes, limit: int) -> tuple[list[tuple[bytes, bytes]], int]:
        """At most ``limit`` keys under ``prefix`` with their values, and the store's revision."""
        reply = self.call("kv/range", {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)), "limit": limit})
        kvs = reply.get("kvs", [])
        if not isinstance(kvs, list):
            raise EtcdError("kv/range: 'kvs' is not a list")
        pairs = [(_unb64(kv.get("key")), _unb64(kv.get("value", ""))) for kv in kvs if isinstance(kv, dict)]
        return pairs, int(reply.get("header", {}).get("revision", 0))

    def watch(self, prefix: bytes, start_revision: int, idle_timeout: float) -> Iterator[int]:
        """Watch the keys under ``prefix`` from ``start_revision`` (0: from now): yields the number of
        events of each change (0 for the watch's creation and progress reports).

        Ends (returns) when the server ends the stream; raises when it is
        silent for ``idle_timeout`` seconds or the connection breaks.
        """
        http = _http()
        client = http.HTTPClient.from_url(
            self._url, connection_timeout=self.timeout, network_timeout=idle_timeout, concurrency=1
        )
        request: dict[str, Any] = {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix))}
        if start_revision > 0:
            request["start_revision"] = start_revision
        try:
            response = client.post("/v3/watch", body=json.dumps({"create_request": request}).encode(), headers=_HEADERS)
            if response.status_code != 200:
                raise EtcdError(f"watch: HTTP {response.status_code}")
            for line in _lines(response.read, MAX_WATCH_EVENT):
                result = _json(line).get("result", {})
                if not isinstance(result, dict) or result.get("canceled"):
                    raise EtcdError(
                        f"watch canceled: {result.get('cancel_reason', '') if isinstance(result, dict) else ''}"
                    )
                events = result.get("events", [])
                yield len(events) if isinstance(events, list) else 0
        finally:
            client.close()


_HEADERS = {"Content-Type": "application/json"}


def _lines(read: Any, limit: int) -> Iterator[bytes]:
    """The newline-separated lines of a stream read with ``read(1)``, none
    longer than ``limit``: a longer one raises before it is buffered whole.

    One byte per read because the HTTP client's ``read(n)`` waits for ``n``
    bytes and its ``readline`` buffers a line without bound; the client
    buffers the socket, so a byte is a copy, and watch events are small.
    """
    line = bytearray()
    while True:
        byte = read(1)
        if not byte:
            return
        if byte != b"\n":
            line += byte
            if len(line) > limit:
                raise EtcdError("watch: event over the reply limit")
        elif line.strip():
            yield bytes(line)
            line.clear()


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise EtcdError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise EtcdError(f"expected a JSON object, got {type(value).__name__}")
    return value
