"""Erlang interop (sans-IO): the External Term Format codec, the
distribution handshake (version 6) and the control messages.

Nothing here opens a socket or imports gevent; docs/erlang.md has the value
mapping, what is supported, and how a node builds on these modules.
"""

from .control import FrameDecoder, encode_frame
from .decoder import Decoder
from .etf import EtfLimits, decode, encode
from .handshake import Connected, ErlangHandshake, NameReceived, Role, detect_protocol
from .records import Records
from .terms import (
    Atom,
    BitString,
    ErlangPid,
    ErlangRef,
    FrozenList,
    FrozenMap,
    ImproperList,
    Opaque,
    TermDecodeError,
    TermEncodeError,
    charlist,
    erlang_pid,
    joerl_pid,
)

__all__ = [
    "Atom",
    "BitString",
    "Connected",
    "Decoder",
    "ErlangHandshake",
    "ErlangPid",
    "ErlangRef",
    "EtfLimits",
    "FrameDecoder",
    "FrozenList",
    "FrozenMap",
    "ImproperList",
    "NameReceived",
    "Opaque",
    "Records",
    "Role",
    "TermDecodeError",
    "TermEncodeError",
    "charlist",
    "decode",
    "detect_protocol",
    "encode",
    "encode_frame",
    "erlang_pid",
    "joerl_pid",
]
