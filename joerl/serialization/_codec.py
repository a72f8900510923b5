"""Codec: one message <-> msgpack bytes, with joerl's ext types and limits.

Encoding is one ``msgpack.Packer.pack`` call: msgpack walks the message in C
and calls back (``default``) only for what it does not know: Pid, Ref, tuple,
ints beyond 64 bits and message types. Decoding is one ``msgpack.unpackb``
call whose ``ext_hook`` and ``list_hook`` rebuild those. The wire layout is in
the package docstring (``joerl/serialization/__init__.py``); the ext types'
bytes are built and read in ``_wire.py``, Pids and Refs pass the codec's
hooks in ``_idents.py``, and ``_budget.py`` bounds payloads decoded again.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import msgpack
from msgpack import ExtType

from ..errors import BrokenMessageType, DecodeError, SerializationError
from ..pid import Pid, Ref
from ._budget import Budget, check_payload, check_size, first_budget, payload_budget
from ._explain import Refused, explain
from ._frame import ACTIVE, run_deserializer
from ._idents import CACHE_MAX, Idents, PidHook, RefHook, make_default
from ._interface import MAX_TYPE_ID_BYTES, ISerializableMessage, check_type_id, verify_message
from ._limits import ExtWalk, Limits
from ._registry import MessageRegistry, default_registry
from ._wire import (
    EXT4_HEADS,
    EXT_BIGINT,
    EXT_MESSAGE,
    EXT_PID,
    EXT_RECORD,
    EXT_REF,
    EXT_TUPLE,
    MIN_BIG_MAP,
    TUPLE_MARK,
    RecordHead,
    TupleMark,
    checked_dict,
    dec_bigint,
    dec_head,
    enc_bigint,
    enc_tuple,
    ext_head,
    make_ext,
)

_unpackb = msgpack.unpackb
_active = ACTIVE.get


class Codec:
    """Encodes messages to bytes and decodes them, for one node.

    Not thread-safe (use one per thread, or per node on one gevent hub); it
    never blocks, and stays correct if a user's ``serialize()`` re-enters it.

    Args:
        registry: where decoded message type ids are looked up (default: the
            process-wide ``default_registry()``).
        encode_pid: maps each outgoing Pid (e.g. node 0 -> this node's id).
        decode_pid: maps each incoming Pid (e.g. this node's id -> node 0).
        encode_ref: the same as ``encode_pid``, for Refs.
        decode_ref: the same as ``decode_pid``, for Refs.
        limits: bounds on decoded input (``Limits()`` by default).
        tuple_types: tuple subclasses (NamedTuples that are plain data, such
            as ``From``) that cross as plain tuples: they arrive as ``tuple``.

    Hooks must be pure: results are cached per Pid/Ref (``clear_caches()``
    forgets them). A hook may raise ``SerializationError`` to refuse a value.
    """

    def __init__(
        self,
        registry: MessageRegistry | None = None,
        *,
        encode_pid: PidHook | None = None,
        decode_pid: PidHook | None = None,
        encode_ref: RefHook | None = None,
        decode_ref: RefHook | None = None,
        limits: Limits | None = None,
        tuple_types: tuple[type, ...] = (),
    ) -> None:
        for cls in tuple_types:
            if not (isinstance(cls, type) and issubclass(cls, tuple)):
                raise TypeError(f"tuple_types: {cls!r} is not a tuple subclass")
        self._tuple_types = tuple_types
        self.registry = registry if registry is not None else default_registry()
        self.limits = limits if limits is not None else Limits()
        self.idents = Idents(encode_pid, decode_pid, encode_ref, decode_ref)
        lim = self.limits
        # Below this size msgpack's own limits (the input length) are tighter than ours.
        self._small = min(lim.max_str_len, lim.max_bin_len, lim.max_container_len)
        self._check_above = min(lim.max_depth, lim.max_bytes)  # smaller messages pass both checks
        # A message that is one registered message (one ext 4) nests no level: up to this size it
        # passes every check, and Codec.decode reads it without msgpack.
        self._one_ext_max = min(self._small, lim.max_bytes)
        self._big_limits = {
            "max_str_len": lim.max_str_len,
            "max_bin_len": lim.max_bin_len,
            "max_array_len": lim.max_container_len,
            "max_map_len": lim.max_container_len,
            "max_ext_len": max(lim.max_bin_len, lim.max_int_bytes) + 1 + MAX_TYPE_ID_BYTES,
        }
        self._entries = self.registry.entries()
        self._enc_msg = self._enc_message
        self._msg_classes: set[type] = set()  # the hand-written message classes met
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Pid: self.idents.enc_pid,
            Ref: self.idents.enc_ref,
            tuple: enc_tuple,
            int: self._enc_int,
        }
        self._handlers.update(dict.fromkeys(tuple_types, enc_tuple))
        self._prefixes: dict[str, bytes] = {}
        self._heads: dict[bytes, RecordHead] = {}
        self._default = make_default(self._handlers, self.idents, self._classify)
        self._encoder = _Encoder(self)
        self._decoder = _Decoder(self)
        self._frame: tuple[Codec, _Decoder | None] = (self, None)  # ACTIVE's value outside decodes

    # The hooks live in ``idents``; these keep them readable where they were.
    encode_pid = property(lambda self: self.idents.encode_pid, doc="The outgoing Pid hook (or None).")
    decode_pid = property(lambda self: self.idents.decode_pid, doc="The incoming Pid hook (or None).")
    encode_ref = property(lambda self: self.idents.encode_ref, doc="The outgoing Ref hook (or None).")
    decode_ref = property(lambda self: self.idents.decode_ref, doc="The incoming Ref hook (or None).")

    def __repr__(self) -> str:
        return f"<Codec {self.registry!r} {self.limits!r}>"

    def clear_caches(self) -> None:
        """Forget cached hook results and learned classes."""
        self.idents.clear()
        self._prefixes.clear()
        self._heads.clear()
        self._msg_classes.clear()
        for cls in [c for c in self._handlers if c not in (Pid, Ref, tuple, int, *self._tuple_types)]:
            del self._handlers[cls]

    # -- encoding ------------------------------------------------------------

    def encode(self, msg: Any) -> bytes:
        """Encode ``msg`` (plain data, Pids, Refs, registered messages).

        Raises:
            NotSerializable: a value cannot cross nodes; the error names its
                type and where it sits (``msg['items'][3].handler``).
            BrokenMessageType: a message class does not honour the interface.
            SerializationError: anything else (a reference cycle, a hook failed).
        """
        try:
            if msg.__class__ in self._msg_classes:
                # One registered message: its ext 4 is the whole message (the bytes Packer makes).
                body = self._message_body(msg)
                size = len(body)
                return (EXT4_HEADS[size] if size < 256 else ext_head(EXT_MESSAGE, size)) + body
            enc = self._encoder
            if enc.busy:
                enc = _Encoder(self)  # re-entered from a serialize(), or a greenlet switched inside one
            enc.busy = True
            try:
                return enc.pack(msg)
            finally:
                enc.busy = False
        except Exception as exc:
            err = explain(msg, exc, self.limits.max_int_bytes)
            if err is exc:
                raise
            raise err from (exc.__cause__ if isinstance(exc, Refused) else exc)

    def _classify(self, obj: Any) -> Callable[[Any], Any]:
        cls = obj.__class__
        spec = cls.__dict__.get("__joerl_record__")
        if spec is not None and spec.cls is cls:
            self._handlers[cls] = spec.to_wire
            return spec.to_wire  # type: ignore[no-any-return]
        if ISerializableMessage.providedBy(obj):
            try:
                verify_message(obj)
            except BrokenMessageType as exc:
                raise Refused(obj, error=exc) from None
            if ISerializableMessage.implementedBy(cls):
                self._handlers[cls] = self._enc_msg
                self._msg_classes.add(cls)
            return self._enc_msg
        if cls is datetime.datetime:
            raise Refused(obj, "a naive datetime: give it a tzinfo (it arrives in UTC)")
        raise Refused(obj)

    def _enc_int(self, n: int) -> ExtType:
        ext = enc_bigint(n, self.limits.max_int_bytes)
        if ext is None:
            raise Refused(n, f"an int of {n.bit_length()} bits is over the {self.limits.max_int_bytes}-byte limit")
        return ext

    def _enc_message(self, msg: Any) -> ExtType:
        return make_ext(EXT_MESSAGE, self._message_body(msg))

    def _message_body(self, msg: Any) -> bytes:
        """Ext 4's payload for ``msg``: len u8 | type_id | serialize() bytes."""
        cls = msg.__class__
        try:
            type_id = msg.message_type_id
            prefix = self._prefixes.get(type_id)
            if prefix is None:
                prefix = self._prefix(type_id)
        except (AttributeError, TypeError, ValueError) as exc:
            raise Refused(msg, error=BrokenMessageType(cls, f"its message_type_id is unusable: {exc}")) from None
        token = ACTIVE.set(self._frame)
        try:
            data = msg.serialize()
        except SerializationError as exc:
            raise Refused(msg, error=exc) from None
        except Exception as exc:
            raise Refused(msg, error=BrokenMessageType(cls, f"its serialize() raised {exc!r}")) from exc
        finally:
            ACTIVE.reset(token)
        if data.__class__ is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                reason = f"its serialize() returned {type(data).__name__}, not bytes"
                raise Refused(msg, error=BrokenMessageType(cls, reason))
            data = bytes(data)
        return prefix + data

    def _prefix(self, type_id: str) -> bytes:
        raw = check_type_id(type_id).encode("utf-8")
        prefix = bytes((len(raw),)) + raw
        if len(self._prefixes) >= CACHE_MAX:
            self._prefixes.clear()
        self._prefixes[type_id] = prefix
        return prefix

    # -- decoding ------------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode one message (the whole of ``data``).

        Raises:
            DecodeError: malformed, truncated, trailing bytes, over a limit, or
                a deserializer rejected its payload.
            UnknownMessageType: a message type id not registered here.
        """
        frame = _active()
        if frame is not None and frame[1] is not None:  # a deserializer's decode: a payload decoded again
            return self._decode_payload(data, frame[1].payload_budget())
        dec = self._decoder
        if dec.busy:
            dec = _Decoder(self)  # re-entered from a hook, or a greenlet switched inside a deserializer
        if data and data[0] == 0xC7 and data.__class__ is bytes and len(data) <= self._one_ext_max:
            # One registered message, as encode() writes it (ext 8): read here, without msgpack.
            if len(data) > 3 and data[2] == EXT_MESSAGE and data[1] + 3 == len(data):
                return dec.one_message(data, 3)
        return dec.run(data)

    def _decode_payload(self, data: bytes | bytearray | memoryview, budget: Budget) -> Any:
        """Decode a registered message's payload inside the decode that met
        the message, within what that decode leaves it (see ``Limits``)."""
        raw = data if data.__class__ is bytes else _Decoder.as_bytes(data)
        check_payload(raw, budget, self.limits)
        dec = _Decoder(self)
        dec.budget = budget
        return dec.run(raw)

    def _dec_message(self, data: bytes, start: int, decoder: _Decoder) -> Any:
        """The registered message in the ext 4 payload ``data[start:]``."""
        size = data[start] if len(data) > start else 0  # len u8 | type_id | payload (see _wire.py)
        end = start + 1 + size
        if not size or len(data) < end:
            raise DecodeError("a message payload with a missing or truncated type id")
        try:
            type_id = data[start + 1 : end].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a message type id that is not UTF-8") from None
        entry = self._entries.get(type_id) or self.registry.lookup(type_id)
        token = ACTIVE.set(decoder.frame)  # (run_deserializer, inline: a call per message counts)
        try:
            return entry.deserializer(data[end:])
        except SerializationError:
            raise
        except Exception as exc:
            raise DecodeError(f"the deserializer of {type_id!r} rejected its payload: {exc!r}") from exc
        finally:
            ACTIVE.reset(token)

    def call_deserializer(
        self, type_id: str, deserializer: Callable[[bytes], Any], data: bytes, decoder: _Decoder | None = None
    ) -> Any:
        """Run a registered deserializer with this codec active (so that
        ``pid_from_bytes`` and ``decode`` inside it use this codec); from
        inside a decode, ``decoder`` is that decode (which bounds the decodes
        the deserializer starts)."""
        return run_deserializer(self._frame if decoder is None else decoder.frame, type_id, deserializer, data)

    def _dec_head(self, data: bytes) -> RecordHead:
        head = dec_head(data)
        if len(self._heads) >= CACHE_MAX:
            self._heads.clear()
        self._heads[data] = head
        return head

    def _dec_record(self, head: RecordHead, items: list[Any]) -> Any:
        if len(items) != 2 or items[1].__class__ is not dict:
            raise DecodeError(f"record {head.type_id!r} is not [head, {{fields}}]")
        entry = self._entries.get(head.type_id) or self.registry.lookup(head.type_id)
        spec = entry.record
        if spec is None:
            raise DecodeError(
                f"{head.type_id!r} arrived as a @serializable record, but is registered here with a bytes deserializer"
            )
        if head.version == spec.version:
            try:
                return spec.cls(**items[1])
            except Exception as exc:
                err = spec.build_error(head.version, items[1], exc)
                if err is exc:
                    raise
                raise err from exc
        return spec.from_fields(head.version, items[1])


class _Encoder:
    """A Packer and whether it is in use (a busy one is never re-entered)."""

    __slots__ = ("pack", "busy")

    def __init__(self, codec: Codec) -> None:
        packer = msgpack.Packer(
            default=codec._default, strict_types=True, use_bin_type=True, datetime=True, autoreset=True
        )
        self.pack: Callable[[Any], bytes] = packer.pack
        self.busy = False


class _Decoder:
    """The hooks of one decode, its count of unconsumed ext 3/6 markers, and
    what a registered message's payload decoded inside it may still use.

    ``budget`` is None for an outermost decode (until a payload is decoded
    again), else the ``Budget`` given to a payload's (fresh) decoder by
    ``Codec._decode_payload``; ``count`` counts the ext 4s met; ``walk``
    finds where they sit in ``data``, once a payload is decoded again (most
    deserializers read bytes: no walk); ``payloads`` counts those decodes.
    """

    __slots__ = (
        "codec", "idents", "pid_in", "ref_in", "busy", "pending", "ext_hook", "list_hook", "data", "budget",
        "count", "walk", "payloads", "frame",
    )  # fmt: skip

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.idents = idents = codec.idents
        self.pid_in = idents.pid_in
        self.ref_in = idents.ref_in
        self.busy = False
        self.pending = 0
        self.ext_hook = self._ext_hook
        self.list_hook = self._list_hook
        self.data = b""
        self.budget: Budget | None = None
        self.count = 0
        self.walk: ExtWalk | None = None
        self.payloads = 0
        self.frame: tuple[Codec, _Decoder | None] = (codec, self)  # ACTIVE's value in its deserializers

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
                    self.walk = None
                    self.payloads = 0
                    self.budget = None  # (only a payload's decoder is given one; it is not reused)
        if self.pending:
            raise DecodeError("a tuple or record marker outside the head of an array")
        return obj

    def one_message(self, data: bytes, start: int) -> Any:
        """``run`` for a message that is one ext 4 whose payload is ``data[start:]``
        (checked by the caller: no size or depth limit applies to it)."""
        self.busy = True
        self.data = data
        self.count = 1
        try:
            return self.codec._dec_message(data, start, self)
        except SerializationError:
            raise
        except Exception as exc:
            raise DecodeError(f"malformed message: {exc or type(exc).__name__}") from exc
        finally:
            self.busy = False
            self.data = b""
            self.count = 0
            if self.walk is not None:
                self.walk = None
                self.payloads = 0
                self.budget = None

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_PID:
            pid = self.pid_in.get(data)
            return pid if pid is not None else self.idents.new_pid(data)
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
