"""Codec: one message <-> msgpack bytes, with joerl's ext types and limits.

Encoding is one ``msgpack.Packer.pack`` call: msgpack walks the message in C
and calls back (``default``) only for what it does not know: Pid, Ref, tuple,
ints beyond 64 bits and message types. Decoding is one ``msgpack.unpackb``
call whose ``ext_hook`` and ``list_hook`` rebuild those. The wire layout is in
the package docstring (``joerl/serialization/__init__.py``).

Pids and Refs pass the codec's optional mapping hooks on the way out and in,
which is how the node layer turns its local pids (node 0) into pids other
nodes can route back. Hook results are cached: hooks must be pure.
"""

from __future__ import annotations

import contextvars
import datetime
import operator
import struct
from collections.abc import Callable
from typing import Any

import msgpack
from msgpack import ExtType

from ..errors import DecodeError, SerializationError
from ..pid import Pid, Ref
from ._explain import Refused, explain
from ._interface import MAX_TYPE_ID_BYTES, BrokenMessageType, ISerializableMessage, check_type_id, verify_message
from ._limits import MAX_NESTED_MESSAGES, ExtWalk, Limits, exceeds_depth
from ._registry import MessageRegistry, default_registry

EXT_PID = 1
EXT_REF = 2
EXT_TUPLE = 3
EXT_MESSAGE = 4
EXT_BIGINT = 5
EXT_RECORD = 6

IDENT = struct.Struct(">IQI")  # node, id, creation
RECORD_VERSION = struct.Struct(">I")

_CACHE_MAX = 4096
# Headers of a message walked to find where a registered message sits whose
# payload is decoded again, when checking its depth did not walk it already:
# this many, plus _WALK_PER_PAYLOAD per payload decoded again so far (beyond
# that, ExtWalk.bound bounds the depth, and is then at most max_depth).
_WALK_BASE = 65536
_WALK_PER_PAYLOAD = 256

PidHook = Callable[[Pid], Pid]
RefHook = Callable[[Ref], Ref]

_unpackb = msgpack.unpackb
_new_tuple = tuple.__new__


def make_ext(code: int, data: bytes) -> ExtType:
    """An ``ExtType`` without ``ExtType.__new__``'s checks (ours are valid by construction)."""
    return _new_tuple(ExtType, (code, data))


_TUPLE_EXT = make_ext(EXT_TUPLE, b"")


class _TupleMark:
    """What ext 3 decodes to until the enclosing array becomes a tuple."""

    __slots__ = ()


_TUPLE_MARK = _TupleMark()


class _RecordHead:
    """What ext 6 decodes to until the enclosing array becomes a record."""

    __slots__ = ("type_id", "version")

    def __init__(self, type_id: str, version: int) -> None:
        self.type_id = type_id
        self.version = version


#: ``(codec, decoder)``: the codec running a user's serialize() or deserializer
#: (see _active.py) and, for a deserializer a decode runs for a registered
#: message it met, that decode (else None). A decode the deserializer starts
#: decodes the message's payload again: ``decoder.payload_budget()`` bounds it.
ACTIVE: contextvars.ContextVar[tuple[Codec, _Decoder | None] | None] = contextvars.ContextVar(
    "joerl_codec", default=None
)
_active = ACTIVE.get

#: What a registered message's payload decoded again inside another message
#: may use: the depth left to it, how many more registered messages may nest
#: in it, and the bytes left to every payload decoded again inside the
#: outermost message (one shared, mutable cell). See Limits.
Budget = tuple[int, int, list[int]]


