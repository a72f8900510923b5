"""joerl: Erlang/OTP-style actors for Python, on gevent."""

from __future__ import annotations

import logging

from . import aio, gen_statem, pg, pool, rpc, task
from ._run import run
from ._stats import RuntimeStats
from ._via import IViaRegistry, ViaRegistry
from .actor import Actor, ActorContext, ActorRef
from .errors import (
    AuthenticationError,
    CallError,
    CallTimeout,
    CertificateNameMismatch,
    ConnectionLost,
    CookieFileError,
    DecodeError,
    DistributionError,
    EpmdError,
    IncompatibleVersion,
    JoerlError,
    LinkClosed,
    LinkDown,
    MailboxFull,
    MaxChildrenReached,
    NameTaken,
    NodeUnreachable,
    NoProcError,
    NotRegistered,
    NotSerializable,
    PoolFull,
    PoolTimeout,
    ReceiveTimeout,
    RpcError,
    SerializationError,
    StartError,
    SupervisorError,
    TaskError,
    TaskTimeout,
    TransitionError,
    UnknownMessageType,
)
from .gen_server import GenServer, GenServerRef, NoReply, Reply, Stop
from .gen_statem import GenStatem, GenStatemRef
from .message import (
    KILL,
    KILLED,
    NOCONNECTION,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Down,
    ExceptionReason,
    Exit,
    NodeDown,
    NodeUp,
)
from .node.node import DistributedSystem
from .node.tls import TlsConfig
from .pg import PgEvent
from .pid import Pid, Ref
from .pool import Pool, start_pool
from .rpc import RpcHandlers
from .serialization import (
    ISerializableMessage,
    MessageRegistry,
    SerializableEnvelope,
    register_message_type,
    serializable,
)
from .supervisor import ChildSpec, DynamicSupervisor, Supervisor, SupervisorRef, start_supervisor
from .system import ActorSystem, From
from .task import Task, TaskSupervisor
from .timer import TimerRef

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "Actor",
    "ActorContext",
    "ActorRef",
    "ActorSystem",
    "aio",
    "AuthenticationError",
    "CallError",
    "CallTimeout",
    "CertificateNameMismatch",
    "ChildSpec",
    "ConnectionLost",
    "CookieFileError",
    "DecodeError",
    "DistributedSystem",
    "DistributionError",
    "Down",
    "DynamicSupervisor",
    "EpmdError",
    "ExceptionReason",
    "Exit",
    "From",
    "gen_statem",
    "GenServer",
    "GenServerRef",
    "GenStatem",
    "GenStatemRef",
    "IncompatibleVersion",
    "IViaRegistry",
    "ISerializableMessage",
    "JoerlError",
    "KILL",
    "KILLED",
    "LinkClosed",
    "LinkDown",
    "MailboxFull",
    "MaxChildrenReached",
    "MessageRegistry",
    "NameTaken",
    "NOCONNECTION",
    "NodeDown",
    "NodeUnreachable",
    "NodeUp",
    "NOPROC",
    "NoProcError",
    "NoReply",
    "NORMAL",
    "NotRegistered",
    "NotSerializable",
    "pg",
    "PgEvent",
    "Pid",
    "pool",
    "Pool",
    "PoolFull",
    "PoolTimeout",
    "ReceiveTimeout",
    "Ref",
    "register_message_type",
    "Reply",
    "rpc",
    "RpcError",
    "RpcHandlers",
    "run",
    "RuntimeStats",
    "serializable",
    "SerializableEnvelope",
    "SerializationError",
    "SHUTDOWN",
    "start_pool",
    "start_supervisor",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "task",
    "Task",
    "TaskError",
    "TaskSupervisor",
    "TaskTimeout",
    "TimerRef",
    "TlsConfig",
    "TransitionError",
    "UnknownMessageType",
    "ViaRegistry",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
