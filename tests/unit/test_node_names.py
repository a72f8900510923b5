"""Node names: name@host, parsed, checked and completed (joerl.node.names)."""

from __future__ import annotations

import socket

import pytest

from joerl.errors import InvalidName, InvalidNodeName
from joerl.node.names import (
    DERIVED_PORT_BASE,
    DERIVED_PORT_SPAN,
    NodeName,
    default_host,
    derived_port,
    full_name_problem,
    node_name,
    parse_node_name,
)


def test_a_full_name_is_taken_as_written() -> None:
    assert parse_node_name("a@h1") == NodeName("a", "h1")
    assert node_name("web-1_x@db.example.com") == "web-1_x@db.example.com"
    assert node_name("a@10.0.0.5") == "a@10.0.0.5"
    assert node_name("a@::1") == "a@::1", "an IPv6 literal, written bare"
    assert node_name("a@Host") == "a@Host", "case is kept: node names are atoms"
    assert str(NodeName("a", "h")) == "a@h"


def test_a_name_without_a_host_gets_this_machines() -> None:
    short = socket.gethostname().split(".", 1)[0]
    assert default_host() == short
    assert node_name("a") == f"a@{short}"
    assert default_host(long_names=True) == socket.getfqdn()
    assert node_name("a", long_names=True) == f"a@{socket.getfqdn()}"
    assert node_name("a", host="h9") == "a@h9", "or the host given"
    assert node_name("a@h1", host="h9") == "a@h1", "a given host stays"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "is empty"),
        ("@h", "empty name part"),
        ("a@", "empty host part"),
        ("a@b@c", "more than one '@'"),
        ("a b", "character ' '"),
        ("a.b@h", "character '.'"),
        ("é@h", "character 'é'"),
        ("a@h!", "neither an IP address nor a host name"),
        ("a@h..x", "neither an IP address nor a host name"),
        ("a@" + "x" * 64, "neither an IP address nor a host name"),
        ("a\n@h", "character '\\\\n'"),
        ("a" * 250 + "@hosts", "over the limit of 255"),
        (3, "must be a str"),
        (None, "must be a str"),
    ],
)
def test_invalid_names_are_refused_with_the_reason(name: object, why: str) -> None:
    with pytest.raises(InvalidNodeName, match=why) as info:
        node_name(name)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InvalidName)
    assert info.value.name == name


def test_the_limits_are_inclusive() -> None:
    longest = "a" * 205 + "@" + ".".join(["h" * 9] * 5)  # 255 bytes
    assert len(longest.encode()) == 255 and node_name(longest) == longest
    with pytest.raises(InvalidNodeName, match="over the limit of 255"):
        node_name(longest + "x")
    assert node_name("a@" + "x" * 63) == "a@" + "x" * 63


def test_a_bad_default_host_is_a_clear_error() -> None:
    with pytest.raises(InvalidNodeName, match="with this machine's host name"):
        node_name("a", host="bad host")


def test_a_hello_must_claim_a_full_name() -> None:
    assert full_name_problem("a@h") == ""
    assert "no '@host'" in full_name_problem("a")
    assert full_name_problem("a@b@c") != ""


def test_derived_ports_are_stable_and_in_range() -> None:
    ports = {derived_port(f"n{i}") for i in range(200)}
    assert all(DERIVED_PORT_BASE <= p < DERIVED_PORT_BASE + DERIVED_PORT_SPAN for p in ports)
    assert derived_port("web") == derived_port("web"), "every machine computes the same port"
    assert (
        derived_port("web") == 20000 + int.from_bytes(__import__("hashlib").sha256(b"web").digest()[:4], "big") % 10000
    )
    assert derived_port("web", base=4370, span=1) == 4370
