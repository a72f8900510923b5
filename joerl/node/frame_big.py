"""Big link frames in: read into a buffer of their own, decoded from it (sans-IO).

A frame whose body has ``LARGE_BODY`` bytes or more would otherwise grow the
:class:`~joerl.node.frame_decoder.FrameDecoder`'s input buffer read by read,
then be copied into the link's streaming Unpacker, whose buffer then stays as
large for the link's life. Its body goes instead into a :class:`BigBody`
(its length prefix was checked against ``max_frame`` first), filled as the
bytes come, then decoded straight from it by :func:`decode`, with the
Unpacker's limits: one copy of a payload, into the message, and nothing of
it kept once decoded. Opens no socket, imports no gevent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack

from ..errors import FrameError
from .compression import COMPRESSED, CompressionError

__all__ = ["LARGE_BODY", "BigBody", "decode"]

#: A frame body of this many bytes or more is read into a :class:`BigBody`.
LARGE_BODY = 256 * 1024


class BigBody:
    """The body of one big frame, filled as its bytes come.

    It grows with them (the announced size is not allocated up front: a
    peer holds as much of this node's memory as it has sent).

    Args:
        buf: the bytes buffered so far: the frame's length prefix, then the
            start of its body (moved here; ``buf`` keeps the prefix).
    """

    __slots__ = ("body", "size")

    def __init__(self, buf: bytearray) -> None:
        self.size = int.from_bytes(buf[:4], "big")
        self.body = bytearray(memoryview(buf)[4:])
        del buf[4:]

    @property
    def filled(self) -> int:
        """The body's bytes received so far."""
        return len(self.body)

    def fill(self, data: bytes) -> bytes | None:
        """Take ``data``: None while the body is not whole, else the bytes
        of ``data`` that follow it (the next frames; may be empty)."""
        body = self.body
        missing = self.size - len(body)
        if len(data) < missing:
            body += data
            return None
        with memoryview(data) as view:
            body += view[:missing]
            rest = bytes(view[missing:])
        return rest


def decode(
    body: bytearray, inflate: Callable[[bytes], bytes] | None, limits: dict[str, Any]
) -> tuple[Any, int] | FrameError:
    """A whole big body's msgpack value and size (inflated first when it is a
    compressed frame's), or the :class:`FrameError` it is."""
    size = len(body)
    data: bytes | bytearray = body
    if inflate is not None and body[0] == COMPRESSED:
        try:
            data = inflate(bytes(body))
        except CompressionError as exc:
            return FrameError(f"bad compressed frame: {exc}", size=size)
        size = len(data)
    try:
        return msgpack.unpackb(data, **limits), size
    except msgpack.ExtraData:
        return FrameError("body is not msgpack (extra data after the message)", size=size)
    except Exception as exc:
        return FrameError(f"body is not msgpack ({type(exc).__name__}: {exc})", size=size)
