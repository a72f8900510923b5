"""Helpers for testing code built on joerl (and for joerl's own tests).

Processes and messages:

* :class:`Probe`: a process whose mailbox a test reads, selectively and with
  deadlines (``probe.receive(Down, timeout=1.0)``, ``probe.expect_nothing()``).

Nodes and links:

* :func:`running_epmd` runs a port mapper in this process on a free loopback
  port; :func:`node_cluster` starts several nodes on it and shuts them down after.
* :func:`linked_pair` gives two authenticated link ends over loopback;
  :func:`handshake_engines` and :func:`run_handshake` the sans-IO handshake
  of two engines with reproducible bytes; :class:`Received` is a link
  handler that keeps what arrives.

Child processes:

* :class:`ChildProcess` runs a program (a node, a port mapper) as a child
  process, waits for a line such as ``READY port=N`` with a deadline, and
  kills and reaps it; :class:`ProcessGroup` closes all of a test's
  children at once; :func:`child_env` is the environment it gets and
  :func:`fields` parses such a line. :func:`stdin_lines` is the child's
  side: the lines a test writes to it, read without blocking its hub.

Waiting and leaks:

* :func:`wait_until` polls a condition with a deadline, for the rare case
  where there is no event to wait on.
* :func:`free_port` finds a free loopback port (for subprocess daemons).
* :func:`live_greenlets` lists the greenlets still running (leak checks);
  :class:`FakeClock` is a clock a test moves by hand.
"""

from __future__ import annotations

from ._cluster import node_cluster, running_epmd
from ._handshake import (
    ACCEPTOR_IDENTITY,
    INITIATOR_IDENTITY,
    LINK_COOKIE,
    HandshakeTranscript,
    LinkPair,
    Received,
    fixed_random,
    handshake_engines,
    linked_pair,
    run_handshake,
)
from ._probe import Match, Probe
from ._process import ChildProcess, ProcessGroup, child_env, fields, stdin_lines
from ._wait import FakeClock, free_port, live_greenlets, wait_until

__all__ = [
    "ACCEPTOR_IDENTITY",
    "INITIATOR_IDENTITY",
    "LINK_COOKIE",
    "ChildProcess",
    "FakeClock",
    "HandshakeTranscript",
    "LinkPair",
    "Match",
    "Probe",
    "ProcessGroup",
    "Received",
    "child_env",
    "fields",
    "fixed_random",
    "free_port",
    "handshake_engines",
    "linked_pair",
    "live_greenlets",
    "node_cluster",
    "run_handshake",
    "running_epmd",
    "stdin_lines",
    "wait_until",
]
