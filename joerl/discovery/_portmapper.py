"""The port mapper strategy: every node registered at the port mappers of some hosts
(Erlang's ``net_adm:world/0`` over a ``.hosts.erlang`` list; libcluster's Epmd strategy).

Each host's port mapper is asked for its listing (the NAMES request, which
Erlang's epmd answers too); a name ``alive`` registered at host ``h``
becomes the node ``alive@h`` (a name that has its host already, as in a
shared port mapper, is taken as it is). The hosts are asked at once, each
within ``timeout``. A host whose port mapper does not answer keeps the names
it listed last (its nodes stay in the cluster until it answers again); only
when no host answers is the source down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import gevent

from .. import epmd as _epmd
from ..address import format_address, parse_address
from ..node.locator import epmd_port
from ._strategy import DEFAULT_INTERVAL, DEFAULT_MAX_NODES, Discovery

__all__ = ["EpmdDiscovery"]

log = logging.getLogger("joerl.discovery")


class EpmdDiscovery(Discovery):
    """The nodes registered at the port mappers of ``hosts``.

    Args:
        hosts: host names or addresses (``"h1"``, ``"10.0.0.5"``, ``"h2:4370"``
            for a port mapper on another port). The host as written is the
            node names' host part.
        port: the port mappers' port where a host gives none (default:
            ``$ERL_EPMD_PORT``, else 4369).
        timeout: seconds each port mapper may take to answer.
        interval: seconds between two rounds.
        max_nodes: the most names used.

    Raises:
        ValueError: ``hosts`` is empty or holds something that is no address.
    """

    def __init__(
        self,
        hosts: Iterable[str],
        *,
        port: int | None = None,
        timeout: float = 2.0,
        interval: float = DEFAULT_INTERVAL,
        max_nodes: int = DEFAULT_MAX_NODES,
    ) -> None:
        super().__init__(interval=interval, max_nodes=max_nodes)
        default_port = port if port is not None else epmd_port()
        self.hosts = [parse_address(h, default_port=default_port) for h in hosts]
        if not self.hosts:
            raise ValueError("EpmdDiscovery needs at least one host")
        self.timeout = timeout
        self._last: dict[tuple[str, int], list[str]] = {}

    def __repr__(self) -> str:
        return f"<EpmdDiscovery {', '.join(format_address(h, p) for h, p in self.hosts)}>"

    def nodes(self) -> list[str]:
        """Ask every host's port mapper at once; raises when none answers."""
        jobs = [gevent.spawn(self._list, host, port) for host, port in self.hosts]
        gevent.joinall(jobs)
        names: list[str] = []
        answered = 0
        for (host, port), job in zip(self.hosts, jobs, strict=True):
            if job.successful():
                answered += 1
                self._last[(host, port)] = job.value
            else:
                log.debug("discovery: port mapper %s did not answer: %s", format_address(host, port), job.exception)
            names.extend(self._last.get((host, port), ()))
        if not answered:
            raise _epmd.EpmdConnectionError(f"no port mapper of {self!r} answered") from jobs[0].exception
        return names

    def _list(self, host: str, port: int) -> list[str]:
        client = _epmd.EpmdClient((host, port), timeout=self.timeout)
        try:
            listing = client.list_nodes()
        finally:
            client.close()
        return [info.name if "@" in info.name else f"{info.name}@{host}" for info in listing[: self.max_nodes + 1]]
