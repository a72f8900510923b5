"""The multicast strategy: nodes on one LAN find each other by signed UDP beacons
(libcluster's Gossip strategy).

Every node sends a beacon (:mod:`.beacon`: its name, signed with an HMAC of
the cookie) to a multicast group every ``beacon_interval`` seconds, and
listens on the group: the nodes it heard from within ``expire`` seconds are
the cluster. A beacon that is not signed with this node's cookie (a
stranger, another cluster), too old, replayed or malformed is dropped and
counted (:attr:`MulticastDiscovery.refused`, by reason); the loop then
validates the names as from any source, and a listed node still passes the
handshake.

Multicast stays on the LAN: the TTL is 1 by default (no router forwards the
beacons), and ``interface`` picks the interface to send and listen on.
"""

from __future__ import annotations

import ipaddress
import logging
import socket as _stdsocket
from collections import Counter
from time import monotonic
from typing import Any

import gevent
from gevent import socket as gsocket

from ..errors._discovery import BeaconError
from ._strategy import DEFAULT_INTERVAL, DEFAULT_MAX_NODES, Discovery, Member
from .beacon import MAX_BEACON, BeaconReader, BeaconWriter

__all__ = ["MulticastDiscovery"]

log = logging.getLogger("joerl.discovery")

DEFAULT_GROUP = "239.255.43.69"
DEFAULT_PORT = 45892


class MulticastDiscovery(Discovery):
    """The nodes whose signed beacons arrived lately on a multicast group.

    Args:
        group: the IPv4 multicast group (administratively scoped by default).
            A unicast address works too (no group is joined): beacons are
            then sent to that address only.
        port: the UDP port of the group.
        interface: the IPv4 address of the interface to send and listen on
            (default: the one the routing table picks).
        ttl: the beacons' multicast TTL (1: this LAN only).
        beacon_interval: seconds between two beacons of this node.
        expire: seconds after its last beacon that a node leaves the list
            (default: four beacon intervals).
        max_age: seconds a beacon's time may be off this node's clock.
        interval: seconds between two rounds of the loop (a new node makes
            the loop ask at once).
        max_nodes: the most names used (and remembered).
    """

    def __init__(
        self,
        group: str = DEFAULT_GROUP,
        port: int = DEFAULT_PORT,
        *,
        interface: str | None = None,
        ttl: int = 1,
        beacon_interval: float = 1.0,
        expire: float | None = None,
        max_age: float = 30.0,
        interval: float = DEFAULT_INTERVAL,
        max_nodes: int = DEFAULT_MAX_NODES,
    ) -> None:
        super().__init__(interval=interval, max_nodes=max_nodes)
        if not beacon_interval > 0:
            raise ValueError(f"beacon_interval must be positive, got {beacon_interval!r}")
        self.group = str(ipaddress.IPv4Address(group))
        self.multicast = ipaddress.IPv4Address(group).is_multicast
        self.port = port
        self.interface = interface
        self.ttl = ttl
        self.beacon_interval = beacon_interval
        self.expire = 4 * beacon_interval if expire is None else expire
        self.max_age = max_age
        #: Beacons dropped, by reason (``size``, ``format``, ``signature``, ``time``, ``replay``, ``full``).
        self.refused: Counter[str] = Counter()
        self._heard: dict[str, float] = {}  # name -> monotonic time of its last beacon
        self._sock: Any = None
        self._greenlets: list[gevent.Greenlet] = []

    def __repr__(self) -> str:
        return f"<MulticastDiscovery {self.group}:{self.port}>"

    def start(self, member: Member) -> None:
        super().start(member)
        self._sock = self._open()
        writer = BeaconWriter(member.name, member.cookie)
        reader = BeaconReader(member.cookie, max_age=self.max_age, max_senders=self.max_nodes)
        self._greenlets = [gevent.spawn(self._send, writer), gevent.spawn(self._receive, reader)]

    def stop(self) -> None:
        gevent.killall(self._greenlets)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def nodes(self) -> list[str]:
        """The nodes heard from within ``expire`` seconds."""
        horizon = monotonic() - self.expire
        for name in [name for name, seen in self._heard.items() if seen < horizon]:
            del self._heard[name]
        return list(self._heard)

    # -- IO -----------------------------------------------------------------------------

    def _open(self) -> Any:
        sock = gsocket.socket(_stdsocket.AF_INET, _stdsocket.SOCK_DGRAM)
        try:
            sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEADDR, 1)
            if hasattr(_stdsocket, "SO_REUSEPORT"):  # several nodes of one host on one group
                sock.setsockopt(_stdsocket.SOL_SOCKET, _stdsocket.SO_REUSEPORT, 1)
            if self.multicast:
                sock.bind((self.group, self.port))
                local = _stdsocket.inet_aton(self.interface or "0.0.0.0")
                sock.setsockopt(
                    _stdsocket.IPPROTO_IP, _stdsocket.IP_ADD_MEMBERSHIP, _stdsocket.inet_aton(self.group) + local
                )
                sock.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_MULTICAST_TTL, self.ttl)
                sock.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_MULTICAST_LOOP, 1)
                if self.interface:
                    sock.setsockopt(_stdsocket.IPPROTO_IP, _stdsocket.IP_MULTICAST_IF, local)
            else:
                sock.bind((self.group, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _send(self, writer: BeaconWriter) -> None:
        while True:
            try:
                self._sock.sendto(writer.next(), (self.group, self.port))
            except OSError as exc:  # (no route yet, interface down): the next beacon tries again
                log.debug("discovery: beacon not sent: %s", exc)
            gevent.sleep(self.beacon_interval)

    def _receive(self, reader: BeaconReader) -> None:
        own = self.member.name if self.member is not None else ""
        while True:
            try:
                data, _address = self._sock.recvfrom(MAX_BEACON + 1)
            except OSError as exc:  # (an ICMP error reported on the socket): go on listening
                log.debug("discovery: %r: receive failed: %s", self, exc)
                gevent.sleep(self.beacon_interval)
                continue
            try:
                beacon = reader.read(data)
            except BeaconError as exc:
                self.refused[exc.reason] += 1
                if sum(self.refused.values()) == 1:
                    log.warning("discovery: %r refused a beacon from %s: %s (counted from now on)", self, _address, exc)
                continue
            name = beacon.name
            if name == own:
                continue
            if name not in self._heard:
                if len(self._heard) >= self.max_nodes:
                    self.refused["full"] += 1
                    continue
                self._heard[name] = monotonic()
                self.changed.set()  # a new node: the loop asks at once
            else:
                self._heard[name] = monotonic()
