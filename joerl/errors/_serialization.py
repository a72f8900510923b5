"""Errors of turning messages into bytes and back."""

from __future__ import annotations

from typing import Any

from ._root import JoerlError


class SerializationError(JoerlError):
    """A message cannot be turned into bytes, or bytes into a message."""


class NotSerializable(SerializationError):
    """A value in an outgoing message cannot cross a node boundary."""

    def __init__(self, value_type: type, path: str = "") -> None:
        where = f" at {path}" if path else ""
        super().__init__(
            f"{value_type.__module__}.{value_type.__qualname__}{where} cannot be "
            "serialized: use plain data, Pid/Ref, or a registered message type"
        )
        self.value_type = value_type
        self.path = path


class BrokenMessageType(NotSerializable):
    """A class claims ``ISerializableMessage`` but does not honour it.

    Raised at send time (and by ``SerializableEnvelope.wrap``): a member is
    missing, ``serialize`` has the wrong signature or fails, or the type id is
    not a valid namespaced id.
    """

    def __init__(self, value_type: type, reason: str, path: str = "") -> None:
        super().__init__(value_type, path)
        where = f" at {path}" if path else ""
        self.args = (
            f"{value_type.__module__}.{value_type.__qualname__}{where} claims ISerializableMessage but {reason}",
        )
        self.reason = reason


class UnknownMessageType(SerializationError):
    """Bytes name a message type that is not registered here."""

    def __init__(self, type_id: str) -> None:
        super().__init__(f"unknown message type {type_id!r}: register it on this node")
        self.type_id = type_id


class DecodeError(SerializationError):
    """Bytes are not a valid encoding (malformed, truncated, or over a limit)."""


class MessageTypeTaken(SerializationError, ValueError):
    """A type id is already registered to a different deserializer."""

    def __init__(self, type_id: str, existing: Any) -> None:
        super().__init__(
            f"message type {type_id!r} is already registered to {existing!r}; pass replace=True to replace it"
        )
        self.type_id = type_id
        self.existing = existing


class TermDecodeError(DecodeError):
    """Bytes are not a valid External Term Format term (malformed, truncated,
    unsupported, or over a limit). The message says which, and where.

    Attributes:
        offset: the byte offset where decoding failed, when known.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at byte {offset})")
        self.offset = offset


class TermEncodeError(SerializationError, ValueError):
    """A Python value has no Erlang term (a NaN or infinite float, a type with
    no mapping, an atom too long, a structure nested too deep)."""
