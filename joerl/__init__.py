"""joerl: Erlang/OTP-style actors for Python, on gevent."""

from __future__ import annotations

from . import aio, gen_statem, introspect, metrics, pg, pool, rpc, sys_calls, task, trace
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
    IntrospectionError,
    InvalidNodeName,
    JoerlError,
    LinkClosed,
    LinkDown,
    MailboxFull,
    MaxChildrenReached,
    MessageTooLarge,
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
from .introspect import ProcessInfo
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
from .node.erl_node import ErlangConfig
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
    "ErlangConfig",
    "ExceptionReason",
    "Exit",
    "From",
    "gen_statem",
    "GenServer",
    "GenServerRef",
    "GenStatem",
    "GenStatemRef",
    "IncompatibleVersion",
    "IntrospectionError",
    "InvalidNodeName",
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
    "introspect",
    "metrics",
    "MessageTooLarge",
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
    "ProcessInfo",
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
    "sys_calls",
    "start_pool",
    "start_supervisor",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "task",
    "trace",
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


def __getattr__(name: str) -> object:
    """``joerl.otel`` on first use: it needs the ``otel`` extra, so importing joerl never imports it."""
    if name == "otel":
        import importlib

        return importlib.import_module(".otel", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
