"""Node names: ``name@host``, parsed, checked and completed (sans-IO, pure).

A node's name is ``alive@host``, as Erlang's is. The *alive* part names the
node on its host (what the host's port mapper holds); the *host* part names
the machine, in one of Erlang's two modes:

* **short names** (the default; Erlang's ``-sname``): ``a@myhost``; a name
  given without a host gets this machine's short host name
  (``socket.gethostname()`` up to its first dot);
* **long names** (``long_names=True``; Erlang's ``-name``):
  ``a@myhost.example.com`` or ``a@10.0.0.5``; a name without a host gets this
  machine's fully qualified name (``socket.getfqdn()``).

Unlike Erlang, the mode only picks the default host: a name whose host is
given is taken as written in either mode (Erlang refuses ``-sname a@h.example``
and a short-names node talking to a long-names one).

Rules (:func:`parse_node_name`): one ``@`` at most; the alive part is
1..255 bytes of ``[A-Za-z0-9_-]`` (Erlang's net_kernel allows the same); the
host part is a host name (dot-separated labels of ``[A-Za-z0-9_-]``, each
1..63 characters, the whole at most 253) or an IP address literal (IPv6
written bare, ``a@::1``); the whole name at most 255 bytes. Case is kept
(Erlang's node names are atoms: ``a@H`` and ``a@h`` are two nodes).

:func:`node_name` is the one function every API that accepts a node name
uses: ``DistributedSystem(name)``, ``connect_to_node``, ``(name, node)``
addresses, ``allowed_nodes``, ``monitor_node``, rpc, remote spawn.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from typing import NamedTuple

from ..errors import InvalidNodeName

__all__ = [
    "MAX_NODE_NAME_BYTES",
    "NodeName",
    "default_host",
    "derived_port",
    "full_name_problem",
    "is_ip_literal",
    "node_name",
    "parse_node_name",
]

#: The longest node name, ``alive@host``, in bytes of UTF-8 (Erlang's atoms hold 255 characters).
MAX_NODE_NAME_BYTES = 255

_ALIVE = re.compile(r"[A-Za-z0-9_-]+")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")

#: The ports :func:`derived_port` hands out: ``DERIVED_PORT_BASE`` + 0..``DERIVED_PORT_SPAN``-1.
DERIVED_PORT_BASE = 20000
DERIVED_PORT_SPAN = 10000


class NodeName(NamedTuple):
    """A parsed node name: ``alive@host``."""

    alive: str
    host: str

    def __str__(self) -> str:
        return f"{self.alive}@{self.host}"


def default_host(long_names: bool = False) -> str:
    """This machine's host part for node names: the short host name, or the FQDN with ``long_names``."""
    if long_names:
        return socket.getfqdn()
    return socket.gethostname().split(".", 1)[0]


def is_ip_literal(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_problem(host: str) -> str:
    if not host:
        return "has an empty host part after '@'"
    if is_ip_literal(host):
        return ""
    if len(host) > 253:
        return f"has a host part of {len(host)} characters, over the limit of 253"
    for label in host.split("."):
        if not _LABEL.fullmatch(label):
            return (
                f"has a host part {host!r} that is neither an IP address nor a host name "
                "(dot-separated labels of 1..63 letters, digits, '-' or '_')"
            )
    return ""


def _problem(name: object) -> str:
    if not isinstance(name, str):
        return f"must be a str, not {type(name).__name__}"
    if not name:
        return "is empty"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not encodable as UTF-8"
    if size > MAX_NODE_NAME_BYTES:
        return f"is {size} bytes of UTF-8, over the limit of {MAX_NODE_NAME_BYTES}"
    if name.count("@") > 1:
        return "has more than one '@' (a node name is name@host)"
    alive, _, host = name.partition("@")
    if not alive:
        return "has an empty name part before '@'"
    if not _ALIVE.fullmatch(alive):
        bad = next(c for c in alive if not _ALIVE.fullmatch(c))
        return f"has the character {bad!r} in its name part (letters, digits, '-' and '_' only)"
    if "@" in name:
        return _host_problem(host)
    return ""


def full_name_problem(name: object) -> str:
    """Why ``name`` is not a full node name ``alive@host`` (what a HELLO must claim), or ``""``."""
    if isinstance(name, str) and "@" not in name:
        return "has no '@host' part"
    return _problem(name)


def parse_node_name(name: object, *, long_names: bool = False, host: str | None = None) -> NodeName:
    """Parse and check a node name; a name without ``@host`` gets the default host.

    Args:
        name: ``alive@host`` or ``alive``.
        long_names: the mode that picks the default host (see the module docstring).
        host: the default host itself (default: :func:`default_host`).

    Returns:
        The name's parts.

    Raises:
        InvalidNodeName: the name breaks a rule (empty part, bad character,
            more than one ``@``, over 255 bytes), or the default host is not
            a valid host part (fix the machine's host name, or give the host).
    """
    problem = _problem(name)
    if problem:
        raise InvalidNodeName(name, problem)
    assert isinstance(name, str)
    alive, at, given = name.partition("@")
    if at:
        return NodeName(alive, given)
    full = f"{alive}@{host if host is not None else default_host(long_names)}"
    problem = _problem(full)
    if problem:
        raise InvalidNodeName(name, f"with this machine's host name: {full!r} {problem}")
    return NodeName(alive, full.partition("@")[2])


def node_name(name: object, *, long_names: bool = False, host: str | None = None) -> str:
    """The full ``alive@host`` form of a node name (see :func:`parse_node_name`).

    Raises:
        InvalidNodeName: the name breaks a rule.
    """
    if isinstance(name, str) and "@" in name and _problem(name) == "":
        return name  # (the common case: already whole)
    return str(parse_node_name(name, long_names=long_names, host=host))


def derived_port(alive: str, base: int = DERIVED_PORT_BASE, span: int = DERIVED_PORT_SPAN) -> int:
    """The listen port of node ``alive`` in the portless mode without a fixed port.

    The first 4 bytes of SHA-256 of the alive name, modulo ``span``, plus
    ``base`` (20000..29999 by default): every node computes the same port for
    a name on every machine. Two names may land on one port (odds 1 in
    ``span`` per pair): give those nodes a fixed port instead.
    """
    digest = int.from_bytes(hashlib.sha256(alive.encode("utf-8")).digest()[:4], "big")
    return base + digest % span
