"""Real servers for the discovery tests: dnsmasq and etcd, each started by the test on free loopback
ports with its own files, and stopped after it (skipped with a reason where the program is missing)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from joerl.testing import ChildProcess, free_port


class Dnsmasq:
    """A dnsmasq answering for ``cluster.test`` only, from a hosts file and SRV records the test sets.

    ``set_hosts`` rewrites the hosts file and sends SIGHUP (dnsmasq reads it
    again); ``restart`` starts it again with other SRV records (those are
    read at start only). Either returns once dnsmasq logged that it read the
    file.
    """

    DOMAIN = "cluster.test"

    def __init__(self, workdir: Path) -> None:
        self.hosts = workdir / "hosts"
        self.hosts.write_text("")
        self.port = free_port()
        self.child: ChildProcess | None = None

    def start(self, srv: list[str] = ()) -> None:  # type: ignore[assignment]
        argv = [
            "dnsmasq", "--keep-in-foreground", "--no-daemon", f"--port={self.port}",
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", f"--addn-hosts={self.hosts}", f"--local=/{self.DOMAIN}/",
            "--user=root", "--pid-file=", "--cache-size=0",
        ] + [f"--srv-host={record}" for record in srv]  # fmt: skip
        # dnsmasq logs to standard error: joined to the output the child's reader waits on.
        self.child = ChildProcess(
            ["sh", "-c", 'exec "$@" 2>&1', "dnsmasq", *argv], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        )
        self.child.wait_line(lambda line: f"read {self.hosts}" in line, timeout=10)

    def set_hosts(self, lines: list[str]) -> None:
        assert self.child is not None
        self.hosts.write_text("".join(line + "\n" for line in lines))
        self.child.send_signal(signal.SIGHUP)
        self.child.wait_line(lambda line: f"read {self.hosts}" in line, timeout=10)

    def restart(self, srv: list[str]) -> None:
        self.stop()
        self.start(srv)

    def stop(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


@pytest.fixture
def dnsmasq(tmp_path: Path) -> Iterator[Dnsmasq]:
    if shutil.which("dnsmasq") is None and not Path("/usr/sbin/dnsmasq").exists():
        pytest.skip("dnsmasq is not installed (apt-get install dnsmasq; .ci/run installs it)")
    server = Dnsmasq(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Etcd:
    """An etcd server on free loopback ports with its own data directory; ``stop`` and ``start``
    again keep its data (leases included), as a restart of the real service would."""

    def __init__(self, workdir: Path) -> None:
        self.data = workdir / "etcd-data"
        self.client_port = free_port()
        self.peer_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        self.child: ChildProcess | None = None

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [
            "etcd", "--name", "test", "--data-dir", str(self.data),
            "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"test={peer}",
        ]  # fmt: skip
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "ETCD_UNSUPPORTED_ARCH": ""}
        self.child = ChildProcess(["sh", "-c", 'exec "$@" 2>&1', "etcd", *argv], env=env)
        self.child.wait_line(lambda line: "ready to serve client requests" in line, timeout=30)

    def stop(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (apt-get install etcd-server; .ci/run installs it)")
    server = Etcd(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
