"""Errors between nodes: handshakes, links, frames, remote calls."""

from __future__ import annotations

from typing import Any

from ._root import JoerlError
from ._wire import LocalProtocolError, RemoteProtocolError


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


class MessageTooLarge(DistributionError, LocalProtocolError):
    """A message (its frame) is over the receiving node's size limit: refused
    before any byte of it was written (the peer would drop it, or the link).

    The limit is the peer's ``max_frame`` (``LinkConfig.max_frame_size``,
    announced in its HELLO), which also bounds the peer's decoding limits.

    Attributes:
        size: the frame body's length, in bytes (the message and a few bytes of header).
        limit: the peer's limit.
        node: the peer's name, or None where not known.
    """

    def __init__(self, size: int, limit: int, node: str | None = None) -> None:
        where = f"the limit of node {node!r} ({limit} bytes)" if node else f"the peer's limit of {limit} bytes"
        super().__init__(f"message too large: a frame of {size} bytes exceeds {where}; nothing was sent")
        self.size = size
        self.limit = limit
        self.node = node


class NotAllowed(HandshakeError):
    """The peer authenticated, but its name is not in ``allowed_nodes``."""


class IntrospectionError(DistributionError):
    """A node's introspection service refused a query or answered it with something else."""


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


def version_mismatch(local: tuple[int, int], peer: tuple[int, int], peer_name: str | None) -> str:
    """The explanation of a version refusal, naming both ranges."""
    who = f"node {peer_name!r}" if peer_name else "the peer"
    return (
        f"incompatible protocol versions: this node speaks {_range(local)}, {who} speaks {_range(peer)}; "
        "upgrade the older node (see 'Compatibility' in docs/distribution.md)"
    )


def _range(versions: tuple[int, int]) -> str:
    low, high = versions
    return f"version {high}" if low == high else f"versions {low}..{high}"


class IncompatibleVersion(HandshakeRefused):
    """The two nodes speak no protocol version in common (status ``not_allowed``).

    Raised on both sides: by the node that refuses (``by_peer=False``) and by
    the refused one (``by_peer=True``).

    Attributes:
        local_versions: ``(lowest, highest)`` this node speaks.
        peer_versions: ``(lowest, highest)`` the peer speaks.
    """

    def __init__(
        self,
        local_versions: tuple[int, int],
        peer_versions: tuple[int, int],
        *,
        peer: str | None = None,
        by_peer: bool = True,
    ) -> None:
        self.local_versions = local_versions
        self.peer_versions = peer_versions
        super().__init__(
            "not_allowed",
            version_mismatch(local_versions, peer_versions, peer),
            peer=peer,
            by_peer=by_peer,
        )


class CertificateNameMismatch(CertificateRefused):
    """The peer's certificate is valid but does not name the node it claims to be.

    Attributes:
        name: the node name claimed in the handshake.
        subject: the certificate's common name.
        identities: what the certificate names (its URI and DNS names).
    """

    def __init__(self, name: str, subject: str | None, identities: tuple[str, ...]) -> None:
        HandshakeError.__init__(
            self,
            f"the peer claims node name {name!r} but its certificate (subject {subject!r}, "
            f"names {list(identities)}) does not bind that name; link refused",
        )
        self.subject = subject
        self.name = name
        self.identities = identities


class CookieFileError(DistributionError, ValueError):
    """The cookie file cannot be used: unsafe permissions, not a regular file,
    unreadable, empty, or it cannot be created.

    Attributes:
        path: the cookie file.
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"cookie file {path}: {problem}")
        self.path = path
