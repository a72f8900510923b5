"""``@serializable``: a message type whose wire form is derived from its
dataclass fields (the Python counterpart of joerl's ``impl_serializable!``).

A record travels as ``[ext6(version, type_id), {field: value, ...}]``; its
field values go through the same codec as the rest of the message, so Pids in
them pass the node's pid hooks and nested records, tuples and big ints work.
An older version's fields are brought up to date by the class's ``upgrade``
function before the class is called with them.
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack
from zope.interface import classImplements
from zope.interface.verify import verifyClass

from ..errors import BrokenMessageType, DecodeError, SerializationError
from ._active import current_codec
from ._interface import ISerializableMessage, check_type_id
from ._registry import MessageRegistry, default_registry
from ._wire import EXT_RECORD, RECORD_VERSION, make_ext

T = TypeVar("T")

#: ``upgrade(old_version, fields) -> fields``: turn an older version's field
#: dict into one the current class accepts.
Upgrade = Callable[[int, "dict[str, Any]"], "dict[str, Any]"]

_RESERVED = frozenset({"message_type_id", "message_version", "serialize"})


class RecordSpec:
    """How one ``@serializable`` class is encoded and rebuilt."""

    __slots__ = (
        "cls", "type_id", "version", "fields", "upgrade", "head", "to_wire", "names", "plain", "top", "fields_of",
    )  # fmt: skip

    def __init__(self, cls: type, type_id: str, version: int, fields: tuple[str, ...], upgrade: Upgrade | None) -> None:
        self.cls = cls
        self.type_id = type_id
        self.version = version
        self.fields = fields
        self.upgrade = upgrade
        self.head = make_ext(EXT_RECORD, RECORD_VERSION.pack(version) + type_id.encode("utf-8"))
        self.to_wire, self.fields_of = _make_to_wire(self.head, fields)
        #: A record's bytes at the top of a message: ``top + pack(fields_of(record))``
        #: (the array header and the head, as msgpack packs ``to_wire(record)``).
        self.top = b"\x92" + msgpack.packb(self.head)
        self.names = frozenset(fields)
        #: Whether an instance given every field may be built without ``__init__``
        #: (``object.__new__`` and its ``__dict__``), as ``copy`` and ``pickle`` build one.
        self.plain = _init_only_stores(cls, fields)

    def __repr__(self) -> str:
        return f"<RecordSpec {self.type_id!r} v{self.version} {self.cls.__qualname__}>"

    def from_fields(self, version: int, fields: dict[Any, Any]) -> Any:
        """Build an instance from a decoded field dict written by ``version``.

        Raises:
            DecodeError: the version is newer than this class, the upgrade
                failed, or the class rejected the fields.
        """
        if version != self.version:
            if version > self.version:
                raise DecodeError(
                    f"{self.type_id!r} arrived in version {version}; this node knows up to version {self.version}"
                )
            if self.upgrade is not None:
                try:
                    fields = self.upgrade(version, dict(fields))
                except SerializationError:
                    raise
                except Exception as exc:
                    raise DecodeError(f"upgrading {self.type_id!r} from version {version} failed: {exc!r}") from exc
                if type(fields) is not dict:
                    raise DecodeError(f"the upgrade of {self.type_id!r} returned {type(fields).__name__}, not dict")
        try:
            return self.cls(**fields)
        except Exception as exc:
            err = self.build_error(version, fields, exc)
            if err is exc:
                raise
            raise err from exc

    def build_error(self, version: int, fields: dict[Any, Any], exc: Exception) -> SerializationError:
        """The error for fields the class rejected (a ``SerializationError`` passes as is)."""
        if isinstance(exc, SerializationError):
            return exc
        names = ", ".join(repr(k) for k in list(fields)[:8])
        return DecodeError(
            f"cannot build {self.cls.__name__} from version {version} fields ({names}) of {self.type_id!r}: {exc}"
        )

    def from_bytes(self, data: bytes) -> Any:
        """The registered deserializer: inverse of the generated ``serialize()``."""
        obj = current_codec().decode(data)
        if obj.__class__ is not self.cls:
            raise DecodeError(f"bytes registered as {self.type_id!r} decoded to a {type(obj).__name__}")
        return obj


def _init_only_stores(cls: type, names: tuple[str, ...]) -> bool:
    """True when ``cls(**fields)`` given every field only stores them in the
    instance ``__dict__``: its ``__init__`` is the one ``@dataclass`` wrote and
    takes exactly the fields (no ``InitVar``, no ``init=False`` field), there is
    no ``__post_init__``, ``__new__`` or ``__setattr__`` of the class's own
    (a frozen dataclass's is allowed: it refuses stores after ``__init__``), no
    ``__slots__`` anywhere, and no field is a descriptor on the class."""
    init: Any = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    params: Any = getattr(cls, "__dataclass_params__", None)
    if code is None or code.co_filename != "<string>" or not getattr(params, "init", False):
        return False  # not the generated __init__ (dataclasses compiles it from a string)
    try:
        args = tuple(inspect.signature(init).parameters)[1:]
    except (TypeError, ValueError):
        return False
    if args != names or len(dataclasses.fields(cls)) != len(names) or hasattr(cls, "__post_init__"):
        return False
    new: Any = cls.__new__
    if new is not object.__new__ or any("__slots__" in vars(k) for k in cls.__mro__[:-1]):
        return False
    setattr_: Any = cls.__setattr__
    if (
        setattr_ is not object.__setattr__
        and getattr(getattr(setattr_, "__code__", None), "co_filename", "") != "<string>"
    ):
        return False
    return not any(hasattr(type(inspect.getattr_static(cls, n, None)), "__set__") for n in names)


def _make_to_wire(
    head: Any, names: tuple[str, ...]
) -> tuple[Callable[[Any], list[Any]], Callable[[Any], dict[str, Any]]]:
    """``to_wire(o) -> [head, {field: value}]`` and ``fields_of(o) -> {field: value}``."""
    # A generated function with one dict display is twice as fast as a dict
    # comprehension over getattr (dataclasses generates __init__ the same way).
    # Names are checked to be identifiers, so nothing but attribute loads is built.
    if all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        body = ", ".join(f"{n!r}: o.{n}" for n in names)
        namespace: dict[str, Any] = {"HEAD": head}
        exec(f"def to_wire(o):\n    return [HEAD, {{{body}}}]\n", namespace)  # noqa: S102
        exec(f"def fields_of(o):\n    return {{{body}}}\n", namespace)  # noqa: S102
        return namespace["to_wire"], namespace["fields_of"]

    def to_wire(o: Any) -> list[Any]:
        return [head, {n: getattr(o, n) for n in names}]

    def fields_of(o: Any) -> dict[str, Any]:
        return {n: getattr(o, n) for n in names}

    return to_wire, fields_of


def serializable(
    type_id: str,
    *,
    version: int = 1,
    upgrade: Upgrade | None = None,
    registry: MessageRegistry | None = None,
    replace: bool = False,
) -> Callable[[type[T]], type[T]]:
    """Make a dataclass a message type that crosses nodes; register it.

    Put it above ``@dataclass``::

        @serializable("myapp::PingMsg", version=2, upgrade=ping_v1_to_v2)
        @dataclass(frozen=True)
        class PingMsg:
            count: int
            reply_to: Pid
            note: str = ""

    The class gets ``message_type_id``, ``message_version``, a ``serialize()``
    and the ``ISerializableMessage`` declaration; its ``__init__`` fields
    travel by name. Bump ``version`` when a change needs ``upgrade``: adding a
    field with a default does not.

    Args:
        type_id: stable, namespaced id (``"myapp::PingMsg"``).
        version: the current format version (>= 1).
        upgrade: ``upgrade(old_version, fields) -> fields`` for payloads that
            older versions wrote; without it, old fields go to the class as they are.
        registry: where to register (default: ``default_registry()``).
        replace: replace a different type already registered under ``type_id``.

    Raises:
        TypeError: not applied to a dataclass, a field name is reserved, or
            the class defines ``serialize`` itself.
        ValueError: invalid ``type_id`` or ``version``.
        MessageTypeTaken: the id is taken by another type.
    """
    check_type_id(type_id)
    if type(version) is not int or not 1 <= version <= 0xFFFFFFFF:
        raise ValueError(f"version must be an int in 1..2**32-1, got {version!r}")
    if upgrade is not None and not callable(upgrade):
        raise TypeError(f"upgrade must be callable, got {upgrade!r}")

    def decorate(cls: type[T]) -> type[T]:
        if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
            raise TypeError(f"@serializable({type_id!r}) must be applied to a dataclass (put it above @dataclass)")
        names = tuple(f.name for f in dataclasses.fields(cls) if f.init)
        clash = _RESERVED.intersection(names) | _RESERVED.intersection(vars(cls))
        if clash:
            raise TypeError(f"{cls.__qualname__} defines {sorted(clash)}, which @serializable provides")
        spec = RecordSpec(cls, type_id, version, names, upgrade)

        def serialize(self: Any) -> bytes:
            """The message's bytes (the codec's encoding of this record)."""
            if type(self).__dict__.get("__joerl_record__") is not spec:
                reason = f"it inherits from @serializable {cls.__qualname__} without its own @serializable"
                raise BrokenMessageType(type(self), reason)
            return current_codec().encode(self)

        serialize.__qualname__ = f"{cls.__qualname__}.serialize"
        cls.message_type_id = type_id  # type: ignore[attr-defined]
        cls.message_version = version  # type: ignore[attr-defined]
        cls.serialize = serialize  # type: ignore[attr-defined]
        cls.__joerl_record__ = spec  # type: ignore[attr-defined]
        classImplements(cls, ISerializableMessage)
        verifyClass(ISerializableMessage, cls)
        (registry if registry is not None else default_registry()).register_class(cls, replace=replace)
        return cls

    return decorate
