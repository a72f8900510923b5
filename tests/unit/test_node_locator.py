"""Where nodes are (joerl.node.locator): resolving hosts, the cache, the mode a node's arguments pick."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from joerl.errors import EpmdError, NodeUnreachable
from joerl.node import locator as L
from joerl.node.names import derived_port


class Resolver:
    """A stand-in for gevent's getaddrinfo that counts its calls."""

    def __init__(self, answers: dict[str, list[tuple[int, str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, host: str, *_: Any) -> list[Any]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(-2, "Name or service not known")
        return [(family, socket.SOCK_STREAM, 6, "", (ip, 0)) for family, ip in self.answers[host]]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    fake = Resolver({"web2": [(socket.AF_INET6, "fd00::2"), (socket.AF_INET, "10.0.0.2")]})
    monkeypatch.setattr(L.gsocket, "getaddrinfo", fake)
    return fake


def locator(name: str = "me@web1", **kw: Any) -> L.Locator:
    args: dict[str, Any] = dict(listen_address="0.0.0.0:0", epmd_address=None, advertise_host=None)
    args.update(kw)
    return L.Locator(name, args["listen_address"], args["epmd_address"], args["advertise_host"], False, 1.0)


def test_own_names_and_ip_literals_need_no_resolver(resolver: Resolver) -> None:
    loc = locator()
    assert loc.resolve("web1") == "127.0.0.1", "this node's own host part"
    assert loc.resolve(socket.gethostname()) == "127.0.0.1" and loc.resolve("localhost") == "127.0.0.1"
    assert loc.resolve("10.9.8.7") == "10.9.8.7" and loc.resolve("::1") == "::1"
    assert resolver.calls == []


def test_a_host_name_resolves_ipv4_first_and_is_cached(resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(L, "monotonic", lambda: now[0])
    loc = locator()
    assert loc.resolve("web2") == "10.0.0.2", "port mappers listen on 0.0.0.0: IPv4 first"
    assert loc.resolve("web2") == "10.0.0.2" and resolver.calls == ["web2"], "cached"
    now[0] += L.RESOLVE_TTL + 0.1
    assert loc.resolve("web2") == "10.0.0.2" and resolver.calls == ["web2", "web2"], "asked again after the TTL"


def test_an_unknown_host_is_unreachable_with_the_reason(resolver: Resolver) -> None:
    with pytest.raises(NodeUnreachable, match="cannot resolve host 'nowhere'"):
        locator().resolve("nowhere")


def test_a_port_mapper_that_does_not_answer_drops_the_cached_address(
    resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Silent:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        def lookup(self, name: str) -> Any:
            raise EpmdError("cannot reach the port mapper")

    monkeypatch.setattr(L._epmd, "EpmdClient", Silent)
    loc = locator()
    with pytest.raises(EpmdError):
        loc.lookup("b@web2")
    assert "web2" not in loc._resolved, "the next dial resolves web2 afresh"


def test_the_mode_follows_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOERL_EPMD_ADDRESS", raising=False)
    monkeypatch.setenv("ERL_EPMD_PORT", "4400")
    per_host = locator()
    assert not per_host.shared and per_host.epmd_address == "127.0.0.1:4400" and per_host.registered_name == "me"
    assert per_host.advertise_host == "", "on every interface: the address peers reached the port mapper at"
    assert locator(listen_address="10.0.0.1:0").advertise_host == "10.0.0.1"
    assert locator(advertise_host="203.0.113.7").advertise_host == "203.0.113.7"
    shared = locator(epmd_address="10.0.0.9:4369")
    assert shared.shared and shared.registered_name == "me@web1" and shared.advertise_host == "web1"
    monkeypatch.setenv("JOERL_EPMD_ADDRESS", "10.0.0.9:4369")
    assert locator().shared and locator().epmd_address == "10.0.0.9:4369"
    monkeypatch.setenv("ERL_EPMD_PORT", "not a port")
    assert L.epmd_port() == 4369
    portless = L.Locator("pl@web1", "0.0.0.0:0", None, None, True, 1.0)
    assert not portless.shared and portless.listen_port == derived_port("pl") and portless.fixed_port is None
    fixed = L.Locator("pl@web1", "0.0.0.0:4370", None, None, True, 1.0)
    assert fixed.listen_port == fixed.fixed_port == 4370 and fixed.listen_port_of("other") == 4370
