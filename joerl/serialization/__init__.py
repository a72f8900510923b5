"""Messages that cross nodes: the ``ISerializableMessage`` contract, the
registry of message types, ``@serializable``, ``SerializableEnvelope``, and
``Codec``, which turns one message into msgpack bytes and back.

Sans-IO: nothing here touches a socket or gevent. Never pickle.

Wire layout
-----------
A message is exactly one msgpack object (https://github.com/msgpack/msgpack/blob/master/spec.md).
None, bool, int (-2**63 .. 2**64-1), float (float64), str (UTF-8), bytes (bin),
list (array) and dict (map; keys may be any hashable value this codec carries)
are msgpack's own; bytearray and memoryview are sent as bin and arrive as
bytes. joerl adds these ext types::

    code  value                    ext payload
    ----  -----------------------  -----------------------------------------------------
     -1   datetime (tz-aware)      msgpack timestamp; arrives as a UTC datetime
      1   Pid                      node u32 | id u64 | creation u32, big-endian (16 bytes)
      2   Ref                      node u32 | id u64 | creation u32, big-endian (16 bytes)
      3   tuple marker             empty. A tuple is an array [ext3, item0, item1, ...]
      4   ISerializableMessage     len u8 | type_id (len bytes, UTF-8) | serialize() bytes
                                   (the same bytes as SerializableEnvelope.to_bytes())
      5   int beyond 64 bits       big-endian two's complement, shortest form
      6   @serializable head       version u32 big-endian | type_id (UTF-8). A record is
                                   an array [ext6, {field_name: value, ...}]

Examples: ``Pid(1, 2, 3)`` is ``d8 01 00000001 0000000000000002 00000003``;
``(1, "a")`` is ``93 c7 00 03 01 a1 61``.

An ext 3 or ext 6 anywhere but at the head of an array is malformed. Decoding
is bounded by ``Limits`` (total bytes, nesting depth, container, str, bin and
int sizes), refuses maps whose keys share hashes (hash flooding), and fails
only with ``DecodeError`` or ``UnknownMessageType``.
"""

from __future__ import annotations

from ..errors import (
    BrokenMessageType,
    DecodeError,
    MessageTypeTaken,
    NotSerializable,
    SerializationError,
    UnknownMessageType,
)
from ._active import active_codec, decode, encode, pid_from_bytes, pid_to_bytes, ref_from_bytes, ref_to_bytes
from ._codec import Codec
from ._envelope import SerializableEnvelope
from ._interface import (
    MAX_TYPE_ID_BYTES,
    ISerializableMessage,
    check_type_id,
    verify_message,
)
from ._limits import Limits
from ._record import RecordSpec, serializable
from ._registry import Deserializer, MessageRegistry, default_registry, register_message_type
from ._wire import EXT_BIGINT, EXT_MESSAGE, EXT_PID, EXT_RECORD, EXT_REF, EXT_TUPLE

__all__ = [
    "BrokenMessageType",
    "Codec",
    "DecodeError",
    "Deserializer",
    "EXT_BIGINT",
    "EXT_MESSAGE",
    "EXT_PID",
    "EXT_RECORD",
    "EXT_REF",
    "EXT_TUPLE",
    "ISerializableMessage",
    "Limits",
    "MAX_TYPE_ID_BYTES",
    "MessageRegistry",
    "MessageTypeTaken",
    "NotSerializable",
    "RecordSpec",
    "SerializableEnvelope",
    "SerializationError",
    "UnknownMessageType",
    "active_codec",
    "check_type_id",
    "decode",
    "default_registry",
    "encode",
    "pid_from_bytes",
    "pid_to_bytes",
    "ref_from_bytes",
    "ref_to_bytes",
    "register_message_type",
    "serializable",
    "verify_message",
]
