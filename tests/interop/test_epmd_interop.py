"""Interop with Erlang's own tools: ``erl`` nodes and the ``epmd`` command
line against joerl's daemon, and joerl's EpmdClient against Erlang's epmd."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from joerl.epmd import EpmdClient, EpmdServer, NameInUse, NodeInfo

pytestmark = pytest.mark.interop

WAITING_NODE = (
    'io:format("up ~s ~p~n", [node(), erlang:system_info(creation)]), '
    "receive stop -> ok after 60000 -> ok end, init:stop()."
)


def test_erl_nodes_register_look_up_and_connect_through_our_daemon(
    run_erl: Any,
    run_epmd_cli: Any,
    wait_until: Any,
    our_epmd: Callable[..., EpmdServer],
    erl_node: Callable[..., Any],
    clients: Callable[..., EpmdClient],
) -> None:
    server = our_epmd()
    ours = clients(f"127.0.0.1:{server.port}")
    ours.register("pyreg", "127.0.0.1", 6001, {"lang": "python"})

    alpha = erl_node(server.port, "alpha", WAITING_NODE)
    m = re.fullmatch(r"up (\S+) (\d+)", alpha.first_line)
    assert m, alpha.first_line
    assert m.group(1) == "alpha@127.0.0.1"
    creation = int(m.group(2))
    node = server.lookup("alpha")
    assert node is not None and node.kind == "erlang" and node.creation == creation >= 4
    assert node.highest_version == 6 and node.lowest_version in (5, 6)
    seen = ours.lookup("alpha")  # an erl node, seen by our client, on the daemon's host
    assert (seen.host, seen.port, seen.creation) == ("127.0.0.1", node.port, creation)
    assert [(n.name, n.kind) for n in ours.list_nodes()] == [("pyreg", "joerl"), ("alpha", "erlang")]

    beta = run_erl(
        server.port,
        "beta",
        "io:format(\"ping=~p~n\", [net_adm:ping('alpha@127.0.0.1')]), "
        'io:format("names=~p~n", [net_adm:names()]), '
        'io:format("pp=~p~n", [erl_epmd:port_please("pyreg", "127.0.0.1")]), init:stop().',
    )
    assert beta.returncode == 0, beta.stdout + beta.stderr
    assert "ping=pong" in beta.stdout  # two Erlang nodes found each other through our daemon
    names = re.search(r"names=\{ok,(.*)\}", beta.stdout, re.S).group(1)
    assert '{"pyreg",6001}' in names and '{"alpha",' in names and '{"beta",' in names
    assert "pp={port,6001,6}" in beta.stdout
    wait_until(lambda: server.lookup("beta") is None, what="beta unregistered when it stopped")

    alpha.kill(9)  # killed with -9: its name goes with its connection
    wait_until(lambda: server.lookup("alpha") is None, timeout=2, what="alpha gone")


def test_erl_refuses_a_name_our_client_holds(
    run_erl: Any,
    run_epmd_cli: Any,
    wait_until: Any,
    our_epmd: Callable[..., EpmdServer],
    clients: Callable[..., EpmdClient],
) -> None:
    server = our_epmd()
    clients(f"127.0.0.1:{server.port}").register("dup", "127.0.0.1", 6002)
    r = run_erl(server.port, "dup", "init:stop().")
    assert r.returncode != 0
    assert "seems to be in use by another Erlang node" in r.stdout + r.stderr


def test_epmd_command_line_against_our_daemon(
    run_erl: Any,
    run_epmd_cli: Any,
    wait_until: Any,
    our_epmd: Callable[..., EpmdServer],
    clients: Callable[..., EpmdClient],
) -> None:
    server = our_epmd()
    c = clients(f"127.0.0.1:{server.port}")
    c.register("holder", "127.0.0.1", 6003)
    names = run_epmd_cli(server.port, "-names")
    assert names.returncode == 0
    assert names.stdout == f"epmd: up and running on port {server.port} with data:\nname holder at port 6003\n"
    dump = run_epmd_cli(server.port, "-dump")
    assert "active name     <holder> at port 6003, fd = " in dump.stdout
    kill = run_epmd_cli(server.port, "-kill")
    assert kill.returncode == 1 and "Killing not allowed - living nodes in database." in kill.stdout
    stop = run_epmd_cli(server.port, "-stop", "holder")
    assert "epmd: local epmd responded with <>" in stop.stdout
    assert server.running and server.lookup("holder") is not None

    relaxed = our_epmd(relaxed_command_check=True)
    seen: list[NodeInfo] = []
    c2 = clients(f"127.0.0.1:{relaxed.port}", on_registered=seen.append)
    first = c2.register("victim", "127.0.0.1", 6004)
    stop = run_epmd_cli(relaxed.port, "-stop", "victim")
    assert stop.stdout == "STOPPED\n"
    # the daemon closed the registration's connection; the live client registers again at once
    wait_until(lambda: len(seen) == 2, what="victim registered again")
    assert relaxed.lookup("victim").creation == first.creation + 1
    assert run_epmd_cli(relaxed.port, "-stop", "nobody").stdout == "NOEXIST\n"
    kill = run_epmd_cli(relaxed.port, "-kill")
    assert kill.returncode == 0 and "Killed" in kill.stdout
    assert relaxed.wait(5)


def test_our_client_against_erlangs_epmd(
    run_erl: Any, run_epmd_cli: Any, wait_until: Any, real_epmd: Callable[..., Any], clients: Callable[..., EpmdClient]
) -> None:
    epmd = real_epmd()
    c = clients(epmd.address)
    info = c.register("pynode", "10.9.9.9", 6100, {"not": "carried"})
    assert c.daemon_kind == "erlang"  # the extension was refused: ALIVE2 was used
    assert info == NodeInfo("pynode", "127.0.0.1", 6100, {}, info.creation, 77, 0, 6, 6, b"", "erlang")
    assert info.creation >= 4
    found = c.lookup("pynode")
    assert (found.host, found.port, found.highest_version, found.metadata) == ("127.0.0.1", 6100, 6, {})
    assert c.lookup("nobody") is None
    assert [(n.name, n.port) for n in c.list_nodes()] == [("pynode", 6100)]
    assert c.names() == [("pynode", 6100)] and c.ping() and c.probe() == "erlang"
    out = run_epmd_cli(epmd.port, "-names").stdout
    assert "name pynode at port 6100" in out
    with pytest.raises(NameInUse):
        clients(epmd.address).register("pynode", "h", 1)
    assert c.unregister("pynode")
    wait_until(lambda: c.lookup("pynode") is None, what="epmd noticed the closed connection")
    again = c.register("pynode", "h", 6100)
    assert again.creation == info.creation + 1  # epmd's creation rule, which ours copies


def test_erl_sees_our_client_registered_at_erlangs_epmd(
    run_erl: Any, run_epmd_cli: Any, wait_until: Any, real_epmd: Callable[..., Any], clients: Callable[..., EpmdClient]
) -> None:
    epmd = real_epmd()
    clients(epmd.address).register("pyx", "127.0.0.1", 6200)
    r = run_erl(epmd.port, "probe", 'io:format("pp=~p~n", [erl_epmd:port_please("pyx", "127.0.0.1")]), init:stop().')
    assert "pp={port,6200,6}" in r.stdout, r.stdout + r.stderr


def test_our_client_registers_again_when_erlangs_epmd_restarts(
    run_erl: Any, run_epmd_cli: Any, wait_until: Any, real_epmd: Callable[..., Any], clients: Callable[..., EpmdClient]
) -> None:
    epmd = real_epmd()
    seen: list[NodeInfo] = []
    c = clients(epmd.address, keepalive_interval=1.0, retry_interval=0.05, on_registered=seen.append)
    c.register("survivor", "127.0.0.1", 6300)
    epmd.kill()
    wait_until(lambda: c.registration("survivor") is None, what="client noticed")
    t0 = time.monotonic()
    real_epmd(port=epmd.port)
    wait_until(lambda: len(seen) == 2, what="registered again")
    assert time.monotonic() - t0 < 1.0
    assert c.lookup("survivor").port == 6300


def test_client_notices_when_our_daemon_replaces_erlangs(
    run_erl: Any,
    run_epmd_cli: Any,
    wait_until: Any,
    real_epmd: Callable[..., Any],
    our_epmd: Callable[..., EpmdServer],
    clients: Callable[..., EpmdClient],
) -> None:
    epmd = real_epmd()
    seen: list[NodeInfo] = []
    c = clients(epmd.address, keepalive_interval=1.0, retry_interval=0.05, on_registered=seen.append)
    c.register("mover", "10.1.2.3", 6500, {"m": 1})
    assert seen[0].kind == "erlang" and seen[0].metadata == {}
    epmd.kill()
    server = our_epmd(("127.0.0.1", epmd.port))
    wait_until(lambda: len(seen) == 2, what="registered again")
    assert seen[1].kind == "joerl" and c.daemon_kind == "joerl"
    node = server.lookup("mover")
    assert (node.host, node.port, node.metadata) == ("10.1.2.3", 6500, {"m": 1})


def test_creations_match_erlangs_epmd(
    run_erl: Any,
    run_epmd_cli: Any,
    wait_until: Any,
    real_epmd: Callable[..., Any],
    our_epmd: Callable[..., EpmdServer],
    clients: Callable[..., EpmdClient],
) -> None:
    """Same rules on both daemons: first creation near the clock, +1 per registration of a name."""
    epmd = real_epmd()
    server = our_epmd()
    now = int(time.time())
    for address in (epmd.address, f"127.0.0.1:{server.port}"):
        c = clients(address)
        first = c.register("cr", "127.0.0.1", 6400).creation
        assert now - 5 <= first <= int(time.time()) + 2
        c.unregister("cr")
        wait_until(lambda: c.lookup("cr") is None)
        assert c.register("cr", "127.0.0.1", 6400).creation == first + 1
