"""Erlang distribution control messages and their frames, after the handshake (sans-IO).

Wire layout: ``Len:32 | Payload``; ``Len = 0`` is a tick. Payload is the
pass-through format, ``112 | ControlTerm | [Message]``, each term full ETF
with its own 131 byte (no atom cache, no distribution header, no
fragments: joerl never offers DIST_HDR_ATOM_CACHE or FRAGMENTS). The
control term is a tuple whose first element is the operation::

    1  LINK            {1, From, To}
    2  SEND            {2, '', To}                   + Message   (12 SEND_TT: + Token)
    3  EXIT            {3, From, To, Reason}                      (13 EXIT_TT: Token before Reason)
    6  REG_SEND        {6, From, '', ToName}         + Message   (16 REG_SEND_TT: + Token)
    8  EXIT2           {8, From, To, Reason}                      (18 EXIT2_TT: Token before Reason)
    19 MONITOR_P       {19, From, ToProc, Ref}       (ToProc: a pid or a registered name)
    20 DEMONITOR_P     {20, From, ToProc, Ref}
    21 MONITOR_P_EXIT  {21, FromProc, To, Ref, Reason}
    22 SEND_SENDER     {22, From, To}                + Message   (23 SEND_SENDER_TT: + Token)
    24..28 PAYLOAD_EXIT, _TT, PAYLOAD_EXIT2, _TT, PAYLOAD_MONITOR_P_EXIT: Reason as the Message
    29 SPAWN_REQUEST   {29, ReqId, From, GroupLeader, {M, F, Arity}, Opts} + Args (30 _TT: + Token)
    31 SPAWN_REPLY     {31, ReqId, To, Flags, Result}             (32 _TT: + Token)
    33 ALIAS_SEND      {33, From, Alias}             + Message   (34 ALIAS_SEND_TT: + Token)
    35 UNLINK_ID       {35, Id, From, To}
    36 UNLINK_ID_ACK   {36, Id, From, To}

This module owns one NamedTuple per message (a ``token`` field, when not
None, selects the ``_TT`` form), :func:`encode_frame`, :data:`TICK` and
:class:`FrameDecoder`, which turns received bytes into messages,
:class:`Tick` events and :class:`~joerl.errors.FrameError` (a bad frame is
skipped, the stream stays in sync); other operations (NODE_LINK,
GROUP_LEADER, the obsolete UNLINK) arrive as :class:`Unsupported`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..errors import FrameError, OversizedFrame
from .decoder import Decoder
from .etf import encode
from .terms import Atom, TermDecodeError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "TICK",
    "AliasSend",
    "ControlMessage",
    "DemonitorP",
    "Exit",
    "Exit2",
    "FrameDecoder",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "RegSend",
    "Send",
    "SendSender",
    "SpawnReply",
    "SpawnRequest",
    "Tick",
    "UnlinkId",
    "UnlinkIdAck",
    "Unsupported",
    "encode_frame",
]

#: A tick: a frame of length 0.
TICK = b"\x00\x00\x00\x00"
PASS_THROUGH = 112
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024
_UNUSED = Atom("")


class Link(NamedTuple):
    """LINK (1): ``from_pid`` links to ``to_pid``."""

    from_pid: Any
    to_pid: Any


class Send(NamedTuple):
    """SEND (2) / SEND_TT (12): ``message`` to the pid ``to_pid`` (no sender)."""

    to_pid: Any
    message: Any
    token: Any = None


class SendSender(NamedTuple):
    """SEND_SENDER (22) / _TT (23): ``message`` to ``to_pid`` from ``from_pid``."""

    from_pid: Any
    to_pid: Any
    message: Any
    token: Any = None


class RegSend(NamedTuple):
    """REG_SEND (6) / _TT (16): ``message`` to the process registered as ``to_name`` (an Atom)."""

    from_pid: Any
    to_name: Any
    message: Any
    token: Any = None


class Exit(NamedTuple):
    """EXIT (3) / _TT (13) / PAYLOAD_EXIT (24, 25): the link between them broke with ``reason``."""

    from_pid: Any
    to_pid: Any
    reason: Any
    token: Any = None


class Exit2(NamedTuple):
    """EXIT2 (8) / _TT (18) / PAYLOAD_EXIT2 (26, 27): ``exit(to_pid, reason)`` called by ``from_pid``."""

    from_pid: Any
    to_pid: Any
    reason: Any
    token: Any = None


class MonitorP(NamedTuple):
    """MONITOR_P (19): ``from_pid`` monitors ``to_proc`` (a pid or a registered name) under ``ref``."""

    from_pid: Any
    to_proc: Any
    ref: Any


class DemonitorP(NamedTuple):
    """DEMONITOR_P (20): ``from_pid`` drops its monitor ``ref`` of ``to_proc``."""

    from_pid: Any
    to_proc: Any
    ref: Any


class MonitorPExit(NamedTuple):
    """MONITOR_P_EXIT (21) / PAYLOAD_MONITOR_P_EXIT (28): ``from_proc``, monitored by ``to_pid`` under ``ref``, is down."""

    from_proc: Any
    to_pid: Any
    ref: Any
    reason: Any


class SpawnRequest(NamedTuple):
    """SPAWN_REQUEST (29) / _TT (30): spawn ``mfa`` = ``(Module, Function, Arity)`` with ``args``.

    ``opts`` is Erlang's option list (``[link]``, ``[monitor]``, ...).
    """

    req_id: Any
    from_pid: Any
    group_leader: Any
    mfa: Any
    opts: Any
    args: Any
    token: Any = None


class SpawnReply(NamedTuple):
    """SPAWN_REPLY (31) / _TT (32): ``result`` is the new pid, or an error atom.

    ``flags``: bit 1 a link was set up, bit 2 a monitor.
    """

    req_id: Any
    to_pid: Any
    flags: Any
    result: Any
    token: Any = None


class AliasSend(NamedTuple):
    """ALIAS_SEND (33) / _TT (34): ``message`` to the alias (a reference) ``alias``."""

    from_pid: Any
    alias: Any
    message: Any
    token: Any = None


class UnlinkId(NamedTuple):
    """UNLINK_ID (35): ``from_pid`` unlinks from ``to_pid``; answer with UNLINK_ID_ACK(``id``)."""

    id: Any
    from_pid: Any
    to_pid: Any


class UnlinkIdAck(NamedTuple):
    """UNLINK_ID_ACK (36): ``from_pid`` (the acker) acknowledges ``to_pid``'s unlink ``id``."""

    id: Any
    from_pid: Any
    to_pid: Any


