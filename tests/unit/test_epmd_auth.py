"""The shared port mapper's authenticated registrations, byte by byte (joerl.epmd._auth, _ext)."""

from __future__ import annotations

import hashlib
import hmac
import struct

import msgpack
import pytest

from joerl.epmd import protocol as p
from joerl.epmd._auth import register_message, verify_register_mac
from joerl.errors import EpmdProtocolError

NONCE = bytes(range(16))


def test_the_message_an_hmac_covers_is_laid_out_field_by_field() -> None:
    got = register_message(NONCE, "a@h1", "10.0.0.1", 4370)
    want = b"joerl-epmd register v1\x00" + b"\x00\x10" + NONCE + b"\x00\x04a@h1" + b"\x00\x0810.0.0.1" + b"\x11\x12"
    assert got == want
    # Length prefixes keep fields apart: moving a byte from one field to the next changes the message.
    assert register_message(NONCE, "a@h", "110.0.0.1", 4370) != got


def test_the_hmac_is_sha256_keyed_with_the_cookie() -> None:
    mac = p.register_mac(b"cookie", NONCE, "a@h1", "10.0.0.1", 4370)
    assert mac == hmac.new(b"cookie", register_message(NONCE, "a@h1", "10.0.0.1", 4370), hashlib.sha256).digest()
    assert len(mac) == 32
    assert verify_register_mac(b"cookie", NONCE, "a@h1", "10.0.0.1", 4370, mac)
    for args in [
        (b"other", NONCE, "a@h1", "10.0.0.1", 4370),
        (b"cookie", bytes(16), "a@h1", "10.0.0.1", 4370),
        (b"cookie", NONCE, "b@h1", "10.0.0.1", 4370),
        (b"cookie", NONCE, "a@h1", "10.0.0.2", 4370),
        (b"cookie", NONCE, "a@h1", "10.0.0.1", 4371),
    ]:
        assert not verify_register_mac(*args, mac), args


def _body(frame: bytes) -> dict:
    n, op = struct.unpack(">HB", frame[:3])
    assert op == p.OP_JOERL and n == len(frame) - 2
    return msgpack.unpackb(frame[3:], raw=False)


def test_challenge_request_bytes() -> None:
    frame = p.Challenge().encode()
    assert frame == b"\x00\x0fJ\x81\xa2op\xa9challenge"
    assert _body(frame) == {"op": "challenge"}
    assert p.RequestDecoder().feed(frame) == [p.Challenge()]


def test_a_register_carries_its_auth_only_when_given() -> None:
    plain = _body(p.Register("a@h1", "10.0.0.1", 4370).encode())
    assert "auth" not in plain and plain["name"] == "a@h1"
    mac = p.register_mac(b"k", NONCE, "a@h1", "10.0.0.1", 4370)
    req = p.Register("a@h1", "10.0.0.1", 4370, auth=mac)
    assert _body(req.encode())["auth"] == mac
    assert p.RequestDecoder().feed(req.encode()) == [req]


@pytest.mark.parametrize("how", ["whole", "byte by byte", "with trailing bytes"])
def test_challenge_reply_decodes_however_it_arrives(how: str) -> None:
    reply = p.ChallengeReply(NONCE).encode()
    assert reply[:1] == b"J" and struct.unpack(">I", reply[1:5])[0] == len(reply) - 5
    assert msgpack.unpackb(reply[5:], raw=False) == {"op": "challenge", "nonce": NONCE}
    decoder = p.ExtReplyDecoder()
    if how == "whole":
        assert decoder.feed(reply) == [p.ChallengeReply(NONCE)]
    elif how == "byte by byte":
        got = [r for i in range(len(reply)) for r in decoder.feed(reply[i : i + 1])]
        assert got == [p.ChallengeReply(NONCE)]
    else:
        assert decoder.feed(reply + b"J\x00") == [p.ChallengeReply(NONCE)] and decoder.buffered == 2


def test_a_challenge_reply_without_a_nonce_is_a_protocol_error() -> None:
    body = msgpack.packb({"op": "challenge", "nonce": "not bytes"}, use_bin_type=True)
    with pytest.raises(EpmdProtocolError, match="nonce"):
        p.ExtReplyDecoder().feed(b"J" + struct.pack(">I", len(body)) + body)
