"""Fixtures of the multi-host set: simulated hosts (network namespaces) and nodes on them.

``net`` gives three hosts (``net.hosts``: alpha, beta, gamma), each with
``.run(cmd)``, ``.start(cmd)``, ``.spawn_node(name, ...)``, ``.ip``,
``.hostname``, ``.start_epmd()`` and ``.kill_epmd()``; the faults are
``net.partition(a, b)``, ``net.isolate(a)``, ``net.loss(host, p)``,
``net.delay(a, b, ms)`` and ``net.heal()``. ``make_net(n)`` makes a network
of ``n`` hosts. Everything is removed after the test, failed or not. The set
skips, with the reason, where namespaces cannot be made (not root, no ``ip``,
``unshare`` or ``iptables``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from netns import Network, remove_leftovers, unavailable

pytestmark = pytest.mark.multihost


@pytest.fixture(scope="session")
def netns_ok() -> None:
    """Skip unless namespaces can be made here; clean up after crashed earlier runs."""
    why = unavailable()
    if why is not None:
        pytest.skip(f"multi-host tests need network namespaces: {why}")
    remove_leftovers()


@pytest.fixture
def make_net(netns_ok: None) -> Iterator[Callable[..., Network]]:
    """``make_net(hosts=3, **options)``: a :class:`Network`, removed after the test."""
    made: list[Network] = []

    def make(hosts: int = 3, **options: object) -> Network:
        net = Network(hosts, **options)  # type: ignore[arg-type]
        made.append(net)
        return net

    try:
        yield make
    finally:
        for net in reversed(made):
            net.close()


@pytest.fixture
def net(make_net: Callable[..., Network]) -> Network:
    """Three simulated hosts: alpha, beta, gamma."""
    return make_net(3)
