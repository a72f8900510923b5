"""Handshake pairs for protocol tests: two sans-IO engines, or two live links.

* :func:`handshake_engines` makes an initiator and an acceptor
  :class:`~joerl.node.protocol.Handshake` with deterministic challenges, so
  their bytes are reproducible; :func:`run_handshake` pumps bytes between
  them, accepting every HELLO, and returns the :class:`HandshakeTranscript`.
* :func:`linked_pair` dials from one identity to the other over loopback
  (through :func:`~joerl.node.link_setup.dial` and
  :func:`~joerl.node.link_setup.accept_handshake`, as nodes do) and yields
  the two authenticated :class:`~joerl.node.connection.Connection` ends; a
  :class:`Received` handler collects what each end is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import gevent
from gevent import socket as gsocket
from gevent.event import Event

from ..node.link_setup import accept_handshake, dial
from ..node.protocol import Established, Handshake, HelloReceived, NodeIdentity, Role

if TYPE_CHECKING:
    from ..node.connection import Connection, LinkConfig

#: The initiator's identity in :func:`handshake_engines` and :func:`linked_pair`.
INITIATOR_IDENTITY = NodeIdentity("probe-initiator", 0x1111, creation=3)
#: The acceptor's identity.
ACCEPTOR_IDENTITY = NodeIdentity("probe-acceptor", 0x2222, creation=4)
#: The cookie both use unless told otherwise.
LINK_COOKIE = b"joerl-testing-cookie"


def fixed_random(seed: int) -> Callable[[int], bytes]:
    """A deterministic ``random_bytes`` for a :class:`~joerl.node.protocol.Handshake`.

    Args:
        seed: the first byte; the next ones count up from it (mod 256).

    Returns:
        ``random_bytes(n)``: ``n`` bytes, the same for the same seed.

    Example::

        Handshake(Role.ACCEPTOR, identity, b"cookie", random_bytes=fixed_random(2))
    """
    return lambda n: bytes((seed + i) & 0xFF for i in range(n))


def handshake_engines(
    initiator: NodeIdentity = INITIATOR_IDENTITY,
    acceptor: NodeIdentity = ACCEPTOR_IDENTITY,
    cookie: bytes | str = LINK_COOKIE,
    *,
    acceptor_cookie: bytes | str | None = None,
    expected_peer: str | None = None,
    initiator_random: Callable[[int], bytes] | None = None,
    acceptor_random: Callable[[int], bytes] | None = None,
    initiator_options: Mapping[str, Any] | None = None,
    acceptor_options: Mapping[str, Any] | None = None,
) -> tuple[Handshake, Handshake]:
    """An initiator and an acceptor handshake engine, not connected to anything.

    Args:
        initiator: the dialling side's identity.
        acceptor: the listening side's identity.
        cookie: the initiator's cookie (and the acceptor's, unless ``acceptor_cookie``).
        acceptor_cookie: another cookie for the acceptor (a wrong-cookie test).
        expected_peer: the name the initiator means to reach (None: any).
        initiator_random: the initiator's challenge source (default ``fixed_random(1)``).
        acceptor_random: the acceptor's (default ``fixed_random(2)``).
        initiator_options: more keyword arguments of the initiator's ``Handshake``
            (``tick_ms``, ``max_frame_size``, ``mandatory_flags``, ``version``, ...).
        acceptor_options: the same for the acceptor.

    Returns:
        ``(initiator, acceptor)``.

    Raises:
        ValueError: an option is invalid (as ``Handshake`` raises).

    Example::

        ini, acc = handshake_engines(acceptor_cookie=b"wrong")
        [hello] = acc.feed(ini.data_to_send())
    """
    ini = Handshake(
        Role.INITIATOR,
        initiator,
        cookie,
        expected_peer=expected_peer,
        random_bytes=initiator_random or fixed_random(1),
        **dict(initiator_options or {}),
    )
    acc = Handshake(
        Role.ACCEPTOR,
        acceptor,
        cookie if acceptor_cookie is None else acceptor_cookie,
        random_bytes=acceptor_random or fixed_random(2),
        **dict(acceptor_options or {}),
    )
    return ini, acc


class HandshakeTranscript(NamedTuple):
    """A whole handshake: the four messages on the wire and both results.

    Attributes:
        hello_i: the initiator's HELLO.
        status_hello_a: the acceptor's STATUS and HELLO.
        reply: the initiator's REPLY (its MAC).
        ack: the acceptor's ACK (its MAC).
        initiator: what the initiator's engine ended with.
        acceptor: what the acceptor's engine ended with.
    """

    hello_i: bytes
    status_hello_a: bytes
    reply: bytes
    ack: bytes
    initiator: Established
    acceptor: Established


def _one(engine: Handshake, data: bytes, kind: type) -> Any:
    events = engine.feed(data)
    if [type(e) for e in events] != [kind]:
        raise AssertionError(f"{engine.role.value}: expected one {kind.__name__}, got {events!r}")
    return events[0]


def run_handshake(initiator: Handshake, acceptor: Handshake) -> HandshakeTranscript:
    """Pump bytes between two fresh engines, accepting every HELLO, to the end.

    Args:
        initiator: an initiator engine that has sent nothing yet.
        acceptor: an acceptor engine that has received nothing yet.

    Returns:
        The :class:`HandshakeTranscript`.

    Raises:
        HandshakeError: an engine refused or failed (a wrong cookie raises
            :class:`~joerl.errors.AuthenticationError`).
        AssertionError: an engine returned other events than a handshake does.

    Example::

        t = run_handshake(*handshake_engines())
        assert t.initiator.peer.name == ACCEPTOR_IDENTITY.name
        decoder_input = t.ack + link_frames   # what an initiator reads next
    """
    hello_i = initiator.data_to_send()
    _one(acceptor, hello_i, HelloReceived)
    acceptor.accept()
    status_hello_a = acceptor.data_to_send()
    _one(initiator, status_hello_a, HelloReceived)
    initiator.accept()
    reply = initiator.data_to_send()
    at_acceptor = _one(acceptor, reply, Established)
    ack = acceptor.data_to_send()
    at_initiator = _one(initiator, ack, Established)
    return HandshakeTranscript(hello_i, status_hello_a, reply, ack, at_initiator, at_acceptor)


class Received:
    """A link handler (``handler(conn, msg)``) that keeps what arrives.

    Attributes:
        messages: every control message received, in order.

    Example::

        inbox = Received()
        conn = dial(address, identity, cookie, handler=inbox)
        conn.start()
        assert inbox.wait_for(2)[1] == expected
    """

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._want = 0
        self._enough = Event()

    def __call__(self, conn: Connection, msg: Any) -> None:
        self.messages.append(msg)
        if self._want and len(self.messages) >= self._want:
            self._enough.set()

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Any]:
        """Wait until at least ``n`` messages arrived.

        Returns:
            :attr:`messages` (all of them, maybe more than ``n``).

        Raises:
            AssertionError: fewer than ``n`` within ``timeout`` seconds.
        """
        self._want = n
        if len(self.messages) < n:
            self._enough.clear()
            if not self._enough.wait(timeout):
                raise AssertionError(f"got {len(self.messages)} of {n} messages within {timeout}s: {self.messages!r}")
        return self.messages


class LinkPair(NamedTuple):
    """The two ends of one link made by :func:`linked_pair`."""

    initiator: Connection
    acceptor: Connection


@contextlib.contextmanager
def linked_pair(
    initiator: NodeIdentity = INITIATOR_IDENTITY,
    acceptor: NodeIdentity = ACCEPTOR_IDENTITY,
    cookie: bytes | str = LINK_COOKIE,
    *,
    acceptor_cookie: bytes | str | None = None,
    config: LinkConfig | None = None,
    initiator_handler: Callable[[Connection, Any], None] | None = None,
    acceptor_handler: Callable[[Connection, Any], None] | None = None,
    on_closed: Callable[[Connection, Any], None] | None = None,
    start: bool = True,
    timeout: float = 5.0,
) -> Iterator[LinkPair]:
    """Two authenticated link ends over loopback, made as nodes make them.

    A listening socket on ``127.0.0.1:0`` takes one connection; the initiator
    :func:`~joerl.node.link_setup.dial`\\ s it while a greenlet runs
    :func:`~joerl.node.link_setup.accept_handshake` on the accepted socket.

    Args:
        initiator: the dialling side's identity.
        acceptor: the listening side's identity.
        cookie: the initiator's cookie (and the acceptor's, unless ``acceptor_cookie``).
        acceptor_cookie: another cookie for the acceptor.
        config: both ends' link settings (default ``LinkConfig()``).
        initiator_handler: the initiator end's handler (default: a :class:`Received`).
        acceptor_handler: the acceptor end's (default: a :class:`Received`).
        on_closed: both ends' ``on_closed(conn, reason)``.
        start: start both ends (False: frames written now wait, and the
            sockets are the test's to write raw bytes on).
        timeout: seconds for the handshake, and for each end to wind down after.

    Returns:
        A context manager yielding a :class:`LinkPair`; on exit both ends are
        closed and their greenlets ended, and the listener is closed.

    Raises:
        HandshakeError: the handshake failed (e.g. ``AuthenticationError``);
            nothing is left open.

    Example::

        inbox = Received()
        with linked_pair(acceptor_handler=inbox) as (a, b):
            a.send(protocol.RegSend(None, "logger", b"hi"))
            assert inbox.wait_for(1) == [protocol.RegSend(None, "logger", b"hi")]
    """
    listener = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
    conns: list[Connection] = []
    accepting: gevent.Greenlet | None = None
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = listener.getsockname()

        def accept() -> Connection | Exception:
            sock, peer_address = listener.accept()
            try:
                return accept_handshake(
                    sock,
                    acceptor,
                    cookie if acceptor_cookie is None else acceptor_cookie,
                    config=config,
                    handler=acceptor_handler or Received(),
                    on_closed=on_closed,
                    address=peer_address,
                )
            except Exception as exc:  # returned, not raised: the hub would print it
                return exc

        accepting = gevent.spawn(accept)
        with gevent.Timeout(timeout, AssertionError(f"the handshake took over {timeout}s")):
            try:
                conns.append(
                    dial(
                        address,
                        initiator,
                        cookie,
                        expected_peer=acceptor.name,
                        config=config,
                        handler=initiator_handler or Received(),
                        on_closed=on_closed,
                    )
                )
            finally:
                accepting.join()
        accepted = accepting.get(block=False)
        if isinstance(accepted, Exception):
            raise accepted
        conns.append(accepted)
        if start:
            for conn in conns:
                conn.start()
        yield LinkPair(conns[0], conns[1])
    finally:
        if accepting is not None and not accepting.dead:
            accepting.kill()  # ours: the dial failed before it connected
        listener.close()
        for conn in conns:
            conn.close("shutdown")
        for conn in conns:
            if not conn.wait_closed(timeout):
                raise AssertionError(f"{conn!r} did not wind down within {timeout}s")
