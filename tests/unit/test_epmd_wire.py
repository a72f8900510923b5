"""Shared wire rules (joerl.epmd._wire): names, framing limits, what encoders refuse."""

from __future__ import annotations

from typing import Any

import pytest

from joerl.epmd import protocol as p
from joerl.epmd._wire import wire_name
from joerl.epmd.protocol import (
    Alive2Req,
    InvalidName,
    PortPlease2Req,
    Register,
    check_name,
)
from joerl.errors import EpmdError, LocalProtocolError


@pytest.mark.parametrize("name", ["a", "n" * 255, "é" * 127, "node-1.x_y"])
def test_valid_names(name: str) -> None:
    assert p.check_name(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("", "empty"),
        ("n" * 256, "over the limit"),
        ("é" * 128, "over the limit"),
        ("a\0b", "NUL"),
        ("a@host", "'@'"),
        ("\udcff", "UTF-8"),
        (3, "str"),
    ],
)
def test_invalid_names(name: Any, why: str) -> None:
    with pytest.raises(InvalidName, match=why) as info:
        p.check_name(name)
    assert isinstance(info.value, ValueError) and isinstance(info.value, EpmdError)


def test_encoders_refuse_what_cannot_be_sent() -> None:
    with pytest.raises(InvalidName):
        Register("a@b@c", "h", 1).encode()
    assert Register("a@b", "h", 1).encode(), "a shared port mapper holds full names"
    with pytest.raises(InvalidName):
        PortPlease2Req("").encode()
    with pytest.raises(LocalProtocolError):
        Alive2Req(1, "a", extra=b"x" * 1021).encode()
    with pytest.raises(LocalProtocolError):
        Register("a", "h", 1, {"big": b"x" * 70000}).encode()


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "tab\there", "\x1b[31m", "del\x7f", "c1\x85", "ls\u2028", "nbsp\xa0"])
def test_names_with_control_or_unprintable_characters_are_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="control or unprintable character U\\+"):
        check_name(name)
    with pytest.raises(InvalidName, match="control characters"):
        wire_name(name, "PORT_PLEASE2")
    assert check_name("ok name-1.2_é") == "ok name-1.2_é"
