"""Network addresses: ``"host:port"`` text <-> ``(host, port)`` (the one parser)."""

from __future__ import annotations

#: The port mapper's well-known port (Erlang's EPMD).
EPMD_PORT = 4369


def parse_address(
    address: str | tuple[str, int], default_host: str = "127.0.0.1", default_port: int = EPMD_PORT
) -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"``, ``"host"``, ``":port"``, ``"port"`` or ``(host, port)`` -> ``(host, port)``.

    A bare IPv6 address (``"::1"``) is a host; with a port it needs brackets.

    A missing host is ``default_host``; a missing port is ``default_port``.

    Raises:
        ValueError: not an address (with the reason).
    """
    if isinstance(address, tuple):
        if len(address) != 2:
            raise ValueError(f"bad address {address!r}: expected (host, port)")
        host, port = address
    elif isinstance(address, str):
        text = address.strip()
        if not text:
            raise ValueError("bad address '': expected 'host:port'")
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                raise ValueError(f"bad address {address!r}: missing ']'")
            host, rest = text[1:end], text[end + 1 :]
            if rest and not rest.startswith(":"):
                raise ValueError(f"bad address {address!r}: expected '[v6addr]:port'")
            port_text = rest[1:]
        elif text.count(":") == 1:
            host, port_text = text.split(":")
        elif text.isdigit():
            host, port_text = "", text
        else:
            host, port_text = text, ""
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"bad port in address {address!r}: {port_text!r} is not a number") from None
    else:
        raise ValueError(f"expected an address 'host:port', got {address!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ValueError(f"bad port in address {address!r}: must be 0..65535")
    if not isinstance(host, str):
        raise ValueError(f"bad host in address {address!r}")
    return (host or default_host), port


def format_address(host: str, port: int) -> str:
    """``(host, port)`` -> ``"host:port"`` (IPv6 hosts in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
