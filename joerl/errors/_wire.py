"""Wire protocol errors, and the port mapper's."""

from __future__ import annotations

from .._describe import describe
from ._root import JoerlError


class ProtocolError(JoerlError):
    """A wire protocol was violated."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


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


class InvalidNodeName(InvalidName):
    """A node name (``name@host``) that breaks the rules of :mod:`joerl.node.names`.

    Attributes:
        name: the offending name.
        reason: what is wrong with it.
    """


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
