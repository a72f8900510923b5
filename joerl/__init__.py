"""joerl: Erlang/OTP-style actors for Python, on gevent."""

from __future__ import annotations

import logging

from .errors import (
    CallError,
    CallTimeout,
    DecodeError,
    JoerlError,
    MailboxFull,
    NameTaken,
    NoProcError,
    NotSerializable,
    SerializationError,
    UnknownMessageType,
)
from .message import KILL, KILLED, NOCONNECTION, NOPROC, NORMAL, SHUTDOWN, Down, Exit, NodeDown, NodeUp
from .pid import Pid, Ref

__version__ = "0.1.0"

__all__ = [
    "CallError",
    "CallTimeout",
    "DecodeError",
    "Down",
    "Exit",
    "JoerlError",
    "KILL",
    "KILLED",
    "MailboxFull",
    "NOCONNECTION",
    "NOPROC",
    "NORMAL",
    "NameTaken",
    "NoProcError",
    "NodeDown",
    "NodeUp",
    "NotSerializable",
    "Pid",
    "Ref",
    "SHUTDOWN",
    "SerializationError",
    "UnknownMessageType",
    "__version__",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
