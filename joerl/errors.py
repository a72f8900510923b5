"""The joerl exception tree: one root, one branch per subsystem.

Exit reasons are data (``"normal"``, ``"shutdown"``, an exception, ...), not
exceptions; the classes here are what joerl *raises* at its callers.
Constructors never log.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from ._describe import describe
from .message import format_reason
from .pid import Pid


class JoerlError(Exception):
    """Root of every exception joerl raises."""


# -- local runtime -----------------------------------------------------------


class ActorError(JoerlError):
    """Something went wrong with an actor or with the system running it."""


class NoProcError(ActorError):
    """The process does not exist (never did, or is dead)."""

    def __init__(self, pid: Any) -> None:
        super().__init__(f"no process {pid}")
        self.pid = pid


class MailboxFull(ActorError):
    """A bounded mailbox is full and the send was asked not to wait."""

    def __init__(self, pid: Any) -> None:
        super().__init__(f"mailbox of {pid} is full")
        self.pid = pid


class NameTaken(ActorError):
    """A registered name is already in use."""

    def __init__(self, name: str, owner: Any = None) -> None:
        msg = f"name {name!r} is already registered"
        if owner is not None:
            msg += f" to {owner}"
        super().__init__(msg)
        self.name = name
        self.owner = owner


class NotRegistered(ActorError):
    """No process is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no process registered as {name!r}")
        self.name = name


class ReceiveTimeout(ActorError, TimeoutError):
    """``receive(timeout=...)`` found no matching message in time."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no matching message within {timeout}s")
        self.timeout = timeout


class SystemShutdown(ActorError):
    """The actor system has been shut down; nothing can be spawned."""


class CallError(ActorError):
    """A GenServer call failed: the server was dead, or died during the call."""

    def __init__(self, server: Any, reason: Any) -> None:
        super().__init__(f"call to {server} failed: {reason!r}")
        self.server = server
        self.reason = reason


class CallTimeout(CallError, TimeoutError):
    """A GenServer call got no reply within its timeout."""

    def __init__(self, server: Any, timeout: float) -> None:
        ActorError.__init__(self, f"call to {server} timed out after {timeout}s")
        self.server = server
        self.reason = "timeout"
        self.timeout = timeout


class StartError(ActorError):
    """A process failed to start (a GenServer's ``init`` raised or stopped)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"failed to start: {reason!r}")
        self.reason = reason


class SupervisorError(ActorError):
    """A supervisor refused a request about its children."""


class ChildNotFound(SupervisorError):
    """No child with this id."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"no child with id {id!r}")
        self.id = id


class AlreadyStarted(SupervisorError):
    """``start_child``: a child with this id is running."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is already started as {pid}")
        self.id = id
        self.pid = pid


class AlreadyPresent(SupervisorError):
    """``start_child``: a (stopped) child with this id exists: restart or delete it."""

    def __init__(self, id: Hashable) -> None:
        super().__init__(f"child {id!r} is already present (not running): use restart_child or delete_child")
        self.id = id


class StillRunning(SupervisorError):
    """``restart_child``/``delete_child``: the child runs; terminate it first."""

    def __init__(self, id: Hashable, pid: Pid) -> None:
        super().__init__(f"child {id!r} is running as {pid}: terminate_child it first")
        self.id = id
        self.pid = pid


class ChildStartError(SupervisorError):
    """A child's ``start`` raised, or returned something that is not a process."""

    def __init__(self, id: Hashable, reason: Any) -> None:
        super().__init__(f"child {id!r} failed to start: {format_reason(reason)}")
        self.id = id
        self.reason = reason


class TaskError(JoerlError):
    """A task ended without a result.

    Attributes:
        pid: the task's pid.
        reason: its exit reason: the exception it raised (a local task), an
            :class:`~joerl.message.ExceptionReason` (a task on another node),
            or a plain reason such as ``"killed"``.
        traceback: the formatted traceback of the crash, from the node where
            it ran (None when the task did not raise).
    """

    def __init__(self, pid: Pid | None, reason: Any, traceback: str | None = None) -> None:
        detail = f":\n{traceback}" if traceback else ""
        super().__init__(f"task {pid} exited with {format_reason(reason)}{detail}")
        self.pid = pid
        self.reason = reason
        self.traceback = traceback


