"""The daemon's name table: live registrations, remembered old names, creations.

One table holds Erlang's registrations (ALIVE2) and joerl's alike, in
registration order. A name that goes away is remembered (at most
:data:`REMEMBERED_NAMES`, as epmd's ``MAX_UNREG_COUNT``) with its last
creation, port and fd: the next registration of that name gets the next
creation, and DUMP lists the old names. The NAMES and extension ``list``
replies are cached until the table changes.

Creations, as epmd 25 hands them out: per name, ``max(4, now + 1)`` the
first time, plus one at each new registration, within 32 bits and never
below 4.

No IO: the connection that holds a registration is an opaque
:class:`Holder` that the table can only detach and shut down.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from ._classic import encode_dump, encode_names
from ._ext import NodeList
from ._node import NodeInfo
from ._wire import U32

__all__ = ["REMEMBERED_NAMES", "Entry", "Holder", "NameTable"]

log = logging.getLogger("joerl.epmd.server")

REMEMBERED_NAMES = 1000  # epmd's MAX_UNREG_COUNT


class Holder(Protocol):
    """The connection holding a registration, as the table sees it."""

    fd: int
    local: bool
    entry: Entry | None
    #: The nonce of the connection's last challenge (:mod:`._auth`), if unused.
    nonce: bytes | None

    def shutdown(self) -> None:
        """Wake the greenlet serving the connection (it then closes it)."""

    def describe(self) -> str:
        """The peer, for log lines."""


class Entry:
    """One live registration: the node, its connection, and when it last showed life."""

    __slots__ = ("node", "conn", "last_seen")

    def __init__(self, node: NodeInfo, conn: Holder, last_seen: float) -> None:
        self.node = node
        self.conn = conn
        self.last_seen = last_seen


class NameTable:
    """The registered names of one daemon.

    Args:
        clock: monotonic seconds, for ``last_seen``.
        wallclock: seconds since the epoch, for first creations.
        remembered: how many old names to remember.
    """

    def __init__(
        self, clock: Callable[[], float], wallclock: Callable[[], float], remembered: int = REMEMBERED_NAMES
    ) -> None:
        self._clock = clock
        self._wallclock = wallclock
        self._remembered = remembered
        self._entries: dict[str, Entry] = {}  # registration order
        self._old: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # name -> (creation, port, fd)
        self._names_cache: bytes | None = None
        self._list_cache: bytes | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry | None:
        return self._entries.get(name)

    def nodes(self) -> list[NodeInfo]:
        """The registered nodes, oldest first."""
        return [e.node for e in self._entries.values()]

    def next_creation(self, name: str) -> int:
        """The creation for a new registration of ``name`` (forgets its old entry)."""
        old = self._old.pop(name, None)
        if old is None:
            return max(4, int(self._wallclock()) + 1) & U32 or 4
        cr = old[0] + 1
        return cr if 4 <= cr <= U32 else 4

    def add(self, node: NodeInfo, conn: Holder) -> Entry:
        """Register ``node``, held by ``conn`` (the caller checked the name is free)."""
        entry = Entry(node, conn, self._clock())
        self._entries[node.name] = entry
        conn.entry = entry
        self._names_cache = self._list_cache = None
        log.info(
            "registered %s port=%d creation=%d (%s) from %s",
            node.name,
            node.port,
            node.creation,
            node.kind,
            conn.describe(),
        )
        return entry

    def remove(self, entry: Entry, why: str | None) -> None:
        """Unregister ``entry`` (if still live) and remember its name; log ``why`` if given."""
        name = entry.node.name
        if self._entries.get(name) is not entry:
            return
        del self._entries[name]
        self._names_cache = self._list_cache = None
        self._old[name] = (entry.node.creation, entry.node.port, entry.conn.fd)
        while len(self._old) > self._remembered:
            self._old.popitem(last=False)
        if why:
            log.info("unregistered %s (%s)", name, why)

    def evict(self, entry: Entry, why: str | None) -> None:
        """Unregister ``entry`` and close the connection that held it."""
        self.remove(entry, why)
        entry.conn.entry = None
        entry.conn.shutdown()

    def stale(self, deadline: float) -> list[Entry]:
        """joerl registrations last seen before ``deadline`` (Erlang's have no keep-alive)."""
        return [e for e in self._entries.values() if e.node.kind == "joerl" and e.last_seen < deadline]

    def names_reply(self, epmd_port: int) -> bytes:
        """The NAMES reply: newest registration first."""
        if self._names_cache is None:
            newest_first = [(e.node.name, e.node.port) for e in reversed(self._entries.values())]
            self._names_cache = encode_names(epmd_port, newest_first)
        return self._names_cache

    def list_reply(self) -> bytes:
        """The extension's ``nodes`` reply: oldest registration first."""
        if self._list_cache is None:
            self._list_cache = NodeList(tuple(self.nodes())).encode()
        return self._list_cache

    def dump_reply(self, epmd_port: int) -> bytes:
        """The DUMP reply: live names (newest first), then the remembered ones."""
        old = [(n, port, fd) for n, (_, port, fd) in self._old.items()]
        active = [(e.node.name, e.node.port, e.conn.fd) for e in reversed(self._entries.values())]
        return encode_dump(epmd_port, active, old)