class Codec:
    """Encodes messages to bytes and decodes them, for one node.

    Not thread-safe (use one per thread, or per node on one gevent hub); it
    never blocks, and stays correct if a user's ``serialize()`` re-enters it.

    Args:
        registry: where decoded message type ids are looked up (default: the
            process-wide ``default_registry()``).
        encode_pid: maps each outgoing Pid (e.g. node 0 -> this node's id).
        decode_pid: maps each incoming Pid (e.g. this node's id -> node 0).
        encode_ref, decode_ref: the same for Refs.
        limits: bounds on decoded input (``Limits()`` by default).

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
    ) -> None:
        self.registry = registry if registry is not None else default_registry()
        self.limits = limits if limits is not None else Limits()
        self.encode_pid = encode_pid
        self.decode_pid = decode_pid
        self.encode_ref = encode_ref
        self.decode_ref = decode_ref
        lim = self.limits
        # Below this size msgpack's own limits (the input length) are tighter than ours.
        self._small = min(lim.max_str_len, lim.max_bin_len, lim.max_container_len)
        self._check_above = min(lim.max_depth, lim.max_bytes)  # smaller messages pass both checks
        self._big_limits = {
            "max_str_len": lim.max_str_len,
            "max_bin_len": lim.max_bin_len,
            "max_array_len": lim.max_container_len,
            "max_map_len": lim.max_container_len,
            "max_ext_len": max(lim.max_bin_len, lim.max_int_bytes) + 1 + MAX_TYPE_ID_BYTES,
        }
        self._entries = self.registry._entries
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Pid: self._enc_pid,
            Ref: self._enc_ref,
            tuple: _enc_tuple,
            int: self._enc_int,
        }
        self._pid_out: dict[int, tuple[Pid, ExtType]] = {}
        self._ref_out: dict[int, tuple[Ref, ExtType]] = {}
        self._pid_in: dict[bytes, Pid] = {}
        self._ref_in: dict[bytes, Ref] = {}
        self._prefixes: dict[str, bytes] = {}
        self._heads: dict[bytes, _RecordHead] = {}
        self._encoder = _Encoder(self)
        self._decoder = _Decoder(self)
        self._frame: tuple[Codec, _Decoder | None] = (self, None)  # ACTIVE's value outside decodes

    def __repr__(self) -> str:
        return f"<Codec {self.registry!r} {self.limits!r}>"

    def clear_caches(self) -> None:
        """Forget cached hook results and learned classes."""
        for cache in (self._pid_out, self._ref_out, self._pid_in, self._ref_in, self._prefixes, self._heads):
            cache.clear()
        for cls in [c for c in self._handlers if c not in (Pid, Ref, tuple, int)]:
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
        enc = self._encoder
        if enc.busy:
            enc = _Encoder(self)  # re-entered from a serialize(), or a greenlet switched inside one
        enc.busy = True
        try:
            return enc.pack(msg)
        except Exception as exc:
            err = explain(msg, exc, self.limits.max_int_bytes)
            if err is exc:
                raise
            raise err from (exc.__cause__ if isinstance(exc, Refused) else exc)
        finally:
            enc.busy = False

    def _default(self, obj: Any) -> Any:
        handler = self._handlers.get(obj.__class__)
        if handler is None:
            handler = self._classify(obj)
        return handler(obj)

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
                self._handlers[cls] = self._enc_message
            return self._enc_message
        if cls is datetime.datetime:
            raise Refused(obj, "a naive datetime: give it a tzinfo (it arrives in UTC)")
        raise Refused(obj)

    def _enc_pid(self, pid: Pid) -> ExtType:
        hit = self._pid_out.get(id(pid))
        if hit is not None and hit[0] is pid:
            return hit[1]
        return self._enc_ident(pid, self._pid_out, self.encode_pid, EXT_PID)

    def _enc_ref(self, ref: Ref) -> ExtType:
        hit = self._ref_out.get(id(ref))
        if hit is not None and hit[0] is ref:
            return hit[1]
        return self._enc_ident(ref, self._ref_out, self.encode_ref, EXT_REF)

    def _enc_ident(self, ident: Any, cache: dict[int, Any], hook: Any, code: int) -> ExtType:
        mapped = ident
        if hook is not None:
            try:
                mapped = hook(ident)
            except SerializationError as exc:
                raise Refused(ident, error=exc) from None
            except Exception as exc:
                err = SerializationError(f"the {type(ident).__name__} hook failed on {ident}: {exc!r}")
                raise Refused(ident, error=err) from exc
            if mapped.__class__ is not ident.__class__:
                err = SerializationError(f"the {type(ident).__name__} hook returned {mapped!r} for {ident}")
                raise Refused(ident, error=err)
        ext = make_ext(code, IDENT.pack(mapped.node, mapped.id, mapped.creation))
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[id(ident)] = (ident, ext)
        return ext

    def _enc_int(self, n: int) -> ExtType:
        size = (n.bit_length() + 8) // 8  # two's complement, sign bit included
        if size > self.limits.max_int_bytes:
            raise Refused(n, f"an int of {n.bit_length()} bits is over the {self.limits.max_int_bytes}-byte limit")
        return make_ext(EXT_BIGINT, n.to_bytes(size, "big", signed=True))

    def _enc_message(self, msg: Any) -> ExtType:
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
        return make_ext(EXT_MESSAGE, prefix + data)

    def _prefix(self, type_id: str) -> bytes:
        raw = check_type_id(type_id).encode("utf-8")
        prefix = bytes((len(raw),)) + raw
        if len(self._prefixes) >= _CACHE_MAX:
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
        return dec.run(data)

    def _decode_payload(self, data: bytes | bytearray | memoryview, budget: Budget) -> Any:
        """Decode a registered message's payload inside the decode that met
        the message, within what that decode leaves it (see ``Limits``)."""
        raw = data if data.__class__ is bytes else _Decoder.as_bytes(data)
        self._check_payload(raw, budget)
        dec = _Decoder(self)
        dec.budget = budget
        return dec.run(raw)

    def _check_size(self, data: bytes) -> None:
        lim = self.limits
        if len(data) > lim.max_bytes:
            raise DecodeError(f"a message of {len(data)} bytes is over max_bytes={lim.max_bytes}")
        if exceeds_depth(data, lim.max_depth):
            raise DecodeError(f"the message nests deeper than max_depth={lim.max_depth}")

    def _check_payload(self, data: bytes, budget: Budget) -> None:
        """Check a registered message's payload decoded inside another message
        against what the enclosing decodes left it (see ``Limits``)."""
        depth, levels, left = budget
        lim = self.limits
        if levels < 0:
            raise DecodeError(
                f"registered messages whose payloads are decoded again nest more than {MAX_NESTED_MESSAGES} deep"
            )
        if depth < 0:
            raise DecodeError(
                f"registered messages nest deeper than max_depth={lim.max_depth} (each one whose payload "
                "is decoded again counts one level)"
            )
        size = len(data)
        if size > lim.max_bytes:
            raise DecodeError(f"a message of {size} bytes is over max_bytes={lim.max_bytes}")
        if size > left[0]:
            raise DecodeError(
                f"the payloads of registered messages decoded inside one message add up to more than "
                f"max_bytes={lim.max_bytes}"
            )
        left[0] -= size
        if exceeds_depth(data, min(depth, lim.max_depth)):
            raise DecodeError(
                f"the message nests deeper than max_depth={lim.max_depth}, counting the messages it is nested in"
            )

    def _dec_ident(self, data: bytes, code: int) -> Any:
        if len(data) != 16:
            raise DecodeError(f"a {'Pid' if code == EXT_PID else 'Ref'} takes 16 bytes, not {len(data)}")
        kind, hook, cache = (
            (Pid, self.decode_pid, self._pid_in) if code == EXT_PID else (Ref, self.decode_ref, self._ref_in)
        )
        value = kind._unchecked(*IDENT.unpack(data))
        if hook is not None:
            value = _run_hook(hook, value)
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[data] = value
        return value

    def _dec_message(self, data: bytes, decoder: _Decoder) -> Any:
        size = data[0] if data else 0
        end = size + 1
        if not size or len(data) < end:
            raise DecodeError("a message payload with a missing or truncated type id")
        try:
            type_id = data[1:end].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a message type id that is not UTF-8") from None
        entry = self._entries.get(type_id) or self.registry.lookup(type_id)
        return self.call_deserializer(type_id, entry.deserializer, data[end:], decoder)

    def call_deserializer(
        self, type_id: str, deserializer: Callable[[bytes], Any], data: bytes, decoder: _Decoder | None = None
    ) -> Any:
        """Run a registered deserializer with this codec active (so that
        ``pid_from_bytes`` and ``decode`` inside it use this codec); from
        inside a decode, ``decoder`` is that decode (which bounds the decodes
        the deserializer starts)."""
        token = ACTIVE.set(self._frame if decoder is None else decoder.frame)
        try:
            return deserializer(data)
        except SerializationError:
            raise
        except Exception as exc:
            raise DecodeError(f"the deserializer of {type_id!r} rejected its payload: {exc!r}") from exc
        finally:
            ACTIVE.reset(token)

    def _dec_head(self, data: bytes) -> _RecordHead:
        if not 4 < len(data) <= 4 + MAX_TYPE_ID_BYTES:
            raise DecodeError(f"a record head of {len(data)} bytes")
        (version,) = RECORD_VERSION.unpack_from(data)
        try:
            type_id = data[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a record type id that is not UTF-8") from None
        head = _RecordHead(type_id, version)
        if len(self._heads) >= _CACHE_MAX:
            self._heads.clear()
        self._heads[data] = head
        return head

    def _dec_record(self, head: _RecordHead, items: list[Any]) -> Any:
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

    def _dec_bigint(self, data: bytes) -> int:
        if not 0 < len(data) <= self.limits.max_int_bytes:
            raise DecodeError(f"an int of {len(data)} bytes (limit {self.limits.max_int_bytes})")
        return int.from_bytes(data, "big", signed=True)


# A map of 16 pairs or more takes at least 35 bytes (header 3, and 16 keys and values).
_MIN_BIG_MAP = 35
# Most keys of one map that may share a hash with another key. A peer can make tuples,
# big ints and records collide at will (str and bytes hashes are salted per process),
# and n such keys cost a dict n**2/2 comparisons to build.
_MAX_SHARED_HASHES = 64
_first = operator.itemgetter(0)


def _checked_dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """``dict(pairs)``, unless many keys share hashes (a hash-flooding attempt)."""
    if len(pairs) > 15 and len(pairs) - len(set(map(hash, map(_first, pairs)))) > _MAX_SHARED_HASHES:
        raise DecodeError(f"a map of {len(pairs)} pairs whose keys share hashes (hash flooding?)")
    return dict(pairs)


def _enc_tuple(t: tuple[Any, ...]) -> list[Any]:
    return [_TUPLE_EXT, *t]


def _run_hook(hook: Callable[[Any], Any], value: Any) -> Any:
    try:
        mapped = hook(value)
    except SerializationError:
        raise
    except Exception as exc:
        raise DecodeError(f"the {type(value).__name__} hook failed on {value}: {exc!r}") from exc
    if mapped.__class__ is not value.__class__:
        raise DecodeError(f"the {type(value).__name__} hook returned {mapped!r} for {value}")
    return mapped


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
        "codec", "busy", "pending", "ext_hook", "list_hook", "data", "budget", "count", "walk", "payloads", "frame"
    )  # fmt: skip

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
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
            codec._check_size(data)  # (a payload decoded again was checked against its budget too)
        self.data = data
        # A map of more than 15 pairs (map16/map32 header: 0xde, 0xdf) is built by
        # _checked_dict, which refuses keys with colliding hashes (hash flooding).
        flood_check = size >= _MIN_BIG_MAP and (0xDE in data or 0xDF in data)  # int: a memchr
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
                    object_pairs_hook=_checked_dict if flood_check else None,
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

    def _ext_hook(self, code: int, data: bytes) -> Any:
        codec = self.codec
        if code == EXT_PID:
            pid = codec._pid_in.get(data)
            return pid if pid is not None else codec._dec_ident(data, code)
        if code == EXT_TUPLE:
            if data:
                raise DecodeError("a tuple marker with a payload")
            self.pending += 1
            return _TUPLE_MARK
        if code == EXT_RECORD:
            head = codec._heads.get(data) or codec._dec_head(data)
            self.pending += 1
            return head
        if code == EXT_MESSAGE:
            self.count += 1  # payload_budget() tells which one is being deserialized
            return codec._dec_message(data, self)
        if code == EXT_REF:
            ref = codec._ref_in.get(data)
            return ref if ref is not None else codec._dec_ident(data, code)
        if code == EXT_BIGINT:
            return codec._dec_bigint(data)
        raise DecodeError(f"unknown ext type {code}")

    def payload_budget(self) -> Budget:
        """What the payload of the registered message being deserialized (the
        last ext 4 met) may use when decoded again: the depth below where the
        message sits, less one for the message, one nesting level less, and
        the bytes left to all such payloads."""
        budget = self.budget
        if budget is None:
            lim = self.codec.limits
            budget = self.budget = (lim.max_depth, MAX_NESTED_MESSAGES, [lim.max_bytes])
        depth, levels, left = budget
        walk = self.walk
        if walk is None:
            walk = self.walk = ExtWalk(self.data, EXT_MESSAGE)
        self.payloads += 1
        if walk.bound > depth:  # checking the message's depth walked all of it: so may this
            where = walk.depth_of(self.count - 1, len(self.data) + 1)
        else:  # maybe millions of scalars: walk a bounded part, else the bound will do
            where = walk.depth_of(self.count - 1, _WALK_BASE + _WALK_PER_PAYLOAD * self.payloads)
        if where is None:  # not reached (or malformed, which msgpack refuses anyway)
            where = min(walk.bound, depth)
        return (depth - where - 1, levels - 1, left)

    def _list_hook(self, items: list[Any]) -> Any:
        if items:
            head = items[0]
            cls = head.__class__
            if cls is _TupleMark:
                self.pending -= 1
                return tuple(items[1:])
            if cls is _RecordHead:
                self.pending -= 1
                return self.codec._dec_record(head, items)
        return items
