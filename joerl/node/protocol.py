"""Sans-IO node-link protocol: the handshake, then framed control messages.

This module specifies every byte two joerl nodes exchange on a link, and is
the one import path for the code that makes them: the handshake's messages
(``hello.py``) and engine (:class:`Handshake`, ``handshake.py``), the control
message types (``messages.py``), the frame codec (:class:`FrameEncoder` and
:func:`encode_frame` in ``frames.py``, :class:`FrameDecoder` in
``frame_decoder.py``) and the batching of a burst into frames
(:class:`OutboundBatcher`, ``batching.py``). None of them opens a socket or
imports gevent; ``link_setup.py`` and ``connection.py`` move the bytes.
joerl's link protocol is its own (msgpack, HMAC-SHA256), not Erlang's, though
it borrows Erlang's shape: name exchange, status, challenge both ways, ticks.

Wire layout (every integer big-endian)
======================================

Handshake. Each message is ``Len:16 | Body`` with ``1 <= Len <= 4096`` and Body
a msgpack map with a ``"t"`` (type) string; unknown keys are ignored::

    initiator I (dials)                                   acceptor A (listens)
    HELLO_I  {t:"hello", v, vmin, name, id, creation,
              incarnation, flags, challenge,
              tick_ms, max_frame}                     -->
                                                      <-- STATUS {t:"status", status, reason}
                                                      <-- HELLO_A (only after ok / ok_simultaneous)
    REPLY    {t:"reply", mac: MAC_I}                  -->   (or ABORT {t:"abort", status, reason})
                                                      <-- ACK {t:"ack", mac: MAC_A}   (or ABORT)
    link frames both ways: A may send right after ACK, I once it has checked ACK.

HELLO fields: ``v`` the highest protocol version spoken and ``vmin`` the lowest
(both use the smaller ``v``, which must be >= each side's ``vmin``; a side
that finds no overlap refuses with ``not_allowed`` and ``versions: [vmin, v]``
of its own); ``name`` 1..255 bytes of
UTF-8, printable; ``id`` the node id, 1..2**32-1 (0 means "local" in a pid and
never names a peer); ``creation`` 0..2**32-1, the incarnation number its pids
carry (random at each start); ``incarnation`` a random u64 id of this start of
the node (a changed one under the same name means a restart); ``flags`` a u64
of ``FLAG_*`` capabilities (those in use are the AND of both; a hidden node
clears ``FLAG_PUBLISHED``, which makes the link hidden on both sides); ``challenge``
16..64 fresh random bytes; ``tick_ms`` the sender's tick time (the peer ticks
at least every quarter of the smaller one); ``max_frame`` the largest link
frame body the sender accepts (the peer refuses to send larger ones).

``status`` is one of ``ok``, ``ok_simultaneous`` (A was dialling I too and
gives its own attempt up), ``nok`` (A was dialling I too and its own attempt
wins: I must wait for it), ``busy`` (A already has a link, or a handshake, with
a node of that name), ``not_allowed`` (version, flags, same name, policy),
``id_collision`` (I's id is A's own, or that of another node A is linked to).
ABORT carries the same statuses plus ``auth_failed``.

Authentication: ``MAC_x = HMAC-SHA256(cookie, LABEL_x + HELLO_I + HELLO_A)``,
where HELLO_I and HELLO_A are the two hello messages exactly as sent (length
prefix included, so the concatenation is unambiguous), ``LABEL_I`` is
``b"joerl-dist initiator\\0"`` and ``LABEL_A`` is ``b"joerl-dist acceptor\\0"``.
Both hellos hold both challenges, both names, ids, creations and flags, so a
MAC proves knowledge of the cookie for this very exchange only: a recorded
one is stale (fresh challenges), a reflected one has the wrong label. The
cookie never travels. The initiator proves itself first, to the node it chose
to dial; the acceptor answers only after checking it, so a stranger who
connects learns nothing it could use to guess the cookie offline.

Simultaneous connect: when A receives HELLO_I while it is itself dialling I,
the dial of the node with the greater name (UTF-8 bytes compared) survives
(:func:`dial_survives`). A answers ``nok`` when its own dial wins, else
``ok_simultaneous`` and drops its dial (which I will answer ``nok``). Both
sides end with exactly the winner's connection.

Link frames, after the handshake::

    Len:32 | Body          Len == 0 is a tick (no body); 1 <= Len <= max_frame
    Body = msgpack array [op, field, ...]; trailing extra fields are ignored
           (but by SEND and SEND_TERMS, whose fields after the route are messages)

A pid or ref in a control field is ``[node:u32, id:u64, creation:u32]`` with
node != 0. The two messages that carry processes' messages, SEND and
SEND_TERMS, name both pids in one ``route`` instead (the receiver looks the
pair up once per frame): a bin of ``to`` as ``node:u32 | id:u64 |
creation:u32``, followed by the sender's 16 bytes when there is a sender.
``payload``, ``reason`` and ``args`` are msgpack bin: opaque bytes made by the
serialization codec; this module only carries them.

SEND carries 1 to :data:`MAX_MESSAGES_PER_FRAME` payloads, in order, from one
sender to one process (the decoder returns one :class:`Send` for each): a
sender batches a burst of messages to one process into one frame. A frame
with a field that is not a bin after the route is a bad frame, all of it.

SEND_TERMS is SEND for the commonest messages, *plain terms*: a str, bin,
int (64-bit), float, bool or nil, or a flat tuple of at most
:data:`MAX_TERM_ITEMS` of them (``("ping", 7)``), or, when both sides offer
:data:`FLAG_TERM_MAPS`, a flat dict of at most :data:`MAX_TERM_ITEMS` of them
under str or bin keys (``{"ping": 7}``, a msgpack map). It carries 1 to
:data:`MAX_MESSAGES_PER_FRAME` of them, in order, from one sender to one process:
each is the value itself in msgpack (a tuple as an array), not a codec payload
in a bin, so the frame's one decode yields every message, where SEND takes
two decodes for one (the frame, then the payload). A sender batches a burst of
plain terms to one process into one frame, as with SEND. Only these types travel this way:
a frame with any other ``msg`` (a nested array or map, an ext), or more than
:data:`MAX_TERMS_BYTES` of messages, is a bad frame, all of it. It is sent
only when both sides offer :data:`FLAG_SEND_TERMS`; anything else takes SEND.

====  ==============  =====================================================
op    message         fields after op
====  ==============  =====================================================
1     SEND            route: bin, payload: bin, payload, ...
2     REG_SEND        sender: pid|nil, to_name: str, payload: bin
3     LINK            sender: pid, to: pid
4     UNLINK          sender: pid, to: pid, id: u64 (0: no ack wanted)
5     UNLINK_ACK      sender: pid, to: pid, id: u64
6     EXIT            sender: pid, to: pid, reason: bin   (a link broke)
7     EXIT2           sender: pid|nil, to: pid, reason: bin   (exit(pid, reason))
8     MONITOR         sender: pid, to: pid|str, ref
9     DEMONITOR       sender: pid, to: pid|str, ref
10    DOWN            sender: pid|str (the monitored), to: pid, ref, reason: bin
11    SPAWN_REQUEST   ref, sender: pid, factory: str, args: bin, link: bool, monitor: bool
12    SPAWN_REPLY     ref, to: pid, result: pid (spawned) | str (error)
13    ALIVE_REQUEST   ref, pid
14    ALIVE_REPLY     ref, alive: bool
15    CALL_REPLY      ref, payload: bin | [term][, released: bool] (see CALL below)
16    SEND_TERMS      route: bin, msg: plain term, msg, ... (see above)
17    FLOW            dest: pid, kind: u8, n: u32 (flow control, see below)
18    ACK             taken: u64 (delivery acknowledgement, see below)
19    CALL            route: bin, ref, payload: bin | [term] (a call, see below)
====  ==============  =====================================================

CALL is a GenServer call to a pid in one frame, sent only when both sides
offer :data:`FLAG_CALL` (else a call is MONITOR then SEND): its route names
the server (``to``) and the caller (``sender``, always present; id 0 is plain
code, whose message has no sender), and it means exactly MONITOR(sender, to,
ref) followed by SEND of ``(CALL, (sender, ref), request)`` to ``to``, where
``payload`` is the codec's bytes of ``request`` alone or, when ``request``
is a plain term (what SEND_TERMS carries), a 1-array of it, as itself (a
released CALL_REPLY may carry its value the same way). It is a message as
SEND is (counted by ACK, charged to flow-control credit when ``to`` is
bounded). When the node of ``to`` sends the CALL_REPLY for ``ref`` itself
(whichever of its processes replies), it drops the monitor and sets the
reply's ``released`` field (true): the caller sends no DEMONITOR. A call that
ended otherwise (timed out, its server's DOWN, a reply from another node)
still sends DEMONITOR, which also makes the server's node forget the call.

FLOW is credit-based flow control for messages to a *bounded* mailbox
(``joerl/node/flow.py``); ``dest`` is the bounded process, named as its own
node names it. A pid whose id has ``BOUNDED_MAILBOX`` (bit 62,
``joerl/pid.py``) names a bounded mailbox, so a sender knows before its first
message: it charges every SEND and SEND_TERMS message to such a ``dest`` one
credit from the first, starting each link at the window (64,
``flow.DEFAULT_WINDOW``), and with no credit left its greenlet waits (the
hub overdraws: a timer cannot wait). ``kind`` 0 GRANT (receiver to sender):
``n`` more messages to ``dest`` may go, returned as messages enter the
mailbox. ``kind`` 1 is reserved (ignored). ``kind`` 2 GONE (receiver to
sender, ``n`` 0): ``dest`` ended (also the answer to a message that finds it
already ended); forget its credit. The receiver never stops reading the
link: what does not fit the mailbox waits in a queue on the receiving node,
and never holds more than the window per link. REG_SEND is never charged
(the sender does not know the pid). Credit lives and dies with the link.

ACK is the delivery acknowledgement of a link, sent only when both sides
offer :data:`FLAG_ACK`: ``taken`` is how many messages (each message of a
SEND or SEND_TERMS, each REG_SEND) the sender of the ACK has taken off this
link since it came up, cumulative. It goes out when the count advanced, at
most once per ``ack_interval`` (``LinkConfig``), and on an idle link in the
place of a tick. The other side keeps the latest; when the link goes down,
what it handed to the link and saw no ACK for is reported as *unconfirmed*
(lost, or delivered within the last ack interval).

Errors: a peer breaking the handshake raises :class:`HandshakeProtocolError`
(both a ``HandshakeError`` and a ``RemoteProtocolError``); a refusal raises
:class:`HandshakeRefused` (:class:`SimultaneousConnect`,
:class:`NodeIdCollision`); a bad MAC raises ``AuthenticationError``. After the
handshake, one undecodable frame is a :class:`FrameError` in the decoder's
output (skip it: framing is intact), while a frame over the limit raises
:class:`OversizedFrame` (the stream is broken: close the link).
"""

