"""The seam between the local runtime and the node layer (the only one).

The runtime (:mod:`joerl.system`) knows nothing of sockets or peers: when a
signal is addressed to a pid of another node it hands it to a
:class:`Router`, which a node installs with ``ActorSystem.attach_router``.
That call returns the :class:`Inbound` entry, the one way a node applies
what arrives from peers to the process table. Neither side reads the other's
private state.

Pids crossing this seam are the runtime's: a local pid has ``node == 0``; a
remote one carries its node's id and creation. The node maps pids at the
wire boundary, never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .pid import Pid, Ref

if TYPE_CHECKING:
    from ._gen import From
    from .mailbox import Mailbox


class RemoteName(NamedTuple):
    """A ``(name, node)`` destination on another node: only that node can resolve it."""

    name: str
    node: str


#: What a remote monitor watches: a pid, or a name registered on another node.
RemoteTarget = Pid | RemoteName


class Router(Protocol):
    """What the local runtime asks of a node: signals to processes of other nodes.

    Every method but :meth:`call` and :meth:`is_alive` returns at once (a
    signal is queued for the peer's link, dialled on first use); what cannot
    be delivered comes back as Erlang says: ``noconnection`` for links and
    monitors, a dropped message for a send.
    """

    @property
    def node_name(self) -> str:
        """This node's name (a ``(name, node_name)`` destination is local)."""
        ...

    @property
    def node_id(self) -> int:
        """This node's id on the wire: a pid carrying it is of this node, of this incarnation or an earlier one."""
        ...

    def local_pid(self, pid: Pid) -> Pid:
        """A pid of this incarnation of this node as peers name it -> the local pid (``node == 0``).

        Any other pid (another node's, or one of an earlier incarnation of
        this node) is returned as it is.
        """
        ...

    def route_send(self, sender: Pid | None, to: Pid, msg: Any) -> None:
        """A message to a pid of another node (raises ``NotSerializable`` at once)."""

    def route_send_named(self, sender: Pid | None, name: str, node: str, msg: Any) -> None:
        """``{Name, Node} ! Msg``: the name is resolved on ``node``."""

    def route_link(self, local: Pid, remote: Pid) -> None:
        """``local`` linked itself to ``remote`` (recorded locally already)."""

    def route_unlink(self, local: Pid, remote: Pid) -> None:
        """``local`` removed its link to ``remote``."""

    def route_link_exit(self, local: Pid, remote: Pid, reason: Any) -> None:
        """Linked ``local`` ended with ``reason``: the exit signal for ``remote``."""

    def route_exit(self, sender: Pid, to: Pid, reason: Any) -> None:
        """``exit(to, reason)`` from ``sender`` (Erlang's exit/2)."""

    def route_monitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        """``watcher`` monitors a remote pid or ``(name, node)``; ``Down`` comes back through :class:`Inbound`."""

    def route_demonitor(self, watcher: Pid, target: RemoteTarget, ref: Ref) -> None:
        """``watcher`` dropped monitor ``ref``."""

    def route_down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        """Local ``pid``, monitored by remote ``watcher`` under ``ref``, ended with ``reason``."""

    def route_reply(self, from_: From, value: Any) -> None:
        """A reply to a caller on another node."""

    def call(self, server: Pid | RemoteName, request: Any, timeout: float | None, caller: Pid | None) -> Any:
        """A call to a server on another node; blocks the calling greenlet.

        Raises:
            CallTimeout: no reply in time. CallError: the server or its node is gone.
        """

    def is_alive(self, pid: Pid) -> bool:
        """A round trip to ``pid``'s node: is the process running?"""

    def route_try_send(self, sender: Pid | None, to: Pid, msg: Any) -> bool:
        """:meth:`route_send` unless flow control holds ``to`` back (its bounded
        mailbox is full and this node has no credit left for it): then False,
        nothing sent (``try_send`` raises ``MailboxFull``)."""


class Inbound(Protocol):
    """What a node applies to the local process table (the runtime implements it).

    Pids are local ones (``node == 0``) for this node's processes and the
    peers' own pids for theirs; every method is safe to call from the link's
    reader greenlet and never blocks, except :meth:`deliver`, which waits
    while a bounded mailbox is full.
    """

    def mailbox(self, local_id: int) -> Mailbox | None:
        """The mailbox of the live local process with id ``local_id`` (the delivery hot path)."""

    def signal(self, pid: Pid, msg: Any, sender: Pid | None = None) -> bool:
        """Queue ``msg`` for local ``pid`` regardless of its bound (NodeUp, NodeDown); False if it is gone."""

    def add_link(self, local: Pid, remote: Pid) -> bool:
        """Remote ``remote`` linked to ``local``; False if ``local`` is gone (answer ``noproc``)."""

    def record_link(self, local: Pid, remote: Pid) -> bool:
        """``local`` holds a link to ``remote`` that the peer already set up (remote spawn_link)."""

    def remove_link(self, local: Pid, remote: Pid) -> None:
        """Remote ``remote`` unlinked from ``local``."""

    def exit(self, sender: Pid, local: Pid, reason: Any, from_link: bool) -> None:
        """An exit signal from remote ``sender`` (through a link, or exit/2)."""

    def add_monitor(self, watcher: Pid, local: Pid, ref: Ref) -> bool:
        """Remote ``watcher`` monitors ``local``; False if it is gone (answer ``noproc``)."""

    def record_monitor(self, watcher: Pid, ref: Ref, remote: Pid) -> bool:
        """Local ``watcher`` holds monitor ``ref`` of ``remote`` that the peer already set up."""

    def remove_monitor(self, local: Pid, ref: Ref) -> None:
        """Remote watcher dropped its monitor ``ref`` of ``local``."""

    def down(self, watcher: Pid, ref: Ref, pid: Pid, reason: Any) -> None:
        """Remote ``pid``, monitored by local ``watcher`` under ``ref``, ended (a ``Down``, or a call fails)."""

    def node_down(self, node_id: int, name: str, reason: Any) -> None:
        """The link to a node is gone: fire every link and monitor across it with ``reason``."""

    def reply(self, ref: Ref, value: Any) -> bool:
        """Resolve the runtime's own call waiting under local ``ref`` with ``value``.

        The reply to a call whose server was local, from a process of another
        node the server handed its ``From`` to. False if no call waits under
        ``ref`` (it ended: timed out, or its server died).
        """
