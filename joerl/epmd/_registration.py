"""Registration: one name a client keeps registered, its connection and keep-alive greenlet.

Wire layout (every integer big-endian; see :mod:`._ext` and :mod:`._classic`).
Against joerl's daemon the registration's connection carries, in turn (with
a cookie, a challenge first and the cookie's HMAC in the register, :mod:`._auth`)::

    -> Len:16 'J' {op: challenge}          <- 'J' Len:32 {op: challenge, nonce}     (with a cookie)
    -> Len:16 'J' {op: register, ...}       <- 'J' Len:32 {op: registered, node}
    -> Len:16 'J' {op: keepalive, name}     <- 'J' Len:32 {op: keepalive_ack}     (every keepalive_interval)
    -> Len:16 'J' {op: unregister, name}    <- 'J' Len:32 {op: unregistered, ...} (then close)

Against Erlang's epmd it carries ``ALIVE2_REQ`` and its reply, then silence:
the name lives as long as the connection.

This module owns that life cycle: registering (the extension first, ALIVE2
when the daemon turns out to be Erlang's), keep-alives, noticing that the
daemon went away, registering again with a :class:`joerl.backoff.Backoff`
between failed attempts, and unregistering.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import gevent
import gevent.lock
from gevent import socket

from ..backoff import Backoff
from ..errors import EpmdConnectionError, EpmdError, EpmdProtocolError, NameInUse, RegistrationRefused
from . import protocol as p
from ._dialer import Dialer, ExtRefusal, NoReply, checked, read_ext_reply
from ._node import NodeInfo

__all__ = ["RETRY_FIRST", "Registration"]

log = logging.getLogger("joerl.epmd.client")

RETRY_FIRST = 0.1  # seconds before the second attempt to register again (the first is at once)


class Registration:
    """One registered name: its connection and its keep-alive greenlet.

    Args:
        dialer: the daemon's :class:`Dialer` (shared with the client, which
            learns from it which daemon answers).
        req: what to register.
        keepalive_interval: seconds between keep-alives (joerl's daemon).
        retry_interval: the longest wait between attempts to register again;
            waits start at ``RETRY_FIRST`` (or ``retry_interval`` if shorter)
            and double, each spread by +-20 %.
        notify: called with the :class:`NodeInfo` after each registration
            made again by the keep-alive greenlet.
        cookie: prove it with an HMAC (a shared port mapper on another host
            requires it); None: register unauthenticated.
    """

    def __init__(
        self,
        dialer: Dialer,
        req: p.Register,
        keepalive_interval: float,
        retry_interval: float,
        notify: Callable[[NodeInfo], None],
        cookie: bytes | None = None,
    ) -> None:
        self.dialer = dialer
        self.req = req
        self.cookie = cookie
        self.keepalive_interval = keepalive_interval
        self.backoff = Backoff(initial=min(RETRY_FIRST, retry_interval), maximum=retry_interval)
        self.notify = notify
        self.sock: socket.socket | None = None
        self.kind: str | None = None
        self.info: NodeInfo | None = None
        self.decoder: p.ExtReplyDecoder | None = None
        self.lock = gevent.lock.Semaphore()
        self.greenlet: gevent.Greenlet | None = None
        self.stopping = False

    # Every use of ``sock`` for a request is under ``lock``; the keep-alive
    # greenlet waits for the daemon's silence (recv) outside it, and stop()
    # kills that greenlet before touching the socket.

    def establish(self) -> NodeInfo:
        """Connect and register (extension first, ALIVE2 if the daemon is Erlang's).

        Raises:
            NameInUse: the name is taken.
            RegistrationRefused: the daemon refused for another reason.
            EpmdError: the daemon could not be reached (see the subclasses).
        """
        d = self.dialer
        with self.lock:
            if d.daemon_kind != "erlang":
                try:
                    info = self._register_ext()
                except NoReply:
                    d.daemon_kind = "erlang"
                else:
                    d.daemon_kind = "joerl"
                    return info
            try:
                return self._register_alive2()
            except EpmdConnectionError:
                # Nobody answered: the next daemon may be the other kind (ours
                # replacing Erlang's epmd), so ask again from the start.
                d.daemon_kind = None
                raise

    def _register_ext(self) -> NodeInfo:
        d = self.dialer
        name = self.req.name
        sock = d.connect()
        decoder = p.ExtReplyDecoder(d.max_reply)
        try:

            def run() -> p.Registered:
                sock.sendall(self._authenticated(sock, decoder).encode())
                return read_ext_reply(sock, decoder, p.Registered, "register")

            try:
                reply = d.timed(f"registering {name!r}", run)
            except ExtRefusal as refusal:
                err = refusal.error
                if err.code == "name_in_use":
                    raise NameInUse(name, f"at {d.address}") from None
                raise RegistrationRefused(name, err.code, err.message) from None
        except BaseException:
            sock.close()
            raise
        self.sock, self.decoder, self.kind = sock, decoder, "joerl"
        self.info = reply.node.with_host(d.host)
        return self.info

    def _authenticated(self, sock: socket.socket, decoder: p.ExtReplyDecoder) -> p.Register:
        """The register request, with the cookie's HMAC over the daemon's nonce when there is a cookie."""
        req = self.req
        if self.cookie is None:
            return req
        sock.sendall(p.Challenge().encode())
        try:
            nonce = read_ext_reply(sock, decoder, p.ChallengeReply, "challenge").nonce
        except ExtRefusal as refusal:
            if refusal.error.code != "unknown_op":
                raise
            return req  # an older joerl daemon: it takes local registrations only anyway
        return replace(req, auth=p.register_mac(self.cookie, nonce, req.name, req.host, req.port))

    def _register_alive2(self) -> NodeInfo:
        d = self.dialer
        r = self.req
        req = p.Alive2Req(r.port, r.name, r.node_type, 0, r.highest_version, r.lowest_version, r.extra)
        sock = d.connect()
        try:

            def run() -> p.Alive2Resp:
                sock.sendall(req.encode())
                decoder = p.ClassicReplyDecoder(req)
                while True:
                    data = sock.recv(64)
                    if not data:
                        checked(decoder.feed_eof, "ALIVE2")
                    reply = checked(partial(decoder.feed, data), "ALIVE2")
                    if reply is not None:
                        if decoder.trailing:
                            raise EpmdProtocolError("unexpected bytes after the ALIVE2 reply")
                        assert isinstance(reply, p.Alive2Resp)
                        return reply

            reply = d.timed(f"registering {r.name!r}", run)
            if not reply.ok:
                raise NameInUse(r.name, f"epmd at {d.address} refused it (result {reply.result})")
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.sock, self.decoder, self.kind = sock, None, "erlang"
        self.info = NodeInfo(
            r.name,
            d.host,
            r.port,
            {},
            reply.creation,
            r.node_type,
            0,
            r.highest_version,
            r.lowest_version,
            r.extra,
            "erlang",
        )
        return self.info

    def start(self) -> None:
        """Start the keep-alive greenlet (after a successful :meth:`establish`)."""
        self.greenlet = gevent.spawn(self._run)

    def _drop(self, why: str) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = self.decoder = None
        self.info = None
        self.dialer.daemon_kind = None  # whoever answers next may be the other kind of daemon
        log.warning(
            "lost the registration of %s at %s (%s); registering again", self.req.name, self.dialer.address, why
        )

    def _run(self) -> None:
        while not self.stopping:
            if self.sock is None:
                self._reestablish()
                continue
            sock = self.sock
            sock.settimeout(self.keepalive_interval if self.kind == "joerl" else None)
            try:
                data = sock.recv(4096)
            except socket.timeout:
                self._keepalive()
                continue
            except OSError as exc:
                self._drop(f"connection error: {exc}")
                continue
            self._drop("the daemon closed the connection" if not data else "unexpected bytes from the daemon")

    def _reestablish(self) -> None:
        d = self.dialer
        try:
            info = self.establish()
        except EpmdError as exc:
            log.warning("registering %s again at %s failed: %s", self.req.name, d.address, exc)
            gevent.sleep(self.backoff.delay())
            return
        except Exception:  # a bug must not end the registration for good
            log.exception("registering %s again at %s failed", self.req.name, d.address)
            gevent.sleep(self.backoff.delay())
            return
        self.backoff.reset()
        log.info("registered %s again at %s, creation %d", info.name, d.address, info.creation)
        self.notify(info)

    def _keepalive(self) -> None:
        with self.lock:
            sock, decoder = self.sock, self.decoder
            if sock is None or decoder is None:
                return
            try:

                def run() -> p.KeepAliveAck:
                    sock.sendall(p.KeepAlive(self.req.name).encode())
                    return read_ext_reply(sock, decoder, p.KeepAliveAck, "keepalive")

                self.dialer.timed("keep-alive", run)
            except (EpmdError, NoReply, ExtRefusal) as exc:
                self._drop(f"keep-alive failed: {exc or type(exc).__name__}")

    def stop(self) -> None:
        """Stop the keep-alive greenlet and end the registration."""
        self.stopping = True
        with self.lock:
            g = self.greenlet
            if g is not None and g is not gevent.getcurrent():
                g.kill(block=True)
            sock, self.sock = self.sock, None
            if sock is None:
                return
            try:
                if self.kind == "joerl" and self.decoder is not None:
                    decoder = self.decoder

                    def run() -> p.Unregistered:
                        sock.sendall(p.Unregister(self.req.name).encode())
                        return read_ext_reply(sock, decoder, p.Unregistered, "unregister")

                    self.dialer.timed("unregister", run)
            except (EpmdError, NoReply, ExtRefusal) as exc:
                log.debug("unregister %s: %s (closing anyway)", self.req.name, exc)
            finally:
                sock.close()
                self.info = None