class Unsupported(NamedTuple):
    """A well-formed frame with an operation joerl does not handle: count it and drop it."""

    op: int
    control: tuple[Any, ...]
    message: Any


class Tick(NamedTuple):
    """A tick (zero-length frame): the peer is alive."""


ControlMessage = (
    Link | Send | SendSender | RegSend | Exit | Exit2 | MonitorP | DemonitorP | MonitorPExit
    | SpawnRequest | SpawnReply | AliasSend | UnlinkId | UnlinkIdAck
)  # fmt: skip

# type -> ((op, layout), (tt_op, tt_layout) or None, the field carried as the Message or None).
# A layout names the fields in the control tuple after the op; "" is the unused ''.
_SPECS: dict[type, tuple[tuple[int, tuple[str, ...]], tuple[int, tuple[str, ...]] | None, str | None]] = {
    Link: ((1, ("from_pid", "to_pid")), None, None),
    Send: ((2, ("", "to_pid")), (12, ("", "to_pid", "token")), "message"),
    Exit: ((3, ("from_pid", "to_pid", "reason")), (13, ("from_pid", "to_pid", "token", "reason")), None),
    RegSend: ((6, ("from_pid", "", "to_name")), (16, ("from_pid", "", "to_name", "token")), "message"),
    Exit2: ((8, ("from_pid", "to_pid", "reason")), (18, ("from_pid", "to_pid", "token", "reason")), None),
    MonitorP: ((19, ("from_pid", "to_proc", "ref")), None, None),
    DemonitorP: ((20, ("from_pid", "to_proc", "ref")), None, None),
    MonitorPExit: ((21, ("from_proc", "to_pid", "ref", "reason")), None, None),
    SendSender: ((22, ("from_pid", "to_pid")), (23, ("from_pid", "to_pid", "token")), "message"),
    SpawnRequest: (
        (29, ("req_id", "from_pid", "group_leader", "mfa", "opts")),
        (30, ("req_id", "from_pid", "group_leader", "mfa", "opts", "token")),
        "args",
    ),
    SpawnReply: (
        (31, ("req_id", "to_pid", "flags", "result")),
        (32, ("req_id", "to_pid", "flags", "result", "token")),
        None,
    ),
    AliasSend: ((33, ("from_pid", "alias")), (34, ("from_pid", "alias", "token")), "message"),
    UnlinkId: ((35, ("id", "from_pid", "to_pid")), None, None),
    UnlinkIdAck: ((36, ("id", "from_pid", "to_pid")), None, None),
}

# op -> (type, layout, the field carried as the Message or None), for decoding.
_BY_OP: dict[int, tuple[type, tuple[str, ...], str | None]] = {}
for _cls, (_plain, _tt, _msg) in _SPECS.items():
    for _spec in (_plain, _tt):
        if _spec is not None:
            _BY_OP[_spec[0]] = (_cls, _spec[1], _msg)
