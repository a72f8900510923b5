"""The message contract: ``ISerializableMessage``, type-id rules, and the errors
this package adds to the ``SerializationError`` branch.

A message type that crosses nodes has a stable, namespaced ``message_type_id``
(``"myapp::PingMsg"``) and a ``serialize() -> bytes``; its class declares the
interface with ``@implementer(ISerializableMessage)``. ``verify_message`` checks
the declaration against the object with ``zope.interface.verify.verifyObject``.
"""

from __future__ import annotations

import re

from zope.interface import Attribute, Interface, Invalid
from zope.interface.verify import verifyObject

from ..errors import BrokenMessageType, NotSerializable

#: Longest type id, in UTF-8 bytes (it travels behind a one-byte length).
MAX_TYPE_ID_BYTES = 255

# Namespaced: two or more non-empty segments joined by "::", no whitespace.
_TYPE_ID_RE = re.compile(r"[^\s:]+(?:::[^\s:]+)+")


class ISerializableMessage(Interface):  # type: ignore[misc]  # zope.interface is untyped (setup.cfg)
    """A message that can cross a node boundary as bytes.

    The receiving node rebuilds it with the deserializer registered under
    ``message_type_id`` (see ``MessageRegistry.register``).
    """

    message_type_id = Attribute("Stable, namespaced, unique type id, e.g. 'myapp::PingMsg'. Never reuse or rename it.")

    def serialize() -> bytes:  # type: ignore[misc,empty-body]  # a zope interface method: no self, no body
        """Return the message's wire form. Keep the format stable; version it."""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def not_serializable(value_type: type, path: str = "", reason: str = "") -> NotSerializable:
    """A ``NotSerializable`` whose message says why, when the generic one would mislead."""
    err = NotSerializable(value_type, path)
    if reason:
        where = f" at {path}" if path else ""
        err.args = (f"{_qualname(value_type)}{where} cannot be serialized: {reason}",)
    return err


def check_type_id(type_id: object) -> str:
    """Validate a message type id and return it.

    Raises:
        TypeError: ``type_id`` is not a ``str``.
        ValueError: it is not namespaced (``"ns::Name"``), contains whitespace,
            or is longer than 255 UTF-8 bytes.
    """
    if type(type_id) is not str:
        raise TypeError(f"a message type id must be a str, not {type(type_id).__name__}")
    if not _TYPE_ID_RE.fullmatch(type_id) or not type_id.isprintable():
        raise ValueError(
            f"message type id {type_id!r} must be namespaced like 'myapp::PingMsg' "
            "(segments joined by '::', no whitespace)"
        )
    try:
        size = len(type_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"message type id {type_id!r} is not valid UTF-8") from None
    if size > MAX_TYPE_ID_BYTES:
        raise ValueError(f"message type id is {size} bytes long; the limit is {MAX_TYPE_ID_BYTES}")
    return type_id


def verify_message(obj: object, path: str = "") -> str:
    """Check that ``obj`` honours ``ISerializableMessage``; return its type id.

    Raises:
        BrokenMessageType: the object does not declare the interface, lacks a
            member, or has an invalid ``message_type_id``.
    """
    try:
        verifyObject(ISerializableMessage, obj)
    except Invalid as exc:
        raise BrokenMessageType(type(obj), f"fails verifyObject: {exc}", path) from None
    type_id = obj.message_type_id  # type: ignore[attr-defined]
    try:
        return check_type_id(type_id)
    except (TypeError, ValueError) as exc:
        raise BrokenMessageType(type(obj), f"its message_type_id is invalid: {exc}", path) from None
