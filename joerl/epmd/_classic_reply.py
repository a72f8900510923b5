"""ClassicReplyDecoder: client side of Erlang's EPMD protocol, the bytes after one request.

Wire layout (every integer big-endian; replies have no length prefix; see
:mod:`._classic` for the requests)::

    ALIVE2_X_RESP  'v'(118) Result:8 Creation:32            fixed size
    ALIVE2_RESP    'y'(121) Result:8 Creation:16            fixed size
    PORT2_RESP     'w'(119) 0 PortNo:16 NodeType:8 Protocol:8 Highest:16 Lowest:16
                   Nlen:16 Name Elen:16 Extra                (hit)
                   'w'(119) 1                                (miss)
    NAMES          EpmdPort:32 ("name <Name> at port <Port>\\n")*        until close
    DUMP           EpmdPort:32 (line "\\0")*                               until close
    KILL           "OK" | "NO"                                           until close
    STOP           "STOPPED" | "NOEXIST"                                 until close

Sans-IO: no socket, no gevent.
"""

from __future__ import annotations

import re
import struct

from ..errors import EpmdProtocolError, LocalProtocolError
from ._classic import (
    ALIVE2_RESP,
    ALIVE2_X_RESP,
    PORT2_RESP,
    Alive2Req,
    Alive2Resp,
    ClassicReply,
    DumpReq,
    DumpResp,
    KillReq,
    KillResp,
    NamesReq,
    NamesResp,
    Port2Resp,
    PortPlease2Req,
    StopReq,
    StopResp,
)
from ._node import NodeInfo
from ._wire import describe, name_problem

__all__ = ["ClassicReplyDecoder"]


class ClassicReplyDecoder:
    """Client side: bytes after one Erlang request -> its reply.

    ALIVE2 and PORT_PLEASE2 replies end where their layout ends: ``feed``
    returns the reply once complete (bytes after it stay in ``trailing``).
    NAMES, DUMP, KILL and STOP replies end when the daemon closes: ``feed``
    returns None and ``feed_eof`` parses.

    Args:
        request: the request this reply answers.
        max_size: largest reply accepted.
    """

    def __init__(self, request: object, max_size: int = 64 * 1024 * 1024) -> None:
        self._kind = type(request)
        if self._kind not in (Alive2Req, PortPlease2Req, NamesReq, DumpReq, KillReq, StopReq):
            raise LocalProtocolError(f"{self._kind.__name__} has no Erlang reply")
        self._buf = bytearray()
        self._max = max_size
        self._done: ClassicReply | None = None
        self.trailing = b""

    def feed(self, data: bytes) -> ClassicReply | None:
        """Add received bytes; return the reply if they complete it.

        Raises:
            EpmdProtocolError: the bytes are not the expected reply.
        """
        if self._done is not None:
            self.trailing += data
            return self._done
        self._buf += data
        if len(self._buf) > self._max:
            raise EpmdProtocolError(f"reply over {self._max} bytes")
        if self._kind is Alive2Req:
            self._done = self._alive2()
        elif self._kind is PortPlease2Req:
            self._done = self._port2()
        return self._done

    def feed_eof(self) -> ClassicReply:
        """The daemon closed the connection: return the complete reply.

        Raises:
            EpmdProtocolError: the reply is missing or incomplete.
        """
        if self._done is not None:
            return self._done
        buf = bytes(self._buf)
        k = self._kind
        if k in (Alive2Req, PortPlease2Req):
            what = "ALIVE2" if k is Alive2Req else "PORT2"
            raise EpmdProtocolError(f"connection closed after {len(buf)} bytes of a {what} reply")
        if k is KillReq:
            if buf not in (b"OK", b"NO"):
                raise EpmdProtocolError(f"KILL reply {describe(buf)} is neither OK nor NO")
            return KillResp(buf == b"OK")
        if k is StopReq:
            if not buf or not buf.isalpha() or not buf.isascii():
                raise EpmdProtocolError(f"STOP reply {describe(buf)} is not a word")
            return StopResp(buf.decode("ascii"))
        if len(buf) < 4:
            raise EpmdProtocolError(f"reply of {len(buf)} bytes lacks the daemon's port")
        (port,) = struct.unpack_from(">I", buf)
        try:
            text = buf[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise EpmdProtocolError("reply text is not UTF-8") from None
        if k is DumpReq:
            parts = text.split("\0")
            if parts[-1]:
                raise EpmdProtocolError("DUMP reply does not end with NUL")
            return DumpResp(port, tuple(parts[:-1]))
        return _parse_names(port, text)

    def _alive2(self) -> ClassicReply | None:
        buf = self._buf
        if not buf:
            return None
        if buf[0] == ALIVE2_X_RESP:
            size, fmt, ext = 6, ">BBI", True
        elif buf[0] == ALIVE2_RESP:
            size, fmt, ext = 4, ">BBH", False
        else:
            raise EpmdProtocolError(f"ALIVE2 reply starts with {buf[0]}")
        if len(buf) < size:
            return None
        _, result, creation = struct.unpack_from(fmt, buf)
        self.trailing = bytes(buf[size:])
        return Alive2Resp(result, creation, ext)

    def _port2(self) -> ClassicReply | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        if buf[0] != PORT2_RESP:
            raise EpmdProtocolError(f"PORT2 reply starts with {buf[0]}")
        if buf[1] != 0:
            self.trailing = bytes(buf[2:])
            return Port2Resp(None)
        if len(buf) < 12:
            return None
        port, ntype, proto, high, low, nlen = struct.unpack_from(">HBBHHH", buf, 2)
        if len(buf) < 14 + nlen:
            return None
        (elen,) = struct.unpack_from(">H", buf, 12 + nlen)
        end = 14 + nlen + elen
        if len(buf) < end:
            return None
        try:
            name = bytes(buf[12 : 12 + nlen]).decode("utf-8")
        except UnicodeDecodeError:
            raise EpmdProtocolError("PORT2 reply name is not UTF-8") from None
        self.trailing = bytes(buf[end:])
        return Port2Resp(
            NodeInfo(name, "", port, {}, 0, ntype, proto, high, low, bytes(buf[14 + nlen : end]), "erlang")
        )


_NAMES_LINE = re.compile(r"name (.+) at port (\d+)")


def _parse_names(epmd_port: int, text: str) -> NamesResp:
    """The NAMES listing, one ``name N at port P`` a line.

    A line that is not one, or whose name could not have been registered (a
    daemon that let a name with a newline in forges lines), is left out and
    counted in ``skipped``: one bad registration never hides the others. A
    reply none of whose lines starts with ``name `` is no listing at all.

    Raises:
        EpmdProtocolError: the text does not end with a newline, or holds no
            line that starts with ``name ``.
    """
    if text and not text.endswith("\n"):
        raise EpmdProtocolError("NAMES reply does not end with a newline")
    if text and not (text.startswith("name ") or "\nname " in text):
        raise EpmdProtocolError(f"NAMES reply {describe(text, 80)} holds no 'name N at port P' line")
    nodes: list[tuple[str, int]] = []
    skipped = 0
    for line in text.split("\n")[:-1]:
        match = _NAMES_LINE.fullmatch(line)
        if match is None or name_problem(match[1], host_ok=True) or int(match[2]) > 0xFFFF:
            skipped += 1
        else:
            nodes.append((match[1], int(match[2])))
    return NamesResp(epmd_port, tuple(nodes), skipped)
