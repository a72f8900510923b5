"""MessageRegistry: type id -> deserializer, and the process-wide default one.

A node decodes a registered message by looking its type id up in the registry
its ``Codec`` is bound to. Several registries may live in one process (several
nodes in a test); ``default_registry()`` is the one ``register_message_type``
and ``@serializable`` use unless told otherwise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import MessageTypeTaken, UnknownMessageType
from ._frame import run_deserializer
from ._interface import check_type_id

#: A deserializer turns a message's ``serialize()`` bytes back into the message.
Deserializer = Callable[[bytes], Any]


class _Entry:
    """One registration: the bytes deserializer, and the record spec of a
    ``@serializable`` class (else None)."""

    __slots__ = ("deserializer", "record")

    def __init__(self, deserializer: Deserializer, record: Any) -> None:
        self.deserializer = deserializer
        self.record = record


class MessageRegistry:
    """Maps message type ids to the deserializers that rebuild them.

    Registration is thread-safe; lookups take no lock.

    Args:
        fallback: a registry consulted for ids this one does not know (e.g.
            ``default_registry()``, so a node sees types registered later by
            actor constructors).
    """

    def __init__(self, *, fallback: MessageRegistry | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.fallback = fallback

    def register(self, type_id: str, deserializer: Deserializer, *, replace: bool = False) -> None:
        """Register ``deserializer`` (``bytes -> message``) under ``type_id``.

        Registering the same deserializer twice is harmless (types may be
        registered lazily, e.g. in actor constructors).

        Raises:
            MessageTypeTaken: a different deserializer holds the id and
                ``replace`` is false.
            TypeError, ValueError: the id is not a valid namespaced id, or the
                deserializer is not callable.
        """
        if not callable(deserializer):
            raise TypeError(f"deserializer for {type_id!r} must be callable, got {deserializer!r}")
        self._put(check_type_id(type_id), _Entry(deserializer, None), replace)

    def register_class(self, cls: type, *, replace: bool = False) -> None:
        """Register a ``@serializable`` class (it is registered in the default
        registry, or the one named in the decorator, already).

        Raises:
            TypeError: ``cls`` is not a ``@serializable`` class.
            MessageTypeTaken: as for ``register``.
        """
        spec = cls.__dict__.get("__joerl_record__") if isinstance(cls, type) else None
        if spec is None:
            raise TypeError(f"{cls!r} is not a @serializable class")
        self._put(spec.type_id, _Entry(spec.from_bytes, spec), replace)

    def _put(self, type_id: str, entry: _Entry, replace: bool) -> None:
        with self._lock:
            old = self._entries.get(type_id)
            if old is not None and not replace and not _same(old, entry):
                raise MessageTypeTaken(type_id, old.record.cls if old.record else old.deserializer)
            self._entries[type_id] = entry

    def unregister(self, type_id: str) -> bool:
        """Forget ``type_id``; return whether it was registered here."""
        with self._lock:
            return self._entries.pop(type_id, None) is not None

    def lookup(self, type_id: str) -> _Entry:
        """The entry for ``type_id`` (here, else in the fallback chain).

        Raises:
            UnknownMessageType: no registry in the chain knows the id.
        """
        reg: MessageRegistry | None = self
        while reg is not None:
            entry = reg._entries.get(type_id)
            if entry is not None:
                return entry
            reg = reg.fallback
        raise UnknownMessageType(type_id)

    def deserialize(self, type_id: str, data: bytes) -> Any:
        """Rebuild a message from its type id and ``serialize()`` bytes.

        Raises:
            UnknownMessageType: the id is not registered.
            DecodeError: the deserializer rejected the bytes (any exception it
                raises that is not a ``SerializationError`` is wrapped).
        """
        entry = self.lookup(type_id)
        # Active inside it: this registry's plain codec (_active.py makes it when asked).
        return run_deserializer((self, None), type_id, entry.deserializer, data)

    def entries(self) -> Mapping[str, _Entry]:
        """The live table of the ids registered here (not in the fallback):
        a codec reads it before ``lookup`` on its decode path."""
        return self._entries

    def copy(self) -> MessageRegistry:
        """A new registry with the same entries (and fallback)."""
        new = MessageRegistry(fallback=self.fallback)
        new._entries = dict(self._entries)
        return new

    def type_ids(self) -> list[str]:
        """The ids registered here (not in the fallback), sorted."""
        return sorted(self._entries)

    def __contains__(self, type_id: object) -> bool:
        try:
            self.lookup(type_id)  # type: ignore[arg-type]
        except UnknownMessageType:
            return False
        return True

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<MessageRegistry {len(self._entries)} types>"


def _same(a: _Entry, b: _Entry) -> bool:
    if a.record is not None or b.record is not None:
        return a.record is b.record
    return a.deserializer is b.deserializer or a.deserializer == b.deserializer


_default_registry = MessageRegistry()


def default_registry() -> MessageRegistry:
    """The process-wide registry used by ``register_message_type`` and
    ``@serializable`` (and by ``Codec()`` when given no registry)."""
    return _default_registry


def register_message_type(type_id: str, deserializer: Deserializer, *, replace: bool = False) -> None:
    """Register ``deserializer`` under ``type_id`` in the default registry.

    Every node of the process decodes messages of this type with it (unless
    the node was given a ``registry`` of its own); see
    :meth:`MessageRegistry.register` and docs/serialization.md.

    Args:
        type_id: the namespaced type id, ``"myapp::PingMsg"`` (the
            ``message_type_id`` the sender's class declares).
        deserializer: ``bytes -> message``: turns what ``serialize()`` made
            back into the message; raise ``DecodeError`` on bad input.
        replace: replace a different deserializer registered under ``type_id``.

    Raises:
        MessageTypeTaken: ``type_id`` has another deserializer and ``replace`` is false.
        ValueError: ``type_id`` is not a namespaced type id.

    Example::

        register_message_type("example::PingMsg", deserialize_ping)
    """
    _default_registry.register(type_id, deserializer, replace=replace)
