"""joerl.address: the one "host:port" parser."""

from __future__ import annotations

from typing import Any

import pytest

from joerl.address import format_address, parse_address


@pytest.mark.parametrize(
    "text, expected",
    [
        ("127.0.0.1:4369", ("127.0.0.1", 4369)),
        ("0.0.0.0:14369", ("0.0.0.0", 14369)),
        ("localhost", ("localhost", 4369)),
        ("5000", ("127.0.0.1", 5000)),
        (":0", ("127.0.0.1", 0)),
        ("  host:1  ", ("host", 1)),
        ("[::1]:99", ("::1", 99)),
        ("::1", ("::1", 4369)),
        ("[::1]", ("::1", 4369)),
        (("h", 7), ("h", 7)),
    ],
)
def test_parse_address(text: Any, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


def test_defaults_are_the_callers() -> None:
    assert parse_address(":0", default_host="0.0.0.0") == ("0.0.0.0", 0)
    assert parse_address("h", default_port=0) == ("h", 0)


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("h:x", "not a number"),
        ("h:70000", "0..65535"),
        ("h:-1", "0..65535"),
        ("[::1", "missing"),
        ("[::1]x", "expected"),
        ("[::1]:p", "not a number"),
        ("", "expected"),
        (("h",), "expected"),
        (("h", True), "0..65535"),
        ((7, 7), "bad host"),
        (None, "expected an address"),
    ],
)
def test_bad_addresses_say_why(bad: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_address(bad)


def test_format_address() -> None:
    assert format_address("::1", 5) == "[::1]:5"
    assert format_address("h", 5) == "h:5"
    assert parse_address(format_address("::1", 5)) == ("::1", 5)
