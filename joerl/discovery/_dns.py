"""The DNS strategy: the nodes behind one DNS name (A/AAAA records, or SRV records).

Like libcluster's DNSPoll and Kubernetes DNS strategies: a headless service
``app.default.svc.cluster.local`` answers one A (or AAAA) record per pod,
and each address ``ip`` becomes the node ``basename@ip``. With SRV records
(``_app._tcp.example.com``) each target host ``t`` becomes ``basename@t``
(the record's port is not used: the node's port is the port mapper's
business on that host, or the portless mode's).

The questions go through dnspython (extra ``dns``), in gevent's thread pool
so that a slow resolver never blocks the node's greenlets. A name that does
not exist (NXDOMAIN) or has no records of the type asked is an answer: no
nodes. A server that does not answer in time, or fails (SERVFAIL), is a
source that is down: the loop leaves the cluster as it is.
"""

from __future__ import annotations

from typing import Any

from gevent import get_hub

from ._strategy import DEFAULT_INTERVAL, DEFAULT_MAX_NODES, Discovery

__all__ = ["DnsDiscovery"]

#: The record types :class:`DnsDiscovery` asks for.
KINDS = ("A", "AAAA", "A+AAAA", "SRV")


def _dns() -> Any:
    """dnspython's resolver module (imported on first use: the ``dns`` extra)."""
    try:
        import dns.resolver
    except ImportError as exc:  # pragma: no cover - the extra is part of the test extra
        raise ImportError("DnsDiscovery needs dnspython: pip install 'joerl[dns]'") from exc
    return dns.resolver


class DnsDiscovery(Discovery):
    """The nodes named by the records of one DNS name.

    Args:
        query: the DNS name to ask (``app.default.svc.cluster.local``,
            ``_app._tcp.example.com``).
        basename: the node names' part before ``@`` (every node of the
            service has this name on its own host).
        kind: ``"A"``, ``"AAAA"``, ``"A+AAAA"`` (both; the default) or ``"SRV"``.
        nameservers: the servers to ask (IP addresses); default: the
            system's (``/etc/resolv.conf``).
        port: the servers' port (with ``nameservers``).
        timeout: seconds one question may take, retries included.
        interval: seconds between two questions.
        max_nodes: the most names used.

    Raises:
        ValueError: ``kind`` is not one of the above, or ``basename`` has an ``@``.
        ImportError: dnspython is not installed.
    """

    def __init__(
        self,
        query: str,
        basename: str,
        *,
        kind: str = "A+AAAA",
        nameservers: list[str] | None = None,
        port: int = 53,
        timeout: float = 5.0,
        interval: float = DEFAULT_INTERVAL,
        max_nodes: int = DEFAULT_MAX_NODES,
    ) -> None:
        super().__init__(interval=interval, max_nodes=max_nodes)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if not basename or "@" in basename:
            raise ValueError(f"basename is the part of a node name before '@', got {basename!r}")
        resolver_module = _dns()
        self.query = query
        self.basename = basename
        self.kind = kind
        self._resolver = resolver_module.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self._resolver.nameservers = list(nameservers)
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.cache = None

    def __repr__(self) -> str:
        return f"<DnsDiscovery {self.kind} {self.query}>"

    def nodes(self) -> list[str]:
        """Ask the DNS server (in a thread of gevent's pool); raises when it does not answer."""
        # (The failure travels back as a value: gevent prints exceptions raised in its pool's threads.)
        result: list[str] | None
        error: Exception | None
        result, error = get_hub().threadpool.apply(self._ask_safely)
        if error is not None:
            raise error
        assert result is not None
        return result

    def _ask_safely(self) -> tuple[list[str] | None, Exception | None]:
        try:
            return self._ask(), None
        except Exception as exc:  # noqa: BLE001 - re-raised in the calling greenlet
            return None, exc

    def _ask(self) -> list[str]:
        if self.kind == "SRV":
            hosts = [str(r.target).rstrip(".") for r in self._records("SRV")]
        else:
            hosts = []
            for rdtype in ("A", "AAAA") if self.kind == "A+AAAA" else (self.kind,):
                hosts.extend(r.address for r in self._records(rdtype))
        return [f"{self.basename}@{host}" for host in hosts]

    def _records(self, rdtype: str) -> list[Any]:
        resolver = _dns()
        try:
            answer = self._resolver.resolve(self.query, rdtype, search=False)
        except (resolver.NXDOMAIN, resolver.NoAnswer):
            return []  # the name has no such records now: no nodes
        return list(answer)
