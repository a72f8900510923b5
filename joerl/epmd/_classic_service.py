"""ClassicService: the daemon's answers to Erlang's EPMD requests (no IO).

Wire layout: see :mod:`._classic` (``Len:16 | op | ...`` in, one reply out,
then the daemon closes, except after ALIVE2). This module owns what the
daemon *decides*, as epmd 25 does: PORT_PLEASE2 and NAMES are served to
anyone; ALIVE2, DUMP, KILL and STOP to local peers only (loopback, or the
daemon's own address), an empty answer meaning "close without a word";
a taken or refused ALIVE2 name gets ``Result 1, Creation 99``; a version < 6
node gets ``creation % 3 + 1``; KILL is refused while names live and STOP
is obeyed, unless ``relaxed_command_check``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import protocol as p
from ._table import Holder, NameTable

__all__ = ["ClassicService"]

log = logging.getLogger("joerl.epmd.server")


class ClassicService:
    """Answers Erlang's requests against one :class:`NameTable`.

    Args:
        table: the daemon's names.
        relaxed_command_check: obey KILL with live names, and STOP.
        kill: called after a KILL the daemon obeys (it must not block).
    """

    def __init__(self, table: NameTable, *, relaxed_command_check: bool, kill: Callable[[], object]) -> None:
        self._table = table
        self.relaxed_command_check = relaxed_command_check
        self._kill = kill

    def answer(self, conn: Holder, req: p.ClassicRequest, epmd_port: int) -> bytes:
        """The reply to ``req`` from ``conn`` (``b""``: close without one).

        After an ALIVE2 that got a reply, the connection holds the
        registration (``conn.entry``) if the reply is a success.
        """
        table = self._table
        if isinstance(req, p.PortPlease2Req):
            e = table.get(req.name)
            return p.Port2Resp(None if e is None else e.node).encode()
        if isinstance(req, p.NamesReq):
            return table.names_reply(epmd_port)
        if isinstance(req, (p.Alive2Req, p.Alive2Rejected)):
            return self._alive2(conn, req)
        if not conn.local:
            log.warning("refused %s from non-local %s", type(req).__name__, conn.describe())
            return b""
        if isinstance(req, p.DumpReq):
            return table.dump_reply(epmd_port)
        if isinstance(req, p.KillReq):
            if table and not self.relaxed_command_check:
                log.warning("refused KILL: live names")
                return b"NO"
            log.info("killed by a KILL request from %s", conn.describe())
            self._kill()
            return b"OK"
        assert isinstance(req, p.StopReq)
        if not self.relaxed_command_check:
            log.warning("refused STOP %s: not in relaxed mode", req.name)
            return b""
        e = table.get(req.name)
        if e is None:
            return b"NOEXIST"
        table.evict(e, "stopped by a STOP request")
        return b"STOPPED"

    def _alive2(self, conn: Holder, req: p.Alive2Req | p.Alive2Rejected) -> bytes:
        if not conn.local:
            log.warning("refused ALIVE2 from non-local %s", conn.describe())
            return b""
        extended = req.highest_version >= 6
        if isinstance(req, p.Alive2Rejected):
            log.warning("refused ALIVE2: %s", req.reason)
        elif req.name in self._table:
            log.warning("refused ALIVE2 %s: name in use", req.name)
        else:
            cr = self._table.next_creation(req.name)
            node = p.NodeInfo(
                req.name,
                "",
                req.port,
                {},
                cr if extended else cr % 3 + 1,
                req.node_type,
                req.protocol,
                req.highest_version,
                req.lowest_version,
                req.extra,
                "erlang",
            )
            entry = self._table.add(node, conn)
            return p.Alive2Resp(0, entry.node.creation, extended).encode()
        return p.Alive2Resp(1, p.ALIVE2_ERROR_CREATION, extended).encode()
