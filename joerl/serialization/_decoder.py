"""The two halves of a ``Codec`` that run per message: ``Encoder`` (a Packer
and whether it is in use) and ``Decoder`` (the hooks and bookkeeping of one
decode). ``_codec.py`` holds the codec that owns them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from ..errors import DecodeError, SerializationError
from ..pid import make_pid as _make_pid
from ._budget import Budget, check_size, first_budget, payload_budget
from ._idents import SAMPLE, put
from ._limits import ExtWalk
from ._wire import (
    EXT_BIGINT,
    EXT_MESSAGE,
    EXT_PID,
    EXT_RECORD,
    EXT_REF,
    EXT_TUPLE,
    IDENT,
    MIN_BIG_MAP,
    TUPLE_MARK,
    RecordHead,
    TupleMark,
    checked_dict,
    dec_bigint,
)

if TYPE_CHECKING:
    from ._codec import Codec

_unpackb = msgpack.unpackb
_unpack = IDENT.unpack


class Encoder:
    """A Packer and whether it is in use (a busy one is never re-entered)."""

    __slots__ = ("pack", "busy")

    def __init__(self, codec: Codec) -> None:
        packer = msgpack.Packer(
            default=codec._default, strict_types=True, use_bin_type=True, datetime=True, autoreset=True
        )
        self.pack: Callable[[Any], bytes] = packer.pack
        self.busy = False


class Decoder:
    """The hooks of one decode, its count of unconsumed ext 3/6 markers, and
    what a registered message's payload decoded inside it may still use.

    ``budget`` is None for an outermost decode (until a payload is decoded
    again), else the ``Budget`` given to a payload's (fresh) decoder by
    ``Codec._decode_payload``; ``count`` counts the ext 4s met; ``walk``
    finds where they sit in ``data``, once a payload is decoded again (most
    deserializers read bytes: no walk); ``payloads`` counts those decodes.
    """

    __slots__ = (
        "codec", "idents", "pid_in", "ref_in", "plain_pids", "made", "busy", "pending", "ext_hook", "list_hook", "data", "budget",
        "count", "walk", "payloads", "frame",
    )  # fmt: skip

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.idents = idents = codec.idents
        self.pid_in = idents.pid_in
        self.ref_in = idents.ref_in
        self.plain_pids = idents.decode_pid is None  # new Pids need no hook call: made inline
        self.made = 0  # Pids made inline (one in SAMPLE is cached, as Idents.new_pid does)
        self.busy = False
        self.pending = 0
        self.ext_hook = self._ext_hook
        self.list_hook = self._list_hook
        self.data = b""
        self.budget: Budget | None = None
        self.count = 0
        self.walk: ExtWalk | None = None
        self.payloads = 0
        self.frame: tuple[Codec, Decoder | None] = (codec, self)  # the active frame in its deserializers

    @staticmethod
    def as_bytes(data: Any) -> bytes:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"decode() takes bytes, not {type(data).__name__}")
        return bytes(data)

    def run(self, data: bytes | bytearray | memoryview) -> Any:
        codec = self.codec
        if data.__class__ is not bytes:
            data = self.as_bytes(data)
        size = len(data)
        if size > codec._check_above:
            check_size(data, codec.limits)  # (a payload decoded again was checked against its budget too)
        self.data = data
        # A map of more than 15 pairs (map16/map32 header: 0xde, 0xdf) is built by
        # checked_dict, which refuses keys with colliding hashes (hash flooding).
        flood_check = size >= MIN_BIG_MAP and (0xDE in data or 0xDF in data)  # int: a memchr
        self.busy = True
        self.pending = 0
        try:
            if size <= codec._small and not flood_check:
                obj = _unpackb(
                    data, ext_hook=self.ext_hook, list_hook=self.list_hook, strict_map_key=False, timestamp=3
                )
            else:
                obj = _unpackb(
                    data,
                    ext_hook=self.ext_hook,
                    list_hook=self.list_hook,
                    strict_map_key=False,
                    timestamp=3,
                    object_pairs_hook=checked_dict if flood_check else None,
                    **(codec._big_limits if size > codec._small else {}),
                )
        except SerializationError:
            raise
        except Exception as exc:
            raise DecodeError(f"malformed message: {exc or type(exc).__name__}") from exc
        finally:
            self.busy = False
            self.data = b""
            if self.count:  # it met a registered message
                self.count = 0
                if self.walk is not None:  # and decoded a payload again
                    self.forget_walk()
        if self.pending:
            raise DecodeError("a tuple or record marker outside the head of an array")
        return obj

    def forget_walk(self) -> None:
        """The end of a decode that decoded a payload again (see ``payload_budget``)."""
        self.walk = None
        self.payloads = 0
        self.budget = None  # (only a payload's decoder is given one; it is not reused)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_PID:
            pid = self.pid_in.get(data)
            if pid is not None:
                return pid
            if self.plain_pids and len(data) == 16:  # (Idents.new_pid, inline: a call per new Pid counts)
                pid = _make_pid(*_unpack(data))
                self.made += 1
                if not self.made % SAMPLE:
                    put(self.pid_in, data, pid)
                return pid
            return self.idents.new_pid(data)
        if code == EXT_TUPLE:
            if data:
                raise DecodeError("a tuple marker with a payload")
            self.pending += 1
            return TUPLE_MARK
        if code == EXT_RECORD:
            codec = self.codec
            head = codec._heads.get(data) or codec._dec_head(data)
            self.pending += 1
            return head
        if code == EXT_MESSAGE:
            self.count += 1  # payload_budget() tells which one is being deserialized
            return self.codec._dec_message(data, 0, self)
        if code == EXT_REF:
            ref = self.ref_in.get(data)
            return ref if ref is not None else self.idents.new_ref(data)
        if code == EXT_BIGINT:
            return dec_bigint(data, self.codec.limits.max_int_bytes)
        raise DecodeError(f"unknown ext type {code}")

    def payload_budget(self) -> Budget:
        """What the payload of the registered message being deserialized (the
        last ext 4 met) may use when decoded again (see ``_budget.payload_budget``)."""
        budget = self.budget
        if budget is None:
            budget = self.budget = first_budget(self.codec.limits)
        walk = self.walk
        if walk is None:
            walk = self.walk = ExtWalk(self.data, EXT_MESSAGE)
        self.payloads += 1
        return payload_budget(budget, walk, len(self.data), self.count - 1, self.payloads)

    def _list_hook(self, items: list[Any]) -> Any:
        if items:
            head = items[0]
            cls = head.__class__
            if cls is TupleMark:
                self.pending -= 1
                return tuple(items[1:])
            if cls is RecordHead:
                self.pending -= 1
                return self.codec._dec_record(head, items)
        return items
