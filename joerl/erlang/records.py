"""Opt-in Erlang forms for registered Python message types: records and Elixir-struct-like maps (pure).

By default a Python value crosses as the mapping table of docs/erlang.md
says (a dataclass instance has no Erlang form; a NamedTuple is a plain
tuple). A :class:`Records` table, given to the node
(``ErlangConfig(records=...)``), names the types that cross as Erlang code
expects them, both ways:

* ``records.record(Point, "point")``: ``Point(x=1, y=2)`` is the record
  ``#point{x = 1, y = 2}``, that is the tuple ``{point, 1, 2}`` (fields in
  declaration order, as ``-record(point, {x, y})``); a tuple whose first
  element is ``point`` and whose size is 3 comes back as a ``Point``;
* ``records.struct(User, "Elixir.MyApp.User")``: ``User(name="a")`` is the
  map ``%{__struct__: MyApp.User, name: "a"}`` (keys are atoms); a map whose
  ``__struct__`` is that module comes back as a ``User`` (other keys are
  dropped, missing ones take the class's defaults).

Types: dataclasses and NamedTuples (their fields are known). Values inside
are mapped as everything else is (pids, refs, nested records).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .terms import Atom

__all__ = ["STRUCT_KEY", "Records"]

#: The key that names an Elixir struct's module.
STRUCT_KEY = Atom("__struct__")


def _fields(cls: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    names = getattr(cls, "_fields", None)
    if isinstance(names, tuple) and issubclass(cls, tuple):
        return names
    raise TypeError(f"{cls.__name__} is neither a dataclass nor a NamedTuple: its fields are not known")


class Records:
    """The table of registered types (see the module docstring)."""

    def __init__(self) -> None:
        self._by_type: dict[type, tuple[str, Atom, tuple[str, ...]]] = {}
        self._records: dict[tuple[Atom, int], type] = {}
        self._structs: dict[Atom, type] = {}

    def __contains__(self, cls: object) -> bool:
        return cls in self._by_type

    def record(self, cls: type, tag: str | None = None) -> None:
        """``cls`` crosses as the record ``{tag, Field1, ...}`` (``tag``: the class name in lower case).

        Raises:
            TypeError: ``cls`` is not a dataclass or NamedTuple.
            ValueError: ``cls``, or that tag with that many fields, is registered already.
        """
        names = _fields(cls)
        atom = Atom(tag or cls.__name__.lower())
        key = (atom, len(names) + 1)
        if cls in self._by_type or key in self._records:
            raise ValueError(f"{cls.__name__} or record {atom.name}/{len(names)} is registered already")
        self._by_type[cls] = ("record", atom, names)
        self._records[key] = cls

    def struct(self, cls: type, module: str) -> None:
        """``cls`` crosses as an Elixir struct of ``module`` (``"Elixir.MyApp.User"``).

        Raises:
            TypeError: ``cls`` is not a dataclass or NamedTuple.
            ValueError: ``cls`` or ``module`` is registered already.
        """
        names = _fields(cls)
        atom = Atom(module)
        if cls in self._by_type or atom in self._structs:
            raise ValueError(f"{cls.__name__} or struct {module} is registered already")
        self._by_type[cls] = ("struct", atom, names)
        self._structs[atom] = cls

    def out(self, value: Any, inner: Callable[[Any], Any]) -> Any:
        """The Erlang form of ``value`` (a registered type), its fields mapped with ``inner``."""
        kind, atom, names = self._by_type[type(value)]
        if kind == "record":
            return (atom, *(inner(getattr(value, n)) for n in names))
        return {STRUCT_KEY: atom, **{Atom(n): inner(getattr(value, n)) for n in names}}

    def record_in(self, term: tuple[Any, ...], inner: Callable[[Any], Any]) -> Any | None:
        """The registered type for the record ``term``, or None if ``term`` is not one."""
        if not term or term[0].__class__ is not Atom:
            return None
        cls = self._records.get((term[0], len(term)))
        if cls is None:
            return None
        return cls(**dict(zip(self._by_type[cls][2], (inner(v) for v in term[1:]), strict=True)))

    def struct_in(self, term: dict[Any, Any], inner: Callable[[Any], Any]) -> Any | None:
        """The registered type for the struct map ``term``, or None if it is not one."""
        cls = self._structs.get(term.get(STRUCT_KEY))  # type: ignore[arg-type]
        if cls is None:
            return None
        names = self._by_type[cls][2]
        given = {k.name: inner(v) for k, v in term.items() if k.__class__ is Atom and k.name in names}
        return cls(**given)