class TaskTimeout(TaskError, TimeoutError):
    """:meth:`Task.await_` got no result within its timeout (the task keeps running)."""

    def __init__(self, pid: Pid | None, timeout: float | None) -> None:
        JoerlError.__init__(self, f"task {pid} gave no result within {timeout}s")
        self.pid = pid
        self.reason = "timeout"
        self.traceback = None
        self.timeout = timeout


class PoolError(JoerlError):
    """A pool could not lend a worker."""


class PoolTimeout(PoolError, TimeoutError):
    """A blocking checkout got no worker within its timeout."""

    def __init__(self, pool: Any, timeout: float | None) -> None:
        super().__init__(f"no worker of pool {pool} became free within {timeout}s (all out, overflow used)")
        self.pool = pool
        self.timeout = timeout


class PoolFull(PoolError):
    """A non-blocking checkout found every worker out and the overflow used."""

    def __init__(self, pool: Any) -> None:
        super().__init__(f"pool {pool} has no free worker and no overflow left")
        self.pool = pool


class MaxChildrenReached(SupervisorError):
    """``start_child``: a dynamic supervisor already runs its ``max_children``."""

    def __init__(self, max_children: int) -> None:
        super().__init__(f"the supervisor already has its maximum of {max_children} children")
        self.max_children = max_children


class TransitionError(JoerlError, ValueError):
    """A machine that declares its ``transitions`` took one it did not declare.

    The machine crashes with this as its exit reason. Fields: ``machine`` (the
    class name), ``old`` and ``new`` (the states).
    """

    def __init__(self, machine: str, old: Any, new: Any) -> None:
        super().__init__(f"{machine}: transition {old!r} -> {new!r} is not declared in {machine}.transitions")
        self.machine = machine
        self.old = old
        self.new = new


# -- serialization -----------------------------------------------------------


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


# -- wire protocols ----------------------------------------------------------


