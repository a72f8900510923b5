"""SerializableEnvelope: a message's type id and ``serialize()`` bytes, as one
value, with a byte form of its own.

Byte form (also the payload of ext 4 inside a codec message)::

    +--------+--------------------------+---------------------------+
    | len u8 | type_id: len bytes UTF-8 | data: serialize() bytes   |
    +--------+--------------------------+---------------------------+

``data`` runs to the end; ``len`` is 1..255.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BrokenMessageType, DecodeError, SerializationError
from ._interface import MAX_TYPE_ID_BYTES, verify_message
from ._limits import Limits
from ._registry import MessageRegistry, default_registry

_DEFAULT_MAX_BYTES = Limits().max_bytes


@dataclass(frozen=True)
class SerializableEnvelope:
    """A serialized message: ``type_id`` and the bytes its ``serialize()`` made."""

    type_id: str
    data: bytes

    def __post_init__(self) -> None:
        if type(self.type_id) is not str or not self.type_id:
            raise TypeError(f"type_id must be a non-empty str, got {self.type_id!r}")
        if type(self.data) is not bytes:
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")
        try:
            size = len(self.type_id.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError(f"type_id {self.type_id!r} is not valid UTF-8") from None
        if size > MAX_TYPE_ID_BYTES:
            raise ValueError(f"type_id is {size} bytes long; the limit is {MAX_TYPE_ID_BYTES}")

    @classmethod
    def wrap(cls, msg: Any) -> SerializableEnvelope:
        """Serialize ``msg`` after checking it honours ``ISerializableMessage``.

        Raises:
            BrokenMessageType: the object fails ``verifyObject``, has an invalid
                type id, or its ``serialize()`` raised or returned non-bytes.
        """
        type_id = verify_message(msg)
        try:
            data = msg.serialize()
        except SerializationError:
            raise
        except Exception as exc:
            raise BrokenMessageType(type(msg), f"its serialize() raised {exc!r}") from exc
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise BrokenMessageType(type(msg), f"its serialize() returned {type(data).__name__}, not bytes")
        return cls(type_id, bytes(data))

    def unwrap(self, registry: MessageRegistry | None = None) -> Any:
        """Rebuild the message with the deserializer registered for ``type_id``.

        Raises:
            UnknownMessageType: ``type_id`` is not registered in ``registry``
                (default: ``default_registry()``).
            DecodeError: the deserializer rejected ``data``.
        """
        return (registry if registry is not None else default_registry()).deserialize(self.type_id, self.data)

    def to_bytes(self) -> bytes:
        """The envelope's byte form (see the module docstring)."""
        raw = self.type_id.encode("utf-8")
        return bytes((len(raw),)) + raw + self.data

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, max_bytes: int = _DEFAULT_MAX_BYTES
    ) -> SerializableEnvelope:
        """Parse ``to_bytes()`` output.

        Raises:
            DecodeError: empty, truncated type id, type id not UTF-8, or
                longer than ``max_bytes``.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"from_bytes() takes bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) > max_bytes:
            raise DecodeError(f"an envelope of {len(data)} bytes is over max_bytes={max_bytes}")
        size = data[0] if data else 0
        if not size or len(data) < size + 1:
            raise DecodeError("an envelope with a missing or truncated type id")
        try:
            type_id = data[1 : size + 1].decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("an envelope type id that is not UTF-8") from None
        return cls(type_id, data[size + 1 :])

    def __repr__(self) -> str:
        return f"SerializableEnvelope({self.type_id!r}, <{len(self.data)} bytes>)"
