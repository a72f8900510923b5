"""EPMD wire protocol: the sans-IO codec for Erlang's port mapper and joerl's extension.

This module is the facade: it re-exports, with ``__all__``, what the
protocol modules define. It opens no socket and imports no gevent;
``server.py`` and ``client.py`` do the IO.

Wire layout (every integer big-endian). Every request, Erlang's and joerl's,
has the same framing; replies differ::

    request:           Len:16 | Body             Body[0] is the opcode
    Erlang's replies:  no prefix; the layout (or the daemon's close) ends them
    joerl's replies:   'J' | Len:32 | msgpack map

=====================  =======================================================
module                 owns
=====================  =======================================================
:mod:`._wire`          framing, limits, names (:func:`check_name`), msgpack field checks
:mod:`._node`          :class:`NodeInfo`, the record both protocols carry
:mod:`._classic`       Erlang's requests and replies (opcodes ``x z n d k s``)
:mod:`._classic_reply` :class:`ClassicReplyDecoder` (client side)
:mod:`._ext`           joerl's extension (opcode ``'J'``): requests, replies,
                       :class:`ExtReplyDecoder` (client side)
:mod:`._requests`      :class:`RequestDecoder` (daemon side, both protocols)
=====================  =======================================================

Limits taken from epmd: ``Len`` must be 1..3057 for Erlang's requests; Extra
at most 1020 bytes. joerl's names are 1..255 bytes of UTF-8 with no NUL and
no ``@`` (:func:`check_name`).
"""

from __future__ import annotations

from ..address import format_address, parse_address
from ..errors import EpmdProtocolError, InvalidName
from ._auth import NONCE_BYTES, register_mac, verify_register_mac
from ._classic import (
    ALIVE2_ERROR_CREATION,
    ALIVE2_REQ,
    ALIVE2_RESP,
    ALIVE2_X_RESP,
    DUMP_REQ,
    KILL_REQ,
    NAMES_REQ,
    PORT2_RESP,
    PORT_PLEASE2_REQ,
    STOP_REQ,
    Alive2Rejected,
    Alive2Req,
    Alive2Resp,
    ClassicReply,
    ClassicRequest,
    DumpReq,
    DumpResp,
    KillReq,
    KillResp,
    NamesReq,
    NamesResp,
    Port2Resp,
    PortPlease2Req,
    StopReq,
    StopResp,
    encode_dump,
    encode_names,
)
from ._classic_reply import ClassicReplyDecoder
from ._ext import (
    OP_JOERL,
    Challenge,
    ChallengeReply,
    ExtError,
    ExtReply,
    ExtReplyDecoder,
    ExtRequest,
    KeepAlive,
    KeepAliveAck,
    ListNodes,
    Lookup,
    LookupResult,
    NodeList,
    Ping,
    Pong,
    Register,
    Registered,
    UnknownExt,
    Unregister,
    Unregistered,
)
from ._node import NodeInfo
from ._requests import Request, RequestDecoder, decode_request_body
from ._wire import (
    DEFAULT_PORT,
    MAX_DEPTH,
    MAX_EXT_LEN,
    MAX_EXTRA,
    MAX_HOST_BYTES,
    MAX_METADATA,
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    MAX_REQUEST_LEN,
    NODE_TYPE_HIDDEN,
    NODE_TYPE_NORMAL,
    check_name,
    name_problem,
)

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "DEFAULT_PORT",
    "DUMP_REQ",
    "KILL_REQ",
    "ALIVE2_ERROR_CREATION",
    "MAX_DEPTH",
    "MAX_EXTRA",
    "MAX_HOST_BYTES",
    "MAX_NAME_CHARS",
    "MAX_EXT_LEN",
    "MAX_METADATA",
    "MAX_NAME_BYTES",
    "MAX_REQUEST_LEN",
    "NAMES_REQ",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "OP_JOERL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "STOP_REQ",
    "Alive2Rejected",
    "Alive2Req",
    "Alive2Resp",
    "ClassicReply",
    "ClassicReplyDecoder",
    "ClassicRequest",
    "DumpReq",
    "DumpResp",
    "EpmdProtocolError",
    "Challenge",
    "ChallengeReply",
    "ExtError",
    "ExtReply",
    "ExtReplyDecoder",
    "ExtRequest",
    "InvalidName",
    "KeepAlive",
    "KeepAliveAck",
    "KillReq",
    "KillResp",
    "ListNodes",
    "Lookup",
    "LookupResult",
    "NamesReq",
    "NamesResp",
    "NodeInfo",
    "NodeList",
    "Ping",
    "Pong",
    "Port2Resp",
    "PortPlease2Req",
    "Register",
    "Registered",
    "Request",
    "RequestDecoder",
    "StopReq",
    "StopResp",
    "UnknownExt",
    "Unregister",
    "Unregistered",
    "check_name",
    "decode_request_body",
    "encode_dump",
    "encode_names",
    "format_address",
    "name_problem",
    "parse_address",
    "NONCE_BYTES",
    "register_mac",
    "verify_register_mac",
]