class ProtocolError(JoerlError):
    """A wire protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


# -- port mapper -------------------------------------------------------------


class EpmdError(JoerlError):
    """A port mapper request failed."""


class EpmdProtocolError(EpmdError, RemoteProtocolError):
    """The peer sent bytes that break the EPMD protocol (or joerl's extension)."""


class InvalidName(EpmdError, LocalProtocolError, ValueError):
    """A node name that the port mapper cannot hold.

    Attributes:
        name: the offending name.
        reason: what is wrong with it.
    """

    def __init__(self, name: object, reason: str) -> None:
        super().__init__(f"invalid node name {describe(name, 300)}: {reason}")
        self.name = name
        self.reason = reason


class EpmdConnectionError(EpmdError, ConnectionError):
    """The port mapper could not be reached, or dropped the connection."""


class EpmdTimeout(EpmdError, TimeoutError):
    """The port mapper did not answer in time."""


class NameInUse(EpmdError):
    """The name is already registered (by another node, or by this client)."""

    def __init__(self, name: str, detail: str = "") -> None:
        super().__init__(f"the name {name!r} is already registered" + (f" ({detail})" if detail else ""))
        self.name = name


class RegistrationRefused(EpmdError):
    """The daemon refused a registration for another reason than a taken name.

    Attributes:
        code: the extension's error code (``not_allowed``, ``too_large``, ...).
    """

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(f"registration of {name!r} refused ({code}): {message}")
        self.name = name
        self.code = code


class EpmdClientClosed(EpmdError):
    """The client was closed."""


# -- distribution ------------------------------------------------------------


class DistributionError(JoerlError):
    """A node-to-node operation failed."""


class HandshakeError(DistributionError):
    """Two nodes could not complete their handshake."""


class AuthenticationError(HandshakeError):
    """The peer failed the cookie challenge (or we did)."""


class LinkDown(DistributionError):
    """A link to a peer node cannot carry this message: catch this for either cause below."""


class LinkClosed(LinkDown):
    """This node closed the link (shutdown, or a link replaced by a newer one): "you closed it"."""


class ConnectionLost(LinkDown):
    """The peer or the network broke the link (reset, EOF, missed ticks): "it broke"."""


class NodeUnreachable(DistributionError):
    """A node could not be found or connected to."""

    def __init__(self, node: str, reason: str = "") -> None:
        super().__init__(f"node {node!r} is unreachable" + (f": {reason}" if reason else ""))
        self.node = node
        self.reason = reason


class HandshakeProtocolError(HandshakeError, RemoteProtocolError):
    """The peer broke the handshake protocol (malformed or unexpected message)."""


class HandshakeRefused(HandshakeError):
    """A handshake ended with a refusal, by the peer or by us.

    Attributes:
        status: the refusal status (``nok``, ``busy``, ``not_allowed``,
            ``id_collision``).
        reason: the human explanation sent with it.
        peer: the peer's name when known.
        by_peer: True when the peer refused us, False when we refused it.
    """

    def __init__(self, status: str, reason: str = "", *, peer: str | None = None, by_peer: bool = True) -> None:
        who = f"node {peer!r}" if peer else "the peer"
        text = f"{who} refused the link" if by_peer else f"refused the link with {who}"
        super().__init__(f"{text}: {status}" + (f" ({reason})" if reason else ""))
        self.status = status
        self.reason = reason
        self.peer = peer
        self.by_peer = by_peer


class SimultaneousConnect(HandshakeRefused):
    """Both nodes dialled each other; this dial lost the tie-break (status ``nok``).

    Not a failure: the other node's dial is the one that becomes the link.
    Wait for it (up to the handshake deadline) instead of dialling again.
    """


class NodeIdCollision(HandshakeRefused):
    """Two nodes with different names have the same node id (status ``id_collision``)."""


class CertificateRefused(HandshakeError):
    """The peer's certificate is valid but its subject is not allowed."""

    def __init__(self, subject: str | None) -> None:
        super().__init__(f"certificate subject {subject!r} is not in the allow-list")
        self.subject = subject


class FrameError(RemoteProtocolError):
    """One link frame could not be decoded; it is skipped, the stream stays in sync.

    Attributes:
        size: the frame's body length.
        op: its opcode when that much could be read, else None.
    """

    def __init__(self, message: str, *, size: int, op: int | None = None) -> None:
        super().__init__(f"bad frame ({size} bytes): {message}")
        self.size = size
        self.op = op


class OversizedFrame(RemoteProtocolError):
    """The peer announced a frame larger than the limit: the link must close.

    Attributes:
        size: the announced body length.
        limit: the configured maximum.
        messages: what the same ``feed`` call decoded before this frame, in
            order: deliver them before closing.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes (max_frame_size); closing the link")
        self.size = size
        self.limit = limit
        self.messages: list[Any] = []  # the messages and FrameErrors of that feed call


class NotAllowed(HandshakeError):
    """The peer authenticated, but its name is not in ``allowed_nodes``."""


class RpcError(DistributionError):
    """A remote procedure call failed on the remote side.

    Attributes:
        node: the target node.
        name: the handler's name.
        kind: ``"raised"`` (the handler raised), ``"no_such_handler"``,
            ``"no_server"`` (the node runs no rpc server), ``"badarg"``
            (the request was malformed), ``"badreply"`` (the result could not
            be sent back) or ``"server_down"`` (the rpc server ended).
        remote_type: the remote exception's class name (``"raised"``, ``"badreply"``).
        remote_message: its message (``str(exc)``).
        remote_traceback: its traceback text, as the remote node formatted it.
    """

    def __init__(
        self,
        node: str,
        name: str,
        kind: str,
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
    ) -> None:
        if kind == "raised":
            text = f"rpc {name!r} on {node!r} raised {remote_type}: {remote_message}"
        elif kind == "no_such_handler":
            text = f"rpc {name!r} on {node!r}: no such handler"
        else:
            text = f"rpc {name!r} on {node!r} failed: {kind}" + (f" ({remote_message})" if remote_message else "")
        super().__init__(text)
        self.node = node
        self.name = name
        self.kind = kind
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
