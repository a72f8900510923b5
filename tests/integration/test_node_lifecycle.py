"""A DistributedSystem constructor that fails leaves nothing behind (issue 15).

No listener, port mapper registration, greenlet or file descriptor survives a
constructor that raises, whatever the step that failed (a name checked before
any IO, a taken name, an unreachable port mapper, a failure once registered),
and the name stays free: a second node takes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from joerl import DistributedSystem
from joerl.errors import DistributionError
from joerl.node import node as node_module
from joerl.node.names import node_name as full
from joerl.testing import free_port, live_greenlets, running_epmd, wait_until

COOKIE = "lifecycle-test-cookie"


def open_fds() -> set[str]:
    """This process's open file descriptors (from /proc/self/fd)."""
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def epmd() -> Iterator[str]:
    with running_epmd() as address:
        yield address


def make(name: str, epmd: str, **options: Any) -> DistributedSystem:
    return DistributedSystem(name, "127.0.0.1:0", epmd, cookie=COOKIE, start_epmd=False, **options)


def leaves_nothing_behind(attempt: Callable[[], Any], error: type[BaseException], match: str | None) -> None:
    """``attempt()`` raises ``error``; afterwards no fd and no greenlet it made is left."""
    gevent.sleep(0)
    fds, greenlets = open_fds(), live_greenlets()
    with pytest.raises(error, match=match):
        attempt()
    wait_until(lambda: not (live_greenlets() - greenlets), timeout=10, what="no greenlet left")
    wait_until(lambda: open_fds() <= fds, timeout=10, what=f"no fd left: {open_fds() - fds}")


@pytest.mark.parametrize("name", ["bad\nname", "tab\there", "nul\x00", "a@b@c", "a@", "@h", "a b", ""])
def test_an_invalid_name_is_refused_before_any_io(epmd: str, name: str) -> None:
    leaves_nothing_behind(lambda: make(name, epmd), ValueError, None)


def test_a_taken_name_leaves_nothing_behind(epmd: str) -> None:
    first = make("taken", epmd)
    try:
        leaves_nothing_behind(lambda: make("taken", epmd), DistributionError, "already registered")
        assert [n.name for n in first.list_nodes()] == [first.node_name]
    finally:
        first.shutdown()
    second = make("taken", epmd)  # the name is free once its holder has gone
    second.shutdown()


def test_an_unreachable_port_mapper_leaves_nothing_behind() -> None:
    nobody = f"127.0.0.1:{free_port()}"
    leaves_nothing_behind(
        lambda: make("lonely", nobody, epmd_timeout=1.0), DistributionError, "cannot register node 'lonely@"
    )


def test_a_failure_once_registered_is_undone_and_the_name_stays_free(
    epmd: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_node: Any) -> Any:
        raise RuntimeError("the global name server failed to start")

    with monkeypatch.context() as patch:
        patch.setattr(node_module, "GlobalNames", broken)
        leaves_nothing_behind(lambda: make("phoenix", epmd), RuntimeError, "failed to start")
    # Unregistered: a second node takes the name at once, and links like any other.
    with make("phoenix", epmd) as second, make("other", epmd) as other:
        assert sorted(n.name for n in second.list_nodes()) == [full("other"), full("phoenix")]
        assert other.connect_to_node("phoenix", timeout=10)


def test_bad_admission_settings_are_refused_before_any_io(epmd: str) -> None:
    leaves_nothing_behind(lambda: make("x", epmd, max_handshakes=0), ValueError, "must be positive")
    leaves_nothing_behind(lambda: make("x", epmd, first_bytes_timeout=0), ValueError, "must be positive")
    leaves_nothing_behind(lambda: make("x", epmd, max_handshakes_per_address=-1), ValueError, "must be positive")


def test_a_listen_address_in_use_leaves_nothing_behind(epmd: str) -> None:
    with make("holder", epmd) as holder:
        address = f"127.0.0.1:{holder.listen_port}"
        leaves_nothing_behind(
            lambda: DistributedSystem("squatter", address, epmd, cookie=COOKIE, start_epmd=False), OSError, "in use"
        )
        assert sorted(n.name for n in holder.list_nodes()) == [full("holder")]


def test_a_node_wide_max_mailbox(epmd: str) -> None:
    with make("limited", epmd, max_mailbox=5) as node:
        assert node.system.max_mailbox == 5
    with pytest.raises(ValueError, match="max_mailbox"):
        make("bad_limit", epmd, max_mailbox=0)
