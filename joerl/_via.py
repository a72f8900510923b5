"""via names: ``("via", registry, name)``, a name held in a registry of the user's choosing.

OTP's ``{via, Module, Name}``: wherever joerl takes a registered name (send,
try_send, send_after, cast, call, monitor, link, exit, a supervisor's child
name), it also takes ``("via", registry, name)``, and asks ``registry`` for
the pid. A registry is any object with the methods of :class:`ViaRegistry`
(OTP's via module callbacks); ``node.global_names``
(:class:`~joerl.node.global_names.GlobalNames`) is one, and so is a user's
class of three methods.

Resolution is ``registry.whereis_name(name)`` at the moment of the send (a
timer's: when it fires), never cached. A name nobody holds behaves as a
plain name nobody holds: ``send`` raises ``NotRegistered``, a cast or a timer
drops the message and counts it, a monitor gets ``Down(..., "noproc")`` at
once, a call fails with ``CallError(..., "noproc")``. ``whereis_name`` may be
called from the event loop's hub (a timer firing), so it must answer from
memory and never block.

This module is pure: it imports no runtime and no IO.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from zope.interface import Interface

from .errors import NotRegistered
from .pid import Pid

__all__ = ["VIA", "IViaRegistry", "ViaName", "ViaRegistry", "check_via", "is_via", "via_resolve", "via_whereis"]

#: The tag of a via name: ``(VIA, registry, name)``.
VIA = "via"

#: A via name: ``("via", registry, name)``.
ViaName = tuple[str, "ViaRegistry", Any]

_METHODS = ("register_name", "unregister_name", "whereis_name")


@runtime_checkable
class ViaRegistry(Protocol):
    """What joerl asks of a via registry (OTP's via module callbacks).

    ``whereis_name`` resolves every send, call and monitor; ``register_name``
    and ``unregister_name`` are what a supervisor calls for a child whose
    name is a via name (registered when it starts, unregistered when it
    ends). OTP's optional ``send(Name, Msg)`` is not part of the contract:
    joerl always resolves with ``whereis_name`` and sends itself, so that the
    sender, the ordering and the drop counters are those of a plain send.
    """

    def register_name(self, name: Any, pid: Pid) -> bool:
        """Bind ``name`` to ``pid``.

        Args:
            name: the name, as the via tuple carries it.
            pid: the process to bind it to.

        Returns:
            True if bound; False if the name is taken (OTP's ``no``).
        """
        ...

    def unregister_name(self, name: Any) -> None:
        """Free ``name``; nothing happens when nobody holds it.

        Args:
            name: the name, as the via tuple carries it.
        """
        ...

    def whereis_name(self, name: Any) -> Pid | None:
        """The pid holding ``name``, or None; answers from memory, never blocks.

        Args:
            name: the name, as the via tuple carries it.

        Returns:
            The holder's pid (of this node or another), or None.
        """
        ...


class IViaRegistry(Interface):  # type: ignore[misc]  # zope.interface ships no types
    """The same contract as :class:`ViaRegistry`, for ``zope.interface`` users."""

    def register_name(name: Any, pid: Pid) -> bool:  # type: ignore[empty-body]  # a zope method: no self
        """Bind ``name`` to ``pid``; False if the name is taken."""

    def unregister_name(name: Any) -> None:  # a zope method: no self
        """Free ``name``."""

    def whereis_name(name: Any) -> Pid | None:  # a zope method: no self
        """The pid holding ``name``, or None."""


def is_via(dest: Any) -> bool:
    """True for a ``("via", registry, name)`` tuple (the registry is not checked).

    Args:
        dest: any destination.

    Returns:
        Whether ``dest`` has the shape of a via name.
    """
    return dest.__class__ is tuple and len(dest) == 3 and dest[0] == VIA


def check_via(dest: Any) -> ViaName:
    """``dest``, checked to be a via name whose registry has the :class:`ViaRegistry` methods.

    Args:
        dest: a ``("via", registry, name)`` tuple.

    Returns:
        ``dest``.

    Raises:
        TypeError: ``dest`` is not a via name, or its registry lacks a method.
    """
    if not is_via(dest):
        raise TypeError(f"expected a via name ('via', registry, name), got {dest!r}")
    registry = dest[1]
    missing = [m for m in _METHODS if not callable(getattr(registry, m, None))]
    if missing:
        raise TypeError(
            f"via registry {registry!r} lacks {', '.join(missing)}: "
            "a via registry has register_name(name, pid), unregister_name(name) and whereis_name(name)"
        )
    via: ViaName = dest
    return via


def via_whereis(dest: Any) -> Pid | None:
    """The pid a via name resolves to now, or None.

    Args:
        dest: a ``("via", registry, name)`` tuple.

    Returns:
        What the registry's ``whereis_name`` answered.

    Raises:
        TypeError: ``dest`` is no via name, or the registry answered something
            other than a Pid or None.
    """
    _, registry, name = check_via(dest)
    pid = registry.whereis_name(name)
    if pid is not None and not isinstance(pid, Pid):
        raise TypeError(f"via registry {registry!r}: whereis_name({name!r}) returned {pid!r}, not a Pid or None")
    return pid


def via_resolve(dest: Any) -> Pid:
    """The pid a via name resolves to now (what ``ActorSystem._resolve`` asks).

    Args:
        dest: a ``("via", registry, name)`` tuple.

    Returns:
        The holder's pid.

    Raises:
        NotRegistered: nobody holds the name (``exc.name`` is the whole via tuple).
        TypeError: as :func:`via_whereis`.
    """
    pid = via_whereis(dest)
    if pid is None:
        raise NotRegistered(dest)
    return pid
