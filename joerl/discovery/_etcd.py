"""The etcd strategy: every node registers under a key prefix with a lease it keeps alive, and
watches the prefix.

Node ``a@h1`` puts the key ``<prefix>a@h1`` bound to a lease of ``ttl``
seconds, and refreshes the lease every ``ttl / 3`` seconds. A node that
stops revokes its lease (its key goes at once); a node that dies stops
refreshing it, and etcd deletes its key when the lease expires. Every node
watches the prefix: a change makes the loop read the keys again at once (and
it reads them every ``interval`` anyway), so the cluster follows the keys.

When etcd cannot be reached, the loop keeps the cluster as it is and asks
again with back-off; a lease that expired meanwhile is granted anew and the
key put again on the next answer. Talks to etcd's HTTP/JSON gateway
(:mod:`._etcd_gateway`, extra ``etcd``).
"""

from __future__ import annotations

import logging

import gevent
from gevent.event import Event

from ..backoff import Backoff
from ._etcd_gateway import EtcdGateway
from ._strategy import DEFAULT_INTERVAL, DEFAULT_MAX_NODES, Discovery, Member

__all__ = ["EtcdDiscovery"]

log = logging.getLogger("joerl.discovery")

#: Seconds a watch may stay silent before it is opened again.
WATCH_IDLE = 60.0


class EtcdDiscovery(Discovery):
    """The nodes whose keys are under ``prefix`` in etcd; this node's key among them.

    Args:
        endpoint: etcd's client URL (``http://127.0.0.1:2379``).
        prefix: the key prefix of the cluster (one per cluster).
        ttl: seconds of the lease: a node that died is forgotten this long
            after its last refresh (at least 2).
        register: put this node's key (False: only watch, as a client that
            is no member would).
        timeout: seconds each request may take.
        interval: seconds between two reads when nothing changed.
        max_nodes: the most names used (and read).

    Raises:
        ValueError: ``ttl`` is below 2 or ``prefix`` is empty.
        ImportError: geventhttpclient is not installed.
    """

    def __init__(
        self,
        endpoint: str = "http://127.0.0.1:2379",
        prefix: str = "/joerl/nodes/",
        *,
        ttl: int = 15,
        register: bool = True,
        timeout: float = 5.0,
        interval: float = DEFAULT_INTERVAL,
        max_nodes: int = DEFAULT_MAX_NODES,
    ) -> None:
        super().__init__(interval=interval, max_nodes=max_nodes)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 2:
            raise ValueError(f"ttl must be an int of at least 2 seconds, got {ttl!r}")
        if not prefix:
            raise ValueError("prefix must not be empty")
        self.prefix = prefix.encode("utf-8")
        self.ttl = ttl
        self.register = register
        self.gateway = EtcdGateway(endpoint, timeout)
        #: The lease holding this node's key (None: not registered now).
        self.lease: int | None = None
        self._revision = 0
        self._stopped = Event()
        self._greenlets: list[gevent.Greenlet] = []

    def __repr__(self) -> str:
        return f"<EtcdDiscovery {self.gateway.endpoint} {self.prefix.decode('utf-8', 'replace')}>"

    def start(self, member: Member) -> None:
        super().start(member)
        self._greenlets = [gevent.spawn(self._watch)]
        if self.register:
            self._greenlets.append(gevent.spawn(self._keep_alive))

    def stop(self) -> None:
        self._stopped.set()
        gevent.killall(self._greenlets)
        lease, self.lease = self.lease, None
        if lease is not None:
            try:
                self.gateway.revoke(lease)  # the key goes now, not at the lease's expiry
            except Exception as exc:  # noqa: BLE001 - etcd may be gone; the lease expires then
                log.info("discovery: could not revoke etcd lease %x: %s", lease, exc)
        self.gateway.close()

    def nodes(self) -> list[str]:
        """Register if not registered, then read the keys under the prefix."""
        if self.register and self.lease is None and self.member is not None:
            lease = self.gateway.grant(self.ttl)
            self.gateway.put(self.prefix + self.member.name.encode("utf-8"), self.member.name.encode("utf-8"), lease)
            self.lease = lease
            log.info("discovery: node %s registered in etcd (lease %x, ttl %ds)", self.member.name, lease, self.ttl)
        pairs, self._revision = self.gateway.range(self.prefix, self.max_nodes + 1)
        # The key names the node; what follows the prefix is not trusted to be text.
        return [key[len(self.prefix) :].decode("utf-8", "replace") for key, _ in pairs]

    # -- greenlets --------------------------------------------------------------------

    def _keep_alive(self) -> None:
        """Refresh the lease every ttl/3 seconds; a lease found gone is granted anew by the loop."""
        while not self._stopped.wait(self.ttl / 3):
            lease = self.lease
            if lease is None:
                continue
            try:
                alive = self.gateway.keepalive(lease) > 0
            except Exception as exc:  # noqa: BLE001 - etcd down: the loop notices too
                log.debug("discovery: etcd keep-alive failed: %s", exc)
                continue
            if not alive and self.lease == lease:
                log.warning(
                    "discovery: etcd lease %x of %s expired: registering again", lease, self.member and self.member.name
                )
                self.lease = None
                self.changed.set()

    def _watch(self) -> None:
        """Watch the prefix; every change wakes the loop. Reopened with back-off when it breaks."""
        backoff = Backoff(initial=0.1, maximum=max(5.0, self.interval))
        while not self._stopped.is_set():
            start = self._revision + 1 if self._revision else 0  # (0: from now)
            try:
                for events in self.gateway.watch(self.prefix, start, WATCH_IDLE):
                    backoff.reset()
                    if events:
                        self.changed.set()
                log.debug("discovery: etcd ended the watch")
            except Exception as exc:  # noqa: BLE001 - etcd down or the watch broke: open it again
                log.debug("discovery: etcd watch ended: %s", exc)
            self.changed.set()  # the loop reads (and sees etcd down, or what was missed)
            self._stopped.wait(backoff.delay())
