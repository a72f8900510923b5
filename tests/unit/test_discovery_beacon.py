"""The multicast beacon, byte by byte: layout, signature, and every refusal (sans-IO)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from joerl.discovery.beacon import MAX_BEACON, Beacon, BeaconReader, BeaconWriter, beacon_key, encode
from joerl.errors import BeaconError
from joerl.testing import FakeClock

COOKIE = b"cluster-cookie"
NOW = 1_700_000_000.0


def reader(**kw: object) -> BeaconReader:
    return BeaconReader(COOKIE, clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def beacon(name: str = "a@h", seq: int = 1, instance: int = 0x0102030405060708, at: float = NOW) -> bytes:
    return encode(Beacon(name, int(at * 1000), instance, seq), beacon_key(COOKIE))


def refused(data: bytes, r: BeaconReader | None = None) -> str:
    with pytest.raises(BeaconError) as info:
        (r or reader()).read(data)
    return info.value.reason


def test_layout_byte_by_byte() -> None:
    data = beacon()
    key = hmac.new(COOKIE, b"joerl discovery beacon v1", hashlib.sha256).digest()
    body = (
        b"JRLB"  # magic
        + b"\x01"  # version
        + b"\x00"  # flags
        + (1_700_000_000_000).to_bytes(8, "big")  # time_ms
        + bytes.fromhex("0102030405060708")  # instance
        + b"\x00\x00\x00\x01"  # seq
        + b"\x03"  # name_len
        + b"a@h"
    )
    assert data == body + hmac.new(key, body, hashlib.sha256).digest()
    assert len(data) == 27 + 3 + 32


def test_a_beacon_reads_back() -> None:
    assert reader().read(beacon()) == Beacon("a@h", 1_700_000_000_000, 0x0102030405060708, 1)


def test_the_writer_counts_and_stamps() -> None:
    clock = FakeClock(NOW)
    writer = BeaconWriter("n@host", COOKIE, instance=7, clock=clock)
    r = BeaconReader(COOKIE, clock=clock)
    first = r.read(writer.next())
    clock.advance(1.5)
    second = r.read(writer.next())
    assert (first.seq, second.seq) == (1, 2) and second.time_ms - first.time_ms == 1500
    assert first.name == "n@host" and first.instance == 7


def test_another_cookie_is_a_stranger() -> None:
    stranger = encode(Beacon("a@h", int(NOW * 1000), 1, 1), beacon_key(b"another cookie"))
    assert refused(stranger) == "signature"


def test_every_flipped_bit_is_refused() -> None:
    data = beacon()
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            assert refused(bytes(bad)) in ("format", "signature")


def test_every_truncation_and_trailing_bytes_are_refused() -> None:
    data = beacon()
    for n in range(len(data)):
        assert refused(data[:n]) in ("size", "format", "signature")
    assert refused(data + b"\x00") in ("format", "signature")


def test_size_bounds() -> None:
    assert refused(b"") == "size"
    assert refused(b"\x00" * (MAX_BEACON + 1)) == "size"
    longest = beacon("n" * 255)
    assert len(longest) == MAX_BEACON and reader().read(longest).name == "n" * 255


def test_format_fields() -> None:
    good = bytearray(beacon())
    for offset, value in ((0, ord("X")), (4, 2), (5, 1), (26, 4), (26, 0)):
        bad = bytearray(good)
        bad[offset] = value
        # Re-signed so that the check under test is the one that refuses it.
        body = bytes(bad[:-32])
        signed = body + hmac.new(beacon_key(COOKIE), body, hashlib.sha256).digest()
        assert refused(signed) == "format", offset


def test_a_name_that_is_not_utf8_is_refused() -> None:
    body = bytearray(beacon()[:-32])
    body[-1] = 0xFF
    signed = bytes(body) + hmac.new(beacon_key(COOKIE), bytes(body), hashlib.sha256).digest()
    assert refused(signed) == "format"


def test_old_and_future_beacons_are_refused() -> None:
    r = reader(max_age=30.0)
    assert refused(beacon(at=NOW - 31), r) == "time"
    assert refused(beacon(at=NOW + 31), r) == "time"
    assert r.read(beacon(at=NOW - 29)).seq == 1


def test_replays_are_refused() -> None:
    r = reader()
    r.read(beacon(seq=5))
    assert refused(beacon(seq=5), r) == "replay"
    assert refused(beacon(seq=4), r) == "replay"
    assert r.read(beacon(seq=6)).seq == 6
    # A new start of the node (another instance) counts from 1 again.
    assert r.read(beacon(seq=1, instance=99)).seq == 1


def test_the_table_of_senders_is_bounded() -> None:
    r = reader(max_senders=2)
    for name in ("a@h", "b@h", "c@h"):
        r.read(beacon(name, seq=3))
    assert refused(beacon("c@h", seq=3), r) == "replay"
    assert r.read(beacon("a@h", seq=3)).name == "a@h"  # the oldest was forgotten


def test_a_writer_refuses_a_name_that_cannot_travel() -> None:
    with pytest.raises(ValueError):
        BeaconWriter("", COOKIE)
    with pytest.raises(ValueError):
        BeaconWriter("x" * 256, COOKIE)
