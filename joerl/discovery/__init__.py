"""Discovery: which nodes should be in the cluster, from a source (like Elixir's libcluster).

A strategy (:class:`Discovery`) lists node names; the node's
:class:`DiscoveryLoop` (``DistributedSystem(discovery=strategy)``) connects
to them and disconnects those no longer listed. See docs/discovery.md.

Strategies: :class:`StaticDiscovery` (a fixed list), :class:`EpmdDiscovery`
(every node registered at the port mappers of some hosts),
:class:`DnsDiscovery` (A/AAAA or SRV records; extra ``dns``),
:class:`EtcdDiscovery` (keys under a prefix, with leases; extra ``etcd``) and
:class:`MulticastDiscovery` (signed UDP beacons on a LAN).
"""

from __future__ import annotations

from ._dns import DnsDiscovery
from ._etcd import EtcdDiscovery
from ._loop import DiscoveryLoop, DiscoveryStats
from ._multicast import MulticastDiscovery
from ._portmapper import EpmdDiscovery
from ._static import StaticDiscovery
from ._strategy import Discovery, IDiscovery, Member

__all__ = [
    "Discovery",
    "DiscoveryLoop",
    "DiscoveryStats",
    "DnsDiscovery",
    "EpmdDiscovery",
    "EtcdDiscovery",
    "IDiscovery",
    "Member",
    "MulticastDiscovery",
    "StaticDiscovery",
]
