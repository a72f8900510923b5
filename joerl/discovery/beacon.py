"""The multicast discovery beacon: one UDP datagram that says "node NAME is here", signed
with the cluster's cookie (sans-IO: bytes in, beacons out; no sockets).

Layout (version 1; integers big-endian)::

    offset size  field
    0      4     magic      b"JRLB"
    4      1     version    1
    5      1     flags      0 (reserved; a beacon with another value is refused)
    6      8     time_ms    the sender's clock, milliseconds since the Unix epoch
    14     8     instance   random, drawn once per sender start
    22     4     seq        1, 2, 3, ... per instance
    26     1     name_len   1..255
    27     n     name       the node's name, UTF-8
    27+n   32    mac        HMAC-SHA256(key, bytes 0 .. 27+n), key = HMAC-SHA256(cookie, KEY_LABEL)

A reader (:class:`BeaconReader`) refuses, with :class:`~joerl.errors.BeaconError`
and without parsing further: a datagram over :data:`MAX_BEACON` bytes or
shorter than the smallest beacon (``size``); a wrong magic, version, flags or
length (``format``); a MAC that is not ours (``signature``: a stranger, or
another cluster's cookie); a time more than ``max_age`` seconds from the
reader's clock (``time``); a ``seq`` not above the last one seen from the same
name and instance (``replay``; the table of senders is bounded, the oldest go
first).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors._discovery import BeaconError

__all__ = [
    "HEADER",
    "KEY_LABEL",
    "MAC_SIZE",
    "MAGIC",
    "MAX_BEACON",
    "Beacon",
    "BeaconReader",
    "BeaconWriter",
    "beacon_key",
]

MAGIC = b"JRLB"
VERSION = 1
#: What the cookie is combined with to make the beacons' key (never the cookie itself).
KEY_LABEL = b"joerl discovery beacon v1"
HEADER = struct.Struct(">4sBBQQIB")
MAC_SIZE = 32
#: The largest beacon: a 255-byte name.
MAX_BEACON = HEADER.size + 255 + MAC_SIZE
_MIN_BEACON = HEADER.size + 1 + MAC_SIZE


def beacon_key(cookie: bytes) -> bytes:
    """The key beacons are signed with: HMAC-SHA256(cookie, KEY_LABEL)."""
    return hmac.new(cookie, KEY_LABEL, hashlib.sha256).digest()


@dataclass(frozen=True)
class Beacon:
    """A beacon, as read (or to be written)."""

    name: str
    time_ms: int
    instance: int
    seq: int


class BeaconWriter:
    """The beacons of one node: :meth:`next` gives the next datagram.

    Args:
        name: the node's name (1..255 bytes of UTF-8).
        cookie: the cluster's cookie.
        instance: this sender's start (default: random).
        clock: seconds since the epoch (default: ``time.time``).

    Raises:
        ValueError: the name is empty or over 255 bytes.
    """

    def __init__(
        self, name: str, cookie: bytes, *, instance: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self._name = name.encode("utf-8")
        if not 1 <= len(self._name) <= 255:
            raise ValueError(f"a beacon's name is 1..255 bytes of UTF-8, got {len(self._name)}")
        self._key = beacon_key(cookie)
        self.instance = int.from_bytes(os.urandom(8), "big") if instance is None else instance
        self._clock = clock
        self.seq = 0

    def next(self) -> bytes:
        """The next beacon's bytes (``seq`` one higher, the time now)."""
        self.seq += 1
        return encode(Beacon(self._name.decode("utf-8"), int(self._clock() * 1000), self.instance, self.seq), self._key)


def encode(beacon: Beacon, key: bytes) -> bytes:
    """``beacon`` as bytes, signed with ``key`` (:func:`beacon_key` of the cookie)."""
    name = beacon.name.encode("utf-8")
    body = HEADER.pack(MAGIC, VERSION, 0, beacon.time_ms, beacon.instance, beacon.seq, len(name)) + name
    return body + hmac.new(key, body, hashlib.sha256).digest()


class BeaconReader:
    """Reads beacons signed with one cookie, refusing anything else (see the module docstring).

    Args:
        cookie: the cluster's cookie.
        max_age: seconds a beacon's time may be off the reader's clock, either way.
        max_senders: senders whose last ``seq`` is remembered (the oldest go first).
        clock: seconds since the epoch (default: ``time.time``).
    """

    def __init__(
        self,
        cookie: bytes,
        *,
        max_age: float = 30.0,
        max_senders: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = beacon_key(cookie)
        self.max_age = max_age
        self.max_senders = max_senders
        self._clock = clock
        self._last: OrderedDict[tuple[str, int], int] = OrderedDict()

    def read(self, datagram: bytes) -> Beacon:
        """The beacon in ``datagram``.

        Raises:
            BeaconError: it is refused (its ``reason`` says why).
        """
        size = len(datagram)
        if size > MAX_BEACON or size < _MIN_BEACON:
            raise BeaconError("size", f"{size} bytes")
        magic, version, flags, time_ms, instance, seq, name_len = HEADER.unpack_from(datagram)
        if (
            magic != MAGIC
            or version != VERSION
            or flags != 0
            or size != HEADER.size + name_len + MAC_SIZE
            or not name_len
        ):
            raise BeaconError("format")
        body, mac = datagram[:-MAC_SIZE], datagram[-MAC_SIZE:]
        if not hmac.compare_digest(mac, hmac.new(self._key, body, hashlib.sha256).digest()):
            raise BeaconError("signature")
        if abs(time_ms / 1000 - self._clock()) > self.max_age:
            raise BeaconError("time", f"{time_ms / 1000 - self._clock():+.1f}s off this clock")
        try:
            name = bytes(body[HEADER.size :]).decode("utf-8")
        except UnicodeDecodeError:
            raise BeaconError("format", "the name is not UTF-8") from None
        sender = (name, instance)
        last = self._last.get(sender)
        if last is not None and seq <= last:
            raise BeaconError("replay", f"seq {seq} after {last}")
        self._last[sender] = seq
        self._last.move_to_end(sender)
        while len(self._last) > self.max_senders:
            self._last.popitem(last=False)
        return Beacon(name, time_ms, instance, seq)