# The code lives in messages.py, frames.py, frame_decoder.py, hello.py,
# handshake.py and batching.py; every public name of them is importable from
# here, the one import path.
from ..errors import (
    FrameError,
    HandshakeProtocolError,
    HandshakeRefused,
    NodeIdCollision,
    OversizedFrame,
    SimultaneousConnect,
)
from .batching import OutboundBatcher
from .frame_decoder import FrameDecoder
from .frames import DEFAULT_MAX_FRAME_SIZE, TICK_FRAME, FrameEncoder, encode_frame
from .handshake import Established, Handshake, HandshakeEvent, HandshakeState, HelloReceived, Role
from .hello import (
    ACCEPT,
    CHALLENGE_MAX,
    CHALLENGE_MIN,
    DEFAULT_CHALLENGE_SIZE,
    DEFAULT_FLAGS,
    DEFAULT_TICK_MS,
    DIALING,
    FLAG_ACK,
    FLAG_ALIVE,
    FLAG_CALL,
    FLAG_CALL_REPLY,
    FLAG_LINKS,
    FLAG_MONITORS,
    FLAG_PUBLISHED,
    FLAG_SEND_TERMS,
    FLAG_SPAWN,
    FLAG_TERM_MAPS,
    FLAG_UNLINK_ACK,
    HIDDEN_FLAGS,
    MAX_HANDSHAKE_FRAME,
    MAX_NAME_BYTES,
    MIN_MAX_FRAME_SIZE,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    STATUS_AUTH_FAILED,
    STATUS_BUSY,
    STATUS_ID_COLLISION,
    STATUS_NOK,
    STATUS_NOT_ALLOWED,
    STATUS_OK,
    STATUS_OK_SIMULTANEOUS,
    IncompatibleVersion,
    NodeIdentity,
    PeerHello,
    Verdict,
    dial_survives,
    parse_hello,
    refusal_error,
)
from .messages import (
    MAX_MESSAGES_PER_FRAME,
    MAX_TERM_ITEMS,
    MAX_TERMS_BYTES,
    OP_ACK,
    OP_ALIVE_REPLY,
    OP_ALIVE_REQUEST,
    OP_CALL,
    OP_CALL_REPLY,
    OP_DEMONITOR,
    OP_DOWN,
    OP_EXIT,
    OP_EXIT2,
    OP_FLOW,
    OP_LINK,
    OP_MONITOR,
    OP_REG_SEND,
    OP_SEND,
    OP_SEND_TERMS,
    OP_SPAWN_REPLY,
    OP_SPAWN_REQUEST,
    OP_UNLINK,
    OP_UNLINK_ACK,
    TERM_KEYS,
    TERM_SCALARS,
    Ack,
    AliveReply,
    AliveRequest,
    Call,
    CallReply,
    Demonitor,
    Down,
    Exit,
    Exit2,
    Flow,
    Link,
    Message,
    Monitor,
    RegSend,
    Send,
    SendTerms,
    SpawnReply,
    SpawnRequest,
    Tick,
    Unlink,
    UnlinkAck,
)

