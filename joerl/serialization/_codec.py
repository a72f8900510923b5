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
from ._budget import Budget, check_payload
from ._decoder import Decoder, Encoder
from ._explain import Refused, explain
from ._frame import get_slot, getcurrent, new_slot, run_deserializer
from ._idents import CACHE_MAX, Idents, PidHook, RefHook, make_default
from ._interface import MAX_TYPE_ID_BYTES, ISerializableMessage, check_type_id, verify_message
from ._limits import Limits
from ._registry import MessageRegistry, default_registry
from ._wire import (
    EXT4_HEADS,
    EXT_MESSAGE,
    EXT_RECORD,
    MIN_BIG_MAP,
    RecordHead,
    dec_head,
    enc_bigint,
    enc_tuple,
    ext_head,
    make_ext,
)

_setattr = object.__setattr__
_unpackb = msgpack.unpackb
_new = object.__new__

#: Data sizes whose ext 4 header (with the type id) a codec keeps, per message type.
_HEADS_MAX = 64


class _Heads(dict):  # type: ignore[type-arg]
    """One message type's ext 4 headers, type id included (``Codec.encode``),
    by the size of its ``serialize()`` bytes; and that type id's ``len u8 | type_id``."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: bytes) -> None:
        super().__init__()
        self.prefix = prefix

    def whole(self, data: bytes) -> bytes:
        """The message whose ext 4 payload is ``prefix + data`` (caching its header)."""
        size = len(self.prefix) + len(data)
        head = (EXT4_HEADS[size] if size < 256 else ext_head(EXT_MESSAGE, size)) + self.prefix
        if len(self) < _HEADS_MAX:
            self[len(data)] = head
        return head + data


def _as_bytes(msg: Any, data: Any) -> bytes:
    """What a ``serialize()`` returned, as bytes (else refused)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        reason = f"its serialize() returned {type(data).__name__}, not bytes"
        raise Refused(msg, error=BrokenMessageType(msg.__class__, reason))
    return bytes(data)


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
        self._simple_max = min(self._small, self._check_above)  # Codec.decode runs these inline
        self._big_limits = {
            "max_str_len": lim.max_str_len,
            "max_bin_len": lim.max_bin_len,
            "max_array_len": lim.max_container_len,
            "max_map_len": lim.max_container_len,
            "max_ext_len": max(lim.max_bin_len, lim.max_int_bytes) + 1 + MAX_TYPE_ID_BYTES,
        }
        self._entries = self.registry.entries()
        self._enc_msg = self._enc_message
        # The classes of a whole message with a way of its own: a hand-written message class
        # met -> True; a @serializable class met -> its RecordSpec.
        self._tops: dict[type, Any] = {}
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Pid: self.idents.enc_pid,
            Ref: self.idents.enc_ref,
            tuple: enc_tuple,
            int: self._enc_int,
        }
        self._handlers.update(dict.fromkeys(tuple_types, enc_tuple))
        self._prefixes: dict[str, _Heads] = {}  # type id -> its ext 4 headers
        self._ids_in: dict[bytes, str] = {}  # a type id's UTF-8 -> the type id
        self._heads: dict[bytes, RecordHead] = {}
        self._top_heads: dict[bytes, RecordHead] = {}  # the same, by the ext 8 that holds the payload
        self._default = make_default(self._handlers, self.idents, self._classify)
        self._encoder = Encoder(self)
        self._decoder = Decoder(self)
        self._frame: tuple[Codec, Decoder | None] = (self, None)  # the active frame outside decodes (_frame.py)

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
        self._top_heads.clear()
        self._tops.clear()
        self._ids_in.clear()
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
            if msg.__class__ in self._tops:
                top = self._tops[msg.__class__]
                if top is not True:  # a @serializable record (its RecordSpec): array and head packed already
                    enc = self._encoder
                    if enc.busy:
                        return top.top + Encoder(self).pack(top.fields_of(msg))  # type: ignore[no-any-return]
                    enc.busy = True
                    try:
                        return top.top + enc.pack(top.fields_of(msg))  # type: ignore[no-any-return]
                    finally:
                        enc.busy = False
                # One registered message: its ext 4 is the whole message (the bytes Packer makes),
                # made here as _message_body makes ext 4's payload (inline: a call per message counts).
                try:
                    heads = self._prefixes.get(msg.message_type_id)  # type: ignore[attr-defined]
                except (AttributeError, TypeError):
                    heads = None
                if heads is None:  # a type id not met yet, or unusable (_message_body says why)
                    body = self._message_body(msg)
                    size = len(body)
                    return (EXT4_HEADS[size] if size < 256 else ext_head(EXT_MESSAGE, size)) + body
                slot = get_slot()  # (_frame.run_deserializer, inline: a call per message counts)
                me = getcurrent()
                if slot is None or slot.owner is not None and slot.owner is not me:
                    slot = new_slot()
                prev, prev_owner = slot.frame, slot.owner
                slot.frame, slot.owner = self._frame, me
                try:
                    data = msg.serialize()  # type: ignore[attr-defined]
                except SerializationError as exc:
                    raise Refused(msg, error=exc) from None
                except Exception as exc:
                    reason = f"its serialize() raised {exc!r}"
                    raise Refused(msg, error=BrokenMessageType(msg.__class__, reason)) from exc
                finally:
                    slot.frame, slot.owner = prev, prev_owner
                if data.__class__ is bytes:
                    head = heads.get(len(data))
                    return head + data if head is not None else heads.whole(data)
                return heads.whole(_as_bytes(msg, data))
            enc = self._encoder
            if enc.busy:
                enc = Encoder(self)  # re-entered from a serialize(), or a greenlet switched inside one
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
            self._tops[cls] = spec
            return spec.to_wire  # type: ignore[no-any-return]
        if ISerializableMessage.providedBy(obj):
            try:
                verify_message(obj)
            except BrokenMessageType as exc:
                raise Refused(obj, error=exc) from None
            if ISerializableMessage.implementedBy(cls):
                self._handlers[cls] = self._enc_msg
                self._tops[cls] = True
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
            heads = self._prefixes.get(type_id)
            if heads is None:
                heads = self._new_heads(type_id)
        except (AttributeError, TypeError, ValueError) as exc:
            raise Refused(msg, error=BrokenMessageType(cls, f"its message_type_id is unusable: {exc}")) from None
        slot = get_slot()  # (_frame.run_deserializer, inline: a call per message counts)
        me = getcurrent()
        if slot is None or slot.owner is not None and slot.owner is not me:
            slot = new_slot()
        prev, prev_owner = slot.frame, slot.owner
        slot.frame, slot.owner = self._frame, me
        try:
            data = msg.serialize()
        except SerializationError as exc:
            raise Refused(msg, error=exc) from None
        except Exception as exc:
            raise Refused(msg, error=BrokenMessageType(cls, f"its serialize() raised {exc!r}")) from exc
        finally:
            slot.frame, slot.owner = prev, prev_owner
        return heads.prefix + (data if data.__class__ is bytes else _as_bytes(msg, data))

    def _new_heads(self, type_id: str) -> _Heads:
        raw = check_type_id(type_id).encode("utf-8")
        heads = _Heads(bytes((len(raw),)) + raw)
        if len(self._prefixes) >= CACHE_MAX:
            self._prefixes.clear()
        self._prefixes[type_id] = heads
        return heads

    # -- decoding ------------------------------------------------------------

    def decode(self, data: bytes | bytearray | memoryview) -> Any:
        """Decode one message (the whole of ``data``).

        Raises:
            DecodeError: malformed, truncated, trailing bytes, over a limit, or
                a deserializer rejected its payload.
            UnknownMessageType: a message type id not registered here.
        """
        slot = get_slot()  # (_frame.active_frame, inline)
        if slot is not None and slot.frame is not None and slot.frame[1] is not None and slot.owner is getcurrent():
            # A deserializer's decode: a payload decoded again.
            return self._decode_payload(data, slot.frame[1].payload_budget())
        dec = self._decoder
        if dec.busy:
            dec = Decoder(self)  # re-entered from a hook, or a greenlet switched inside a deserializer
        head = None
        if data and data[0] >= 0x92 and data.__class__ is bytes:  # (a dict, 0x8N, goes straight to run)
            if data[0] == 0xC7 and 3 < len(data) <= self._one_ext_max:
                # One registered message, as encode() writes it (ext 8): read here, without msgpack.
                if data[2] == EXT_MESSAGE and data[1] + 3 == len(data):
                    dec.busy = True  # (Decoder.run's bookkeeping, for one ext 4)
                    dec.data = data
                    dec.count = 1
                    try:
                        return self._dec_message(data, 3, dec)
                    except SerializationError:
                        raise
                    except Exception as exc:
                        raise DecodeError(f"malformed message: {exc or type(exc).__name__}") from exc
                    finally:
                        dec.busy = False
                        dec.data = b""
                        dec.count = 0
                        if dec.walk is not None:  # it decoded a payload again
                            dec.forget_walk()
            elif data[0] == 0x92 and 4 < len(data) <= self._check_above:
                # A small @serializable record [ext6 head (an ext 8), {fields}] whose head was met
                # before (_top_heads: a match is c7 len 06 head): its fields are decoded alone.
                end = data[2] + 4
                head = self._top_heads.get(data[1:end])
                if head is not None:
                    data = data[end:]
        if (
            data.__class__ is not bytes
            or len(data) > self._simple_max
            or len(data) >= MIN_BIG_MAP
            and (0xDE in data or 0xDF in data)
        ):
            obj = dec.run(data)
        else:  # a small message: Decoder.run, inline (a call per message counts), with nothing to check first
            dec.data = data
            dec.busy = True
            dec.pending = 0
            try:
                obj = _unpackb(data, ext_hook=dec.ext_hook, list_hook=dec.list_hook, strict_map_key=False, timestamp=3)
            except SerializationError:
                raise
            except Exception as exc:
                raise DecodeError(f"malformed message: {exc or type(exc).__name__}") from exc
            finally:
                dec.busy = False
                dec.data = b""
                if dec.count:  # it met a registered message
                    dec.count = 0
                    if dec.walk is not None:  # and decoded a payload again
                        dec.forget_walk()
            if dec.pending:
                raise DecodeError("a tuple or record marker outside the head of an array")
        if head is None:
            return obj
        if obj.__class__ is not dict:
            raise DecodeError(f"record {head.type_id!r} is not [head, {{fields}}]")
        # The record's fields: built without __init__ when it has nothing else to do (_build_record).
        spec = (self._entries.get(head.type_id) or self.registry.lookup(head.type_id)).record
        if spec is not None and spec.plain and head.version == spec.version and obj.keys() == spec.names:
            fields = obj
            obj = _new(spec.cls)
            _setattr(obj, "__dict__", fields)
            return obj
        return self._build_record(head, obj)

    def _decode_payload(self, data: bytes | bytearray | memoryview, budget: Budget) -> Any:
        """Decode a registered message's payload inside the decode that met
        the message, within what that decode leaves it (see ``Limits``)."""
        raw = data if data.__class__ is bytes else Decoder.as_bytes(data)
        check_payload(raw, budget, self.limits)
        dec = Decoder(self)
        dec.budget = budget
        return dec.run(raw)

    def _dec_message(self, data: bytes, start: int, decoder: Decoder) -> Any:
        """The registered message in the ext 4 payload ``data[start:]``."""
        size = data[start] if len(data) > start else 0  # len u8 | type_id | payload (see _wire.py)
        end = start + 1 + size
        if not size or len(data) < end:
            raise DecodeError("a message payload with a missing or truncated type id")
        raw = data[start + 1 : end]
        type_id = self._ids_in.get(raw)
        if type_id is None:
            try:
                type_id = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("a message type id that is not UTF-8") from None
            if len(self._ids_in) >= CACHE_MAX:
                self._ids_in.clear()
            self._ids_in[raw] = type_id
        entry = self._entries.get(type_id) or self.registry.lookup(type_id)
        slot = get_slot()  # (_frame.run_deserializer, inline: a call per message counts)
        me = getcurrent()
        if slot is None or slot.owner is not None and slot.owner is not me:
            slot = new_slot()
        prev, prev_owner = slot.frame, slot.owner
        slot.frame, slot.owner = decoder.frame, me
        try:
            return entry.deserializer(data[end:])
        except SerializationError:
            raise
        except Exception as exc:
            raise DecodeError(f"the deserializer of {type_id!r} rejected its payload: {exc!r}") from exc
        finally:
            slot.frame, slot.owner = prev, prev_owner

    def call_deserializer(
        self, type_id: str, deserializer: Callable[[bytes], Any], data: bytes, decoder: Decoder | None = None
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
        self._top_heads.clear()
        self._heads[data] = head
        top = ext_head(EXT_RECORD, len(data)) + data
        if top[0] == 0xC7:  # (Codec.decode reads this form of a record at the top)
            if len(self._top_heads) >= CACHE_MAX:
                self._top_heads.clear()
            self._top_heads[top] = head
        return head

    def _dec_record(self, head: RecordHead, items: list[Any]) -> Any:
        if len(items) != 2 or items[1].__class__ is not dict:
            raise DecodeError(f"record {head.type_id!r} is not [head, {{fields}}]")
        return self._build_record(head, items[1])

    def _build_record(self, head: RecordHead, fields: dict[Any, Any]) -> Any:
        entry = self._entries.get(head.type_id) or self.registry.lookup(head.type_id)
        spec = entry.record
        if spec is None:
            raise DecodeError(
                f"{head.type_id!r} arrived as a @serializable record, but is registered here with a bytes deserializer"
            )
        if head.version == spec.version:
            if spec.plain and fields.keys() == spec.names:
                # Every field, and __init__ would only store them: built as copy and pickle build (RecordSpec).
                obj = _new(spec.cls)
                _setattr(obj, "__dict__", fields)
                return obj
            try:
                return spec.cls(**fields)
            except Exception as exc:
                err = spec.build_error(head.version, fields, exc)
                if err is exc:
                    raise
                raise err from exc
        return spec.from_fields(head.version, fields)
