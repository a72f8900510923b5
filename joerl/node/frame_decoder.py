"""Link frames in: :class:`FrameDecoder`, bytes to control messages (sans-IO).

Wire layout (``frames.py`` owns it)::

    Len:32 | Body        Len == 0 is a tick; 1 <= Len <= max_frame
    Body = msgpack array [op, field, ...]; trailing extra fields are ignored
           (but by SEND and SEND_TERMS, whose fields after the route are messages)

A length over ``max_frame`` raises :class:`OversizedFrame` before any body
byte is read (the stream is broken); a body that does not decode to a control
message (``messages.py``) is a :class:`FrameError` in the output, in its place
(framing is intact: skip it). Opens no socket, imports no gevent. Import
these names from :mod:`joerl.node.protocol`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

import msgpack

from .._describe import describe as _describe
from ..errors import FrameError, OversizedFrame
from ..pid import Pid
from .compression import COMPRESSED, CompressionError
from .frame_big import LARGE_BODY, BigBody, decode
from .frame_fields import (
    ARITY,
    Bad,
    bins,
    dbool,
    dbytes,
    dname,
    dpayload,
    dpayloads,
    dref,
    dterms,
    duint,
)
from .frame_fields import (
    call_msg as _call_msg,
)
from .frames import DEFAULT_MAX_FRAME_SIZE, MAX_TERMS_FRAME, ROUTE_PID
from .messages import (
    MAX_MESSAGES_PER_FRAME,
    OP_ACK,
    OP_ALIVE_REPLY,
    OP_ALIVE_REQUEST,
    OP_CALL,
    OP_CALL_REPLY,
    OP_DEMONITOR,
    OP_DOWN,
    OP_EXIT,
    OP_EXIT2,
    OP_FLOW,
    OP_LINK,
    OP_MONITOR,
    OP_NAMES,
    OP_REG_SEND,
    OP_SEND,
    OP_SEND_TERMS,
    OP_SPAWN_REPLY,
    OP_SPAWN_REQUEST,
    OP_UNLINK,
    OP_UNLINK_ACK,
    TERM_SCALARS,
    U32,
    U64,
    Ack,
    AliveReply,
    AliveRequest,
    Call,
    CallReply,
    Demonitor,
    Down,
    Exit,
    Exit2,
    Flow,
    Link,
    Message,
    Monitor,
    RegSend,
    Send,
    SendTerms,
    SpawnReply,
    SpawnRequest,
    Unlink,
    UnlinkAck,
    is_uint,
    plain_terms,
)

__all__ = ["FrameDecoder", "FrameError", "OversizedFrame"]

_unpack_len32 = struct.Struct(">I").unpack_from
_new_tuple = tuple.__new__


class FrameDecoder:
    """Turns the bytes of a link (after the handshake) into control messages.

    Feeding is O(n) in the bytes fed, however they are split: complete frames
    are decoded straight from the input, and only an incomplete tail is kept.
    Bodies go through one streaming msgpack ``Unpacker`` (much cheaper per
    frame than ``unpackb``), checked to consume exactly the frame's length;
    SEND with known pids takes an inlined fast path.

    Args:
        max_frame_size: the largest frame body accepted; a larger length
            prefix raises :class:`OversizedFrame` before any body byte is read.
        pid_cache_size: decoded pids are cached per link (the same few pids
            recur on a link); the cache is cleared when it holds this many.

    Attributes:
        ticks: ticks received so far (they are counted, not returned).
        acked: the count of the latest ACK received (ACKs are noted here,
            not returned; 0 before the first).
        frames: control messages and bad frames returned so far (a SEND of
            several payloads counts one for each; ticks do not count).
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, *, pid_cache_size: int = 4096) -> None:
        self.max_frame_size = max_frame_size
        #: ``inflate(body) -> body`` for compressed frames (``Decompressor.body``,
        #: set when this node offered compression); None: a compressed frame is a bad one.
        self.inflate: Callable[[bytes], bytes] | None = None
        self.ticks = 0
        self.acked = 0
        self.frames = 0
        self._buf = bytearray()
        self._broken: OversizedFrame | None = None
        self._pids: dict[Any, Pid] = {}
        self._routes: dict[bytes, tuple[Pid | None, Pid]] = {}  # SEND's route -> (sender, to)
        self._pid_cache_size = pid_cache_size
        self._pos = 0
        self._big: BigBody | None = None  # a big frame's body, being filled (frame_big.py)
        self._new_unpacker()
        self._ops: dict[int, Callable[[tuple[Any, ...]], Message | list[Send]]] = {
            OP_SEND: lambda t: [Send(*route, p) for route in (self._route(t[1]),) for p in dpayloads(t)],
            OP_REG_SEND: lambda t: RegSend(
                self._opt_pid(t[1], "sender"), dname(t[2], "to_name"), dbytes(t[3], "payload")
            ),
            OP_LINK: lambda t: Link(self._pid(t[1], "sender"), self._pid(t[2], "to")),
            OP_UNLINK: lambda t: Unlink(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_UNLINK_ACK: lambda t: UnlinkAck(self._pid(t[1], "sender"), self._pid(t[2], "to"), self._id(t[3])),
            OP_EXIT: lambda t: Exit(self._pid(t[1], "sender"), self._pid(t[2], "to"), dbytes(t[3], "reason")),
            OP_EXIT2: lambda t: Exit2(self._opt_pid(t[1], "sender"), self._pid(t[2], "to"), dbytes(t[3], "reason")),
            OP_MONITOR: lambda t: Monitor(self._pid(t[1], "sender"), self._target(t[2], "to"), dref(t[3])),
            OP_DEMONITOR: lambda t: Demonitor(self._pid(t[1], "sender"), self._target(t[2], "to"), dref(t[3])),
            OP_DOWN: lambda t: Down(
                self._target(t[1], "sender"), self._pid(t[2], "to"), dref(t[3]), dbytes(t[4], "reason")
            ),
            OP_SPAWN_REQUEST: lambda t: SpawnRequest(
                dref(t[1]), self._pid(t[2], "sender"), dname(t[3], "factory"), dbytes(t[4], "args"),
                dbool(t[5], "link"), dbool(t[6], "monitor"),
            ),
            OP_SPAWN_REPLY: lambda t: SpawnReply(
                dref(t[1]), self._pid(t[2], "to"), dname(t[3], "result") if type(t[3]) is str
                else self._pid(t[3], "result"),
            ),
            OP_ALIVE_REQUEST: lambda t: AliveRequest(dref(t[1]), self._pid(t[2], "pid")),
            OP_ALIVE_REPLY: lambda t: AliveReply(dref(t[1]), dbool(t[2], "alive")),
            OP_CALL_REPLY: lambda t: CallReply(dref(t[1]), dpayload(t[2]), len(t) > 3 and t[3] is True),
            OP_CALL: lambda t: Call(*self._caller_route(t[1]), dref(t[2]), dpayload(t[3])),
            OP_SEND_TERMS: lambda t: SendTerms(*self._route(t[1]), dterms(t)),
            OP_FLOW: lambda t: Flow(self._pid(t[1], "dest"), duint(t[2], 2, "kind"), duint(t[3], U32, "n")),
            OP_ACK: lambda t: Ack(duint(t[1], U64, "taken")),
        }  # fmt: skip

    def buffered(self) -> int:
        """How many bytes of an incomplete frame are waiting for the rest."""
        return len(self._buf) if self._big is None else 4 + self._big.filled

    def feed(self, data: bytes) -> list[Message | FrameError]:
        """Take bytes from the link; return the messages of every complete frame.

        A frame that cannot be decoded (not msgpack, unknown op, wrong fields)
        is returned as a :class:`FrameError` in its place: log it, count it,
        go on; the frames around it are unaffected.

        Raises:
            OversizedFrame: a length prefix exceeds ``max_frame_size``. The
                stream is broken: close the link. The messages decoded before
                it in this call are in the exception's ``messages``; every
                later call raises it again.
        """
        n = len(data)
        if 4 < n <= 4100 and not self._buf and self._broken is None:
            # The fast path: ``data`` is one whole small frame and no more (a
            # ping-pong's read), nothing buffered: the loop's checks, without its setup.
            size = n - 4
            if (
                _unpack_len32(data)[0] == size and size <= self.max_frame_size
                and (self.inflate is None or data[4] != COMPRESSED)
            ):  # fmt: skip
                feed, unpack, tell = self._feed, self._unpack, self._tell  # (attributes: no method lookups)
                feed(data[4:])
                pos = self._pos + size
                try:
                    t = unpack()
                except Exception as exc:
                    self.frames += 1
                    return [self._reset(f"body is not msgpack ({type(exc).__name__}: {exc})", size)]
                if tell() != pos:
                    self.frames += 1
                    return [self._reset("body is not msgpack (extra data after the message)", size)]
                self._pos = pos
                try:
                    op = t[0]
                    if op == OP_SEND_TERMS and op.__class__ is int and len(t) == 3 and size <= MAX_TERMS_FRAME:
                        m = t[2]
                        if m.__class__ is tuple and len(m) == 2:  # ("ping", 7)
                            if m[0].__class__ in TERM_SCALARS and m[1].__class__ in TERM_SCALARS:
                                sender, to = self._routes[t[1]]
                                self.frames += 1
                                return [_new_tuple(SendTerms, (sender, to, (m,)))]
                    elif op == OP_CALL_REPLY or op == OP_CALL:  # (a remote call's frames: as the loop does)
                        call_msg = _call_msg(t, op, self._routes, self._pids)
                        if call_msg is not None:
                            self.frames += 1
                            return [call_msg]
                except (LookupError, TypeError):
                    pass
                return self._one(t, size)
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        if buf:
            if self._big is not None:  # a big frame's body is being filled
                return self._fill(data)
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data
        end_all = len(src)
        off = 0
        out: list[Message | FrameError] = []
        append = out.append
        limit = self.max_frame_size
        feed, unpack, tell = self._feed, self._unpack, self._tell
        routes = self._routes
        inflate = self.inflate
        pos = self._pos  # bytes fed to the Unpacker (its tell() must agree)
        while end_all - off >= 4:
            (size,) = _unpack_len32(src, off)
            if size == 0:
                self.ticks += 1
                off += 4
                continue
            if size > limit:
                self._pos = pos
                err = OversizedFrame(size, limit)
                err.messages = out
                self._broken = err
                raise err
            end = off + 4 + size
            if end > end_all:
                break
            # One streaming Unpacker per link: far cheaper per frame than unpackb.
            if inflate is not None and src[off + 4] == COMPRESSED:
                try:
                    inflated = inflate(bytes(src[off + 4 : end]))
                except CompressionError as exc:
                    append(FrameError(f"bad compressed frame: {exc}", size=size))
                    off = end
                    continue
                size = len(inflated)
                feed(inflated)
            elif size <= 4096:
                feed(src[off + 4 : end])
            else:
                with memoryview(src) as mv, mv[off + 4 : end] as body:
                    feed(body)
            off = end
            pos += size
            try:
                t = unpack()
            except Exception as exc:
                append(self._reset(f"body is not msgpack ({type(exc).__name__}: {exc})", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            if tell() != pos:
                append(self._reset("body is not msgpack (extra data after the message)", size))
                feed, unpack, tell, pos = self._feed, self._unpack, self._tell, 0
                continue
            # The SEND and SEND_TERMS hot path, inlined: a known route, exact
            # types; anything else (a new route, a bad field) takes the general path.
            try:
                op = t[0]
                if op.__class__ is int and (op == OP_SEND_TERMS or op == OP_SEND):
                    sender, to = routes[t[1]]
                    if op == OP_SEND_TERMS:
                        msgs = t[2:]
                        m = msgs[0] if len(msgs) == 1 else None
                        if m.__class__ is tuple and len(m) == 2 and size <= MAX_TERMS_FRAME:  # ("ping", 7): inline
                            if m[0].__class__ in TERM_SCALARS and m[1].__class__ in TERM_SCALARS:
                                append(_new_tuple(SendTerms, (sender, to, msgs)))
                                continue
                        if size <= MAX_TERMS_FRAME and msgs and plain_terms(msgs):
                            append(_new_tuple(SendTerms, (sender, to, msgs)))
                            continue
                    elif len(t) == 3:
                        if (payload := t[2]).__class__ is bytes:
                            append(_new_tuple(Send, (sender, to, payload)))
                            continue
                    elif len(t) > 3 and bins(t):
                        for payload in t[2:]:
                            append(_new_tuple(Send, (sender, to, payload)))
                        continue
                elif op == OP_CALL or op == OP_CALL_REPLY or op == OP_MONITOR or op == OP_DEMONITOR:
                    call_msg = _call_msg(t, op, routes, self._pids)  # (a remote call's frames)
                    if call_msg is not None:
                        append(call_msg)
                        continue
            except (LookupError, TypeError):
                pass
            event = self._decode(t, size)
            if event.__class__ is list:  # a SEND of several payloads
                out += event
            elif event.__class__ is Ack:
                self.acked = event.taken
            else:
                append(event)  # type: ignore[arg-type]
        self._pos = pos
        self.frames += len(out)
        if src is buf:
            del buf[:off]
        elif off < end_all:
            buf += src[off:]
        if len(buf) >= 4 and _unpack_len32(buf)[0] >= LARGE_BODY:
            self._big = BigBody(buf)  # (which leaves the length prefix in buf: feed comes to _fill)
        return out

    def _fill(self, data: bytes) -> list[Message | FrameError]:
        """``data`` continues the big frame being filled: once it is whole, its
        messages (decoded from its buffer), then those of what follows it."""
        big = cast(BigBody, self._big)
        rest = big.fill(data)
        if rest is None:
            return []
        self._big = None
        self._buf = bytearray()
        decoded = decode(big.body, self.inflate, self._limits())
        del big
        if isinstance(decoded, FrameError):
            self.frames += 1
            out: list[Message | FrameError] = [decoded]
        else:
            out = self._one(*decoded)
        if rest:
            try:
                out += self.feed(rest)
            except OversizedFrame as exc:
                exc.messages[:0] = out
                raise
        return out

    def _one(self, t: Any, size: int) -> list[Message | FrameError]:
        """The fast path's body ``t`` (of ``size`` bytes), not a known route's
        ("ping", 7): what the loop of :meth:`feed` makes of it."""
        out: list[Message | FrameError] = []
        try:
            op = t[0]
            if op.__class__ is int and (op == OP_SEND_TERMS or op == OP_SEND):
                sender, to = self._routes[t[1]]
                if op == OP_SEND_TERMS:
                    msgs = t[2:]
                    if size <= MAX_TERMS_FRAME and msgs and plain_terms(msgs):
                        out.append(_new_tuple(SendTerms, (sender, to, msgs)))
                elif len(t) >= 3 and bins(t):
                    for payload in t[2:]:
                        out.append(_new_tuple(Send, (sender, to, payload)))
            elif op == OP_CALL or op == OP_CALL_REPLY or op == OP_MONITOR or op == OP_DEMONITOR:
                call_msg = _call_msg(t, op, self._routes, self._pids)  # (a remote call's frames)
                if call_msg is not None:
                    out.append(call_msg)
        except (LookupError, TypeError):
            pass
        if not out:
            event = self._decode(t, size)
            if event.__class__ is list:  # a SEND of several payloads
                out = event  # type: ignore[assignment]
            elif event.__class__ is Ack:
                self.acked = event.taken
            else:
                out.append(event)  # type: ignore[arg-type]
        self.frames += len(out)
        return out

    def _limits(self) -> dict[str, Any]:
        # Limits bound what a declared length can make msgpack allocate up front.
        return dict(
            use_list=False,
            raw=False,
            max_bin_len=self.max_frame_size,
            max_str_len=self.max_frame_size,  # a str allocates nothing before its bytes arrive
            # Bounds what one array header makes msgpack allocate, and the
            # messages of one SEND or SEND_TERMS frame (op, route, messages).
            max_array_len=MAX_MESSAGES_PER_FRAME + 2,
            max_map_len=64,
            max_ext_len=64,
        )

    def _new_unpacker(self) -> None:
        unpacker = msgpack.Unpacker(max_buffer_size=max(self.max_frame_size, 1 << 20), **self._limits())
        self._feed, self._unpack, self._tell = unpacker.feed, unpacker.unpack, unpacker.tell
        self._pos = 0

    def _reset(self, message: str, size: int) -> FrameError:
        """Drop the Unpacker's state after a bad body; framing is unaffected."""
        self._new_unpacker()
        return FrameError(message, size=size)

    def _decode(self, t: Any, size: int) -> Message | FrameError | list[Send]:
        if t.__class__ is not tuple or not t or t[0].__class__ is not int:
            return FrameError(f"body is not an array [op, ...]: {_describe(t)}", size=size)
        op = t[0]
        fn = self._ops.get(op)
        if fn is None:
            return FrameError(f"unknown control message type {op}", size=size, op=op)
        if len(t) < ARITY[op]:
            return FrameError(f"{OP_NAMES[op]} needs {ARITY[op] - 1} fields, got {len(t) - 1}", size=size, op=op)
        if op == OP_SEND_TERMS and size > MAX_TERMS_FRAME:
            return FrameError(f"SEND_TERMS: a frame of {size} bytes, over {MAX_TERMS_FRAME}", size=size, op=op)
        try:
            return fn(t)
        except Bad as exc:
            return FrameError(f"{OP_NAMES[op]}: {exc}", size=size, op=op)
        except Exception as exc:  # e.g. an unhashable pid triple: still just a bad frame
            return FrameError(f"{OP_NAMES[op]}: {type(exc).__name__}: {exc}", size=size, op=op)

    def _pid(self, x: Any, what: str) -> Pid:
        # Cached by triple: the same pids recur on a link. A cached triple is
        # one that was valid; a numerically equal one (1.0 for 1) maps to it.
        p = self._pids.get(x)
        if p is None:
            if type(x) is tuple and len(x) == 3:
                n, i, c = x
                if is_uint(n, U32) and n and is_uint(i, U64) and is_uint(c, U32):
                    p = cast(Pid, Pid._unchecked(n, i, c))
                    if len(self._pids) >= self._pid_cache_size:
                        self._pids.clear()
                    self._pids[x] = p
                    return p
            raise Bad(f"{what} must be a pid [node>0, id, creation], got {_describe(x)}")
        return p

    def _route(self, x: Any) -> tuple[Pid | None, Pid]:
        """A SEND / SEND_TERMS route (``to``'s 16 bytes, then the sender's, if any) -> (sender, to)."""
        r = self._routes.get(x) if x.__class__ is bytes else None
        if r is not None:
            return r
        if x.__class__ is not bytes or len(x) not in (16, 32):
            raise Bad(f"route must be a bin of 16 or 32 bytes (to, sender), got {_describe(x)}")
        to = self._route_pid(x, 0, "to")
        r = (self._route_pid(x, 16, "sender") if len(x) == 32 else None, to)
        if len(self._routes) >= self._pid_cache_size:
            self._routes.clear()
        self._routes[x] = r
        return r

    def _caller_route(self, x: Any) -> tuple[Pid, Pid]:
        """A CALL's route -> (sender, to): the sender must be there."""
        sender, to = self._route(x)
        if sender is None:
            raise Bad("route must name the sender (a bin of 32 bytes: to, sender)")
        return sender, to

    def _route_pid(self, x: bytes, offset: int, what: str) -> Pid:
        node, id_, creation = ROUTE_PID.unpack_from(x, offset)
        if not node:
            raise Bad(f"{what} in a route has node 0")
        return self._pid((node, id_, creation), what)

    def _opt_pid(self, x: Any, what: str) -> Pid | None:
        return None if x is None else self._pid(x, what)

    def _target(self, x: Any, what: str) -> Pid | str:
        return x if type(x) is str and x else self._pid(x, what)

    @staticmethod
    def _id(x: Any) -> int:
        if not is_uint(x, U64):
            raise Bad(f"unlink id must be an int in 0..{U64}, got {_describe(x)}")
        return x
