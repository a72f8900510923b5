"""joerl: Erlang/OTP-style actors for Python, on gevent."""

from __future__ import annotations

import logging

from .actor import Actor, ActorContext, ActorRef
from .errors import (
    AuthenticationError,
    CallError,
    CallTimeout,
    DecodeError,
    DistributionError,
    EpmdError,
    JoerlError,
    MailboxFull,
    NameTaken,
    NodeUnreachable,
    NoProcError,
    NotRegistered,
    NotSerializable,
    ReceiveTimeout,
    SerializationError,
    StartError,
    UnknownMessageType,
)
from .gen_server import GenServer, GenServerRef, NoReply, Reply, Stop
from .message import KILL, KILLED, NOCONNECTION, NOPROC, NORMAL, SHUTDOWN, Down, Exit, NodeDown, NodeUp
from .node.node import DistributedSystem
from .node.tls import TlsConfig
from .pid import Pid, Ref
from .serialization import (
    ISerializableMessage,
    MessageRegistry,
    SerializableEnvelope,
    register_message_type,
    serializable,
)
from .supervisor import ChildSpec, Supervisor, SupervisorRef, start_supervisor
from .system import ActorSystem, From
from .timer import TimerRef

__version__ = "0.1.0"

__all__ = [
    "Actor",
    "ActorContext",
    "ActorRef",
    "ActorSystem",
    "AuthenticationError",
    "ChildSpec",
    "DistributedSystem",
    "DistributionError",
    "EpmdError",
    "From",
    "GenServer",
    "GenServerRef",
    "ISerializableMessage",
    "MessageRegistry",
    "NoReply",
    "NodeUnreachable",
    "NotRegistered",
    "ReceiveTimeout",
    "Reply",
    "SerializableEnvelope",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorRef",
    "TimerRef",
    "TlsConfig",
    "register_message_type",
    "serializable",
    "start_supervisor",
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
