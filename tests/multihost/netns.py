"""Simulated hosts for tests: Linux network namespaces on a private bridge.

A :class:`Network` makes one namespace for a bridge and one per host, each
host joined to the bridge by a veth pair, with an address of a private /24,
its loopback up, a host name of its own (its processes run under
``unshare --uts``) and an ``/etc/netns/NS/hosts`` file naming every host.
Nothing is created in the machine's own namespace: the bridge lives in a
namespace of its own, and every address belongs to the namespaces the
network makes (and removes in :meth:`Network.close`, also after a failed
test; :func:`remove_leftovers` removes those of a run that crashed).

Faults, inside the hosts' namespaces (this kernel has no ``netem``):

* :meth:`Network.partition` drops every packet between two hosts (iptables
  ``DROP`` both ways: a silent partition, no reset);
* :meth:`Network.loss` drops a share of the packets a host receives
  (``-m statistic --mode random``);
* :meth:`Network.delay` sends every TCP connection between two hosts
  through a relay (``relay.py``) in the dialling host's namespace, which
  holds each chunk for a fixed time in both directions (an iptables
  ``REDIRECT`` to the relay, which finds the real destination with
  ``SO_ORIGINAL_DST``; its own connections carry a mark the rule skips);
* :meth:`Network.heal` removes them all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from gevent import subprocess

from joerl.testing import ChildProcess, ProcessGroup, child_env, fields

#: Every namespace this harness makes is called ``jmh<pid>-...``.
PREFIX = "jmh"
#: The mark of the delay relay's own connections (the REDIRECT rule skips them).
RELAY_MARK = 0x6A
#: Host names, in order.
HOSTNAMES = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NETNS_ETC = Path("/etc/netns")


def _sh(*argv: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a command of the harness itself (``ip``, ``iptables``), output captured."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    for tool, package in (("ip", "iproute2"), ("unshare", "util-linux"), ("iptables", "iptables")):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed (system package {package})"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = _sh("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    try:
        rule = _sh("ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT", check=False)
        if rule.returncode != 0:
            return f"iptables does not work inside a namespace: {rule.stderr.strip()}"
        uts = _sh("ip", "netns", "exec", probe, "unshare", "--uts", "hostname", "probe", check=False)
        if uts.returncode != 0:
            return f"unshare --uts does not work: {uts.stderr.strip()}"
    finally:
        _sh("ip", "netns", "del", probe, check=False)
    return None


def _namespaces() -> list[str]:
    out = _sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _remove_namespace(ns: str) -> None:
    """Kill what runs in ``ns``, delete it and its ``/etc/netns`` directory."""
    for pid in _sh("ip", "netns", "pids", ns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    _sh("ip", "netns", "del", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def remove_leftovers() -> list[str]:
    """Remove the namespaces of earlier runs whose process is gone (a crash); their names."""
    removed = []
    for ns in _namespaces():
        owner = ns[len(PREFIX) :].split("-", 1)[0]
        if ns.startswith(PREFIX) and owner.isdigit() and not Path(f"/proc/{owner}").exists():
            _remove_namespace(ns)
            removed.append(ns)
    return removed


class Host:
    """One simulated host: a namespace with one address and a host name.

    Attributes:
        net: the :class:`Network` it belongs to.
        index: its position (0, 1, ...).
        hostname: its host name (what ``hostname`` says in its processes).
        ns: its namespace's name.
        ip: its address on the bridge.
        epmd: its port mapper process, while one runs (:meth:`start_epmd`).
    """

    def __init__(self, net: Network, index: int, hostname: str, ns: str, ip: str) -> None:
        self.net = net
        self.index = index
        self.hostname = hostname
        self.ns = ns
        self.ip = ip
        self.epmd: ChildProcess | None = None

    def __repr__(self) -> str:
        return f"<Host {self.hostname} {self.ip} ns={self.ns}>"

    def argv(self, cmd: list[str]) -> list[str]:
        """``cmd`` run on this host: in its namespace, with its host name.

        ``ip netns exec``, ``unshare`` and ``sh`` each exec the next, so the
        process a test starts with this argv is ``cmd`` itself (its pid is
        the one to signal).
        """
        script = 'hostname "$0" && exec "$@"'
        return ["ip", "netns", "exec", self.ns, "unshare", "--uts", "sh", "-c", script, self.hostname, *cmd]

    def run(self, cmd: list[str], *, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` on this host to its end; its output captured (text)."""
        done = subprocess.run(self.argv(cmd), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if check and done.returncode != 0:
            raise RuntimeError(f"on {self.hostname}: {' '.join(cmd)} failed ({done.returncode}): {done.stderr}")
        return done

    def start(self, cmd: list[str], **options: Any) -> ChildProcess:
        """Start ``cmd`` on this host as a child process of the network's group (killed at the end)."""
        return self.net.group.start(self.argv(cmd), **options)

    def iptables(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``iptables ARGS`` in this host's namespace."""
        return _sh("ip", "netns", "exec", self.ns, "iptables", *args, check=check)

    def start_epmd(self, *options: str, wait: bool = True) -> ChildProcess:
        """Start this host's port mapper, ``joerl-epmd 0.0.0.0:4369``, and (``wait``) wait until it listens."""
        if self.epmd is not None and self.epmd.alive():
            raise RuntimeError(f"{self.hostname} already runs a port mapper")
        self.epmd = self.start([sys.executable, "-m", "joerl.epmd", "0.0.0.0:4369", *options])
        if wait:
            self.epmd.wait_ready()
        return self.epmd

    def kill_epmd(self) -> None:
        """Kill this host's port mapper (SIGKILL: it has no chance to say goodbye)."""
        if self.epmd is not None:
            self.epmd.close()
            self.epmd = None

    def spawn_node(self, name: str, *options: str, **kw: Any) -> Any:
        """Start a node (``agent.py``) on this host; see :class:`agent_client.Agent`."""
        from agent_client import Agent

        return Agent.start(self, name, *options, **kw)


class Network:
    """N simulated hosts on one bridge; a context manager that removes everything at the end.

    Args:
        hosts: how many hosts.
        cookie: ``$JOERL_COOKIE`` of every process started on a host.
        timeout: the default deadline of the processes' waits, in seconds
            (generous: a node's start on a loaded machine takes seconds).

    Attributes:
        hosts: the :class:`Host` objects.
        subnet: the /24 the hosts' addresses come from (``"10.231.N"``, N from
            the pid). It cannot clash with the machine's own networks: the
            hosts' namespaces have no route out of the bridge.
        group: the :class:`ProcessGroup` of every process started on a host.
    """

    def __init__(self, hosts: int = 3, *, cookie: str = "joerl-multihost", timeout: float = 60.0) -> None:
        if not 1 <= hosts <= len(HOSTNAMES):
            raise ValueError(f"1 to {len(HOSTNAMES)} hosts, not {hosts}")
        pid = os.getpid()
        self.tag = f"{PREFIX}{pid}-{os.urandom(2).hex()}"
        self.subnet = f"10.231.{pid % 250 + 1}"
        self.bridge_ns = f"{self.tag}-br"
        self.group = ProcessGroup(cwd=ROOT, timeout=timeout, env=_env(cookie))
        self.hosts: list[Host] = []
        self._relays: list[ChildProcess] = []
        self._made: list[str] = []
        try:
            self._build(hosts)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getitem__(self, index: int) -> Host:
        return self.hosts[index]

    def _build(self, count: int) -> None:
        br = self.bridge_ns
        _sh("ip", "netns", "add", br)
        self._made.append(br)
        _sh("ip", "-n", br, "link", "set", "lo", "up")
        _sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
        _sh("ip", "-n", br, "link", "set", "br0", "up")
        names = HOSTNAMES[:count]
        for i, hostname in enumerate(names):
            ns = f"{self.tag}-{hostname}"
            _sh("ip", "netns", "add", ns)
            self._made.append(ns)
            host = Host(self, i, hostname, ns, f"{self.subnet}.{11 + i}")
            _sh("ip", "-n", br, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _sh("ip", "-n", br, "link", "set", f"v{i}", "master", "br0", "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "addr", "add", f"{host.ip}/24", "dev", "eth0")
            _sh("ip", "-n", ns, "link", "set", "eth0", "up", "multicast", "on")
            _sh("ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            self.hosts.append(host)
        lines = ["127.0.0.1 localhost", *(f"{h.ip} {h.hostname}" for h in self.hosts)]
        for host in self.hosts:
            etc = NETNS_ETC / host.ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text("\n".join(lines) + "\n")
            # No name server: a name that is not a host here fails at once, and
            # no query leaves for the machine's real resolver.
            (etc / "resolv.conf").write_text("options timeout:1 attempts:1\n")

    def close(self) -> None:
        """Stop every process, remove every namespace and file this network made (idempotent)."""
        try:
            self.group.close()
        finally:
            for ns in reversed(self._made):
                _remove_namespace(ns)
            self._made.clear()

    # -- faults -----------------------------------------------------------------------

    def partition(self, a: Host, b: Host) -> None:
        """Drop every packet between ``a`` and ``b``, both ways (a silent partition)."""
        for here, there in ((a, b), (b, a)):
            here.iptables("-A", "INPUT", "-s", there.ip, "-j", "DROP")
            here.iptables("-A", "OUTPUT", "-d", there.ip, "-j", "DROP")

    def isolate(self, host: Host) -> None:
        """Partition ``host`` from every other host."""
        for other in self.hosts:
            if other is not host:
                self.partition(host, other)

    def loss(self, host: Host, probability: float) -> None:
        """Drop each packet ``host`` receives from the bridge with ``probability``."""
        if not 0 <= probability < 1:
            raise ValueError(f"a probability in [0, 1), not {probability}")
        host.iptables(
            "-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
            "--probability", str(probability), "-j", "DROP",
        )  # fmt: skip

    def delay(self, a: Host, b: Host, ms: float) -> None:
        """Hold every chunk of every TCP connection between ``a`` and ``b`` for ``ms``
        milliseconds, in both directions, whichever host dials."""
        for here, there in ((a, b), (b, a)):
            relay = here.start(
                [sys.executable, str(HERE / "relay.py"), "--delay-ms", str(ms), "--mark", str(RELAY_MARK)]
            )
            port = relay.wait_ready()["port"]
            self._relays.append(relay)
            here.iptables(
                "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", there.ip,
                "-m", "mark", "!", "--mark", str(RELAY_MARK), "-j", "REDIRECT", "--to-ports", port,
            )  # fmt: skip

    def relay_stats(self) -> list[dict[str, str]]:
        """What each delay relay has carried (asks them; see relay.py)."""
        stats = []
        for relay in self._relays:
            relay.write_line("stats")
            stats.append(fields(relay.wait_line("STATS")))
        return stats

    def heal(self) -> None:
        """Remove every fault: the hosts' iptables rules, and the delay relays."""
        for host in self.hosts:
            host.iptables("-F")
            host.iptables("-t", "nat", "-F")
        while self._relays:
            self._relays.pop().close()


def _env(cookie: str) -> dict[str, str]:
    """The environment of every process on a host: the cookie, this directory
    on ``$PYTHONPATH`` (``agent.py`` imports its neighbours), port 4369."""
    env = child_env(cookie)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
    env.pop("ERL_EPMD_PORT", None)
    return env
