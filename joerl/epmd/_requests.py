"""RequestDecoder: the daemon side of one connection, whichever protocol it speaks.

Wire layout (every integer big-endian)::

    Len:16 | Body            Len bytes; Body[0] is the opcode

An opcode of Erlang's (:mod:`._classic`) needs ``Len`` in 1..3057; joerl's
``'J'`` (:mod:`._ext`) in 1..``max_ext_len`` (65535). The length and the
opcode are checked as soon as they arrive, before the rest of the body, so
a peer cannot make the daemon buffer what it will refuse.

Sans-IO: no socket, no gevent.
"""

from __future__ import annotations

from ..errors import EpmdProtocolError
from ._classic import CLASSIC_OPS, ClassicRequest, decode_classic_body
from ._ext import OP_JOERL, ExtRequest, decode_ext_body
from ._wire import MAX_EXT_LEN, MAX_REQUEST_LEN

__all__ = ["KNOWN_OPS", "Request", "RequestDecoder", "decode_request_body"]

Request = ClassicRequest | ExtRequest
KNOWN_OPS = CLASSIC_OPS | {OP_JOERL}


def decode_request_body(body: bytes) -> Request:
    """Decode one request body (without its ``Len:16``).

    Raises:
        EpmdProtocolError: the body is malformed or its opcode unknown.
    """
    if body[:1] == bytes([OP_JOERL]):
        return decode_ext_body(body[1:])
    return decode_classic_body(body)


class RequestDecoder:
    """Daemon side: bytes from one connection -> requests.

    ``feed`` returns every request completed so far; bytes of an unfinished
    request stay buffered (``buffered`` counts them). After a protocol error
    the decoder refuses further input.

    Args:
        max_ext_len: largest extension request body accepted.
    """

    def __init__(self, max_ext_len: int = MAX_EXT_LEN) -> None:
        self._buf = bytearray()
        self._error: EpmdProtocolError | None = None
        self._max_ext = max_ext_len

    @property
    def buffered(self) -> int:
        """Bytes received that are not part of a returned request."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Request]:
        """Add received bytes; return the requests they complete.

        Raises:
            EpmdProtocolError: the bytes break the protocol.
        """
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[Request] = []
        try:
            while True:
                req = self._next()
                if req is None:
                    return out
                out.append(req)
        except EpmdProtocolError as exc:
            self._error = exc
            raise

    def _next(self) -> Request | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        n = (buf[0] << 8) | buf[1]
        if n == 0:
            raise EpmdProtocolError("request length 0")
        if len(buf) < 3:
            return None
        op = buf[2]
        if op == OP_JOERL:
            if n > self._max_ext:
                raise EpmdProtocolError(f"extension request of {n} bytes is over {self._max_ext}")
        elif n > MAX_REQUEST_LEN:
            raise EpmdProtocolError(f"request length {n} is over epmd's limit of {MAX_REQUEST_LEN}")
        if op not in KNOWN_OPS:
            raise EpmdProtocolError(f"unknown opcode {op} ({chr(op)!r})")
        if len(buf) < n + 2:
            return None
        body = bytes(buf[2 : n + 2])
        del buf[: n + 2]
        return decode_request_body(body)
