"""``examples/multihost_cluster.py`` on three simulated hosts: a node on each,
each registered with its own host's port mapper, finding the others through
discovery (the port mappers' listings, or a static list)."""

from __future__ import annotations

import sys

import pytest
from netns import ROOT, Network

pytestmark = [pytest.mark.multihost, pytest.mark.timeout(180)]

EXAMPLE = ROOT / "examples" / "multihost_cluster.py"


@pytest.mark.parametrize("source", ["--hosts", "--nodes"])
def test_cluster_example_across_hosts(net: Network, source: str) -> None:
    names = ["a@alpha", "b@beta", "c@gamma"]
    found = "alpha,beta,gamma" if source == "--hosts" else ",".join(names)
    for host in net.hosts:
        host.start_epmd()
    runs = [
        host.start(
            [
                sys.executable,
                str(EXAMPLE),
                name.split("@")[0],
                source,
                found,
                "--expect",
                "3",
                "--wait",
                "60",
                "--interval",
                "0.3",
                "--tick",
                "5",
            ],
            stdin=False,
        )  # fmt: skip
        for host, name in zip(net.hosts, names, strict=True)
    ]
    codes = [run.wait(90) for run in runs]
    for run, name, code in zip(runs, names, codes, strict=True):
        report = "\n".join(run.lines) + "\n" + run.stderr()
        assert code == 0, f"{name} exited {code}\n{report}"
        assert "Traceback" not in run.stderr(), report
        assert any(f"[{name}] cluster complete: {names}" in line for line in run.lines), report
        assert run.lines[-1] == f"[{name}] leaving", report