_BY_OP[24] = (Exit, ("from_pid", "to_pid"), "reason")
_BY_OP[25] = (Exit, ("from_pid", "to_pid", "token"), "reason")
_BY_OP[26] = (Exit2, ("from_pid", "to_pid"), "reason")
_BY_OP[27] = (Exit2, ("from_pid", "to_pid", "token"), "reason")
_BY_OP[28] = (MonitorPExit, ("from_proc", "to_pid", "ref"), "reason")


def encode_payload(msg: ControlMessage, none_atom: str = "undefined") -> bytes:
    """``112 | ControlTerm | [Message]`` for ``msg`` (without the length); ``None`` is ``none_atom``.

    Raises:
        TermEncodeError: a field has no Erlang form.
        TypeError: ``msg`` is not a control message.
    """
    spec = _SPECS.get(type(msg))
    if spec is None:
        raise TypeError(f"not a control message: {type(msg).__name__}")
    plain, tt, carried = spec
    token = getattr(msg, "token", None)
    op, layout = tt if (token is not None and tt is not None) else plain
    control = (op, *(_UNUSED if f == "" else getattr(msg, f) for f in layout))
    out = b"p" + encode(control, none_atom=none_atom)
    if carried is not None:
        out += encode(getattr(msg, carried), none_atom=none_atom)
    return out


def encode_frame(msg: ControlMessage, none_atom: str = "undefined") -> bytes:
    """The whole frame for ``msg``: ``Len:32 | 112 | ControlTerm | [Message]`` (``None`` as ``none_atom``).

    Raises:
        TermEncodeError: a field has no Erlang form.
        TypeError: ``msg`` is not a control message.
    """
    payload = encode_payload(msg, none_atom)
    return len(payload).to_bytes(4, "big") + payload


FrameEvent = ControlMessage | Unsupported | Tick | FrameError


class FrameDecoder:
    """Turns the bytes of an established connection into events.

    Args:
        max_frame_size: largest frame payload accepted; a larger announced
            length raises :class:`~joerl.errors.OversizedFrame` (close the
            connection), on this and every later :meth:`feed`.
        decoder: the term decoder (its options and limits) for both terms.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, decoder: Decoder | None = None) -> None:
        if max_frame_size < 1:
            raise ValueError(f"max_frame_size must be positive, got {max_frame_size}")
        self.max_frame_size = max_frame_size
        self.decoder = decoder or Decoder()
        self._buf = bytearray()
        self._broken: OversizedFrame | None = None

    def feed(self, data: bytes) -> list[FrameEvent]:
        """Take received bytes; return the events of every whole frame, in order.

        Raises:
            OversizedFrame: a frame over ``max_frame_size`` was announced; its
                ``messages`` holds the events decoded before it in this call.
        """
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        buf += data
        events: list[FrameEvent] = []
        pos = 0
        try:
            while len(buf) - pos >= 4:
                size = int.from_bytes(buf[pos : pos + 4], "big")
                if size > self.max_frame_size:
                    self._broken = OversizedFrame(size, self.max_frame_size)
                    self._broken.messages = events
                    raise self._broken
                if len(buf) - pos - 4 < size:
                    break
                payload = bytes(buf[pos + 4 : pos + 4 + size])
                pos += 4 + size
                events.append(self._event(payload) if size else Tick())
        finally:
            del buf[:pos]
        return events

    def _event(self, payload: bytes) -> ControlMessage | Unsupported | FrameError:
        size = len(payload)
        if payload[0] != PASS_THROUGH:
            what = "a distribution header (atom cache or fragments)" if payload[0] == 131 else f"type {payload[0]}"
            return FrameError(f"{what} is not supported: only pass-through (112) frames are", size=size)
        try:
            control, end = self.decoder.decode_prefix(payload, 1)
            message: Any = None
            has_message = end < size
            if has_message:
                message = self.decoder.decode(payload[end:])
        except TermDecodeError as exc:
            return FrameError(str(exc), size=size)
        if not (isinstance(control, tuple) and control and type(control[0]) is int):
            return FrameError(f"the control term is not a tuple {{Op, ...}}: {control!r:.80}", size=size)
        op = control[0]
        spec = _BY_OP.get(op)
        if spec is None:
            return Unsupported(op, control, message)
        cls, layout, carried = spec
        if len(control) != 1 + len(layout):
            return FrameError(f"operation {op} needs {len(layout)} fields, got {len(control) - 1}", size=size, op=op)
        if has_message != (carried is not None):
            want = "needs a message" if carried else "takes no message"
            return FrameError(f"operation {op} {want}", size=size, op=op)
        fields = {name: value for name, value in zip(layout, control[1:], strict=True) if name}
        if carried is not None:
            fields[carried] = message
        result: ControlMessage = cls(**fields)
        return result
