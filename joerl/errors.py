"""The joerl exception tree: one root, one branch per subsystem.

Exit reasons are data (``"normal"``, ``"shutdown"``, an exception, ...), not
exceptions; the classes here are what joerl *raises* at its callers.
Constructors never log.
"""

from __future__ import annotations

from typing import Any


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


class UnknownMessageType(SerializationError):
    """Bytes name a message type that is not registered here."""

    def __init__(self, type_id: str) -> None:
        super().__init__(f"unknown message type {type_id!r}: register it on this node")
        self.type_id = type_id


class DecodeError(SerializationError):
    """Bytes are not a valid encoding (malformed, truncated, or over a limit)."""


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


# -- distribution ------------------------------------------------------------


class DistributionError(JoerlError):
    """A node-to-node operation failed."""


class HandshakeError(DistributionError):
    """Two nodes could not complete their handshake."""


class AuthenticationError(HandshakeError):
    """The peer failed the cookie challenge (or we did)."""


class ConnectionLost(DistributionError):
    """The link to a peer node broke."""


class NodeUnreachable(DistributionError):
    """A node could not be found or connected to."""

    def __init__(self, node: str, reason: str = "") -> None:
        super().__init__(f"node {node!r} is unreachable" + (f": {reason}" if reason else ""))
        self.node = node
        self.reason = reason