__all__ = [
    "ACCEPT",
    "Ack",
    "AliveReply",
    "AliveRequest",
    "Call",
    "CHALLENGE_MAX",
    "CHALLENGE_MIN",
    "CallReply",
    "DEFAULT_CHALLENGE_SIZE",
    "DEFAULT_FLAGS",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_TICK_MS",
    "DIALING",
    "Demonitor",
    "Down",
    "Established",
    "Exit",
    "Exit2",
    "FLAG_ALIVE",
    "FLAG_CALL",
    "FLAG_CALL_REPLY",
    "FLAG_LINKS",
    "FLAG_MONITORS",
    "FLAG_PUBLISHED",
    "FLAG_SEND_TERMS",
    "FLAG_SPAWN",
    "FLAG_TERM_MAPS",
    "FLAG_ACK",
    "FLAG_UNLINK_ACK",
    "Flow",
    "FrameDecoder",
    "HIDDEN_FLAGS",
    "FrameEncoder",
    "FrameError",
    "Handshake",
    "HandshakeEvent",
    "HandshakeProtocolError",
    "HandshakeRefused",
    "HandshakeState",
    "HelloReceived",
    "IncompatibleVersion",
    "Link",
    "MAX_HANDSHAKE_FRAME",
    "MAX_MESSAGES_PER_FRAME",
    "MAX_NAME_BYTES",
    "MAX_TERMS_BYTES",
    "MAX_TERM_ITEMS",
    "MIN_MAX_FRAME_SIZE",
    "MIN_PROTOCOL_VERSION",
    "Message",
    "Monitor",
    "NodeIdCollision",
    "NodeIdentity",
    "OP_ALIVE_REPLY",
    "OP_ALIVE_REQUEST",
    "OP_CALL",
    "OP_CALL_REPLY",
    "OP_DEMONITOR",
    "OP_DOWN",
    "OP_EXIT",
    "OP_EXIT2",
    "OP_ACK",
    "OP_FLOW",
    "OP_LINK",
    "OP_MONITOR",
    "OP_REG_SEND",
    "OP_SEND",
    "OP_SEND_TERMS",
    "OP_SPAWN_REPLY",
    "OP_SPAWN_REQUEST",
    "OP_UNLINK",
    "OP_UNLINK_ACK",
    "OutboundBatcher",
    "OversizedFrame",
    "PROTOCOL_VERSION",
    "PeerHello",
    "RegSend",
    "Role",
    "STATUS_AUTH_FAILED",
    "STATUS_BUSY",
    "STATUS_ID_COLLISION",
    "STATUS_NOK",
    "STATUS_NOT_ALLOWED",
    "STATUS_OK",
    "STATUS_OK_SIMULTANEOUS",
    "Send",
    "SendTerms",
    "SimultaneousConnect",
    "SpawnReply",
    "SpawnRequest",
    "TERM_KEYS",
    "TERM_SCALARS",
    "TICK_FRAME",
    "Tick",
    "Unlink",
    "UnlinkAck",
    "Verdict",
    "dial_survives",
    "encode_frame",
    "parse_hello",
    "refusal_error",
]
