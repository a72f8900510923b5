"""NodeInfo: what a port mapper knows about one registered node (both protocols).

Wire layout: the record travels in two shapes. In Erlang's PORT2_RESP it is
fixed binary fields (see :mod:`._classic`)::

    PortNo:16 NodeType:8 Protocol:8 Highest:16 Lowest:16 Nlen:16 Name Elen:16 Extra

In joerl's extension it is a msgpack map (:meth:`NodeInfo.to_map`)::

    {name, host, port, metadata, creation, type, proto, high, low, extra, kind}

Sans-IO: no socket, no gevent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..address import format_address
from ._wire import NODE_TYPE_NORMAL, U16, U32, as_map, bin_field, int_field, metadata_field, str_field

__all__ = ["NodeInfo"]


@dataclass(frozen=True)
class NodeInfo:
    """What a port mapper knows about a registered node.

    Attributes:
        name: the alive name (no ``@host``).
        host: where the node listens; ``""`` from the daemon means the
            daemon's own host (the client fills it in).
        port: the node's distribution listen port.
        metadata: free-form plain data given at registration (joerl only).
        creation: the incarnation number the daemon assigned (0 if unknown).
        node_type: 77 normal, 72 hidden (echoed, never interpreted).
        protocol: 0 for TCP/IP.
        highest_version: highest distribution protocol version.
        lowest_version: lowest distribution protocol version.
        extra: opaque bytes given at registration.
        kind: ``"joerl"`` (extension), ``"erlang"`` (ALIVE2) or ``""`` (unknown).
    """

    name: str
    host: str
    port: int
    metadata: dict[str, Any] = field(default_factory=dict)
    creation: int = 0
    node_type: int = NODE_TYPE_NORMAL
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 6
    extra: bytes = b""
    kind: str = ""

    @property
    def address(self) -> str:
        """``"host:port"`` of the node."""
        return format_address(self.host, self.port)

    def with_host(self, host: str) -> NodeInfo:
        """A copy whose empty host is replaced by ``host``."""
        if self.host:
            return self
        return NodeInfo(
            self.name,
            host,
            self.port,
            self.metadata,
            self.creation,
            self.node_type,
            self.protocol,
            self.highest_version,
            self.lowest_version,
            self.extra,
            self.kind,
        )

    def to_map(self) -> dict[str, Any]:
        """The node as the extension's msgpack map."""
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "metadata": self.metadata,
            "creation": self.creation,
            "type": self.node_type,
            "proto": self.protocol,
            "high": self.highest_version,
            "low": self.lowest_version,
            "extra": self.extra,
            "kind": self.kind,
        }

    @classmethod
    def from_map(cls, m: object) -> NodeInfo:
        """Parse the extension's node map.

        Raises:
            EpmdProtocolError: not a node map.
        """
        m = as_map(m, "node")
        return cls(
            name=str_field(m, "name"),
            host=str_field(m, "host", ""),
            port=int_field(m, "port", U16),
            metadata=metadata_field(m.get("metadata", {})),
            creation=int_field(m, "creation", U32, 0),
            node_type=int_field(m, "type", 255, NODE_TYPE_NORMAL),
            protocol=int_field(m, "proto", 255, 0),
            highest_version=int_field(m, "high", U16, 6),
            lowest_version=int_field(m, "low", U16, 6),
            extra=bin_field(m, "extra", b""),
            kind=str_field(m, "kind", ""),
        )
