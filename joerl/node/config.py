"""Node configuration: the node id digest, the cookie, the port mapper address.

Each follows Erlang's habits where it has one: the cookie comes from the
argument, else ``JOERL_COOKIE``, else ``~/.joerl.cookie`` (created with a random
value and mode 0400 when missing, as ``~/.erlang.cookie`` is).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

DEFAULT_EPMD_ADDRESS = "127.0.0.1:4369"
COOKIE_ENV = "JOERL_COOKIE"
EPMD_ENV = "JOERL_EPMD_ADDRESS"
COOKIE_FILE = "~/.joerl.cookie"


def node_id_of(name: str) -> int:
    """The node's 32-bit id: the first 4 bytes of SHA-256 of its name (never 0).

    Stable across processes and machines (unlike ``hash()``), so any node can
    compute the id of any name the port mapper lists.
    """
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return digest or 1


def resolve_epmd_address(address: str | None = None) -> str:
    """The argument, else ``$JOERL_EPMD_ADDRESS``, else ``127.0.0.1:4369``."""
    return address or os.environ.get(EPMD_ENV) or DEFAULT_EPMD_ADDRESS


def load_cookie(cookie: str | bytes | None = None, path: str | None = None) -> bytes:
    """The argument, else ``$JOERL_COOKIE``, else the cookie file (created if missing)."""
    if cookie is not None:
        value = cookie.encode() if isinstance(cookie, str) else bytes(cookie)
        if not value:
            raise ValueError("the cookie must not be empty")
        return value
    env = os.environ.get(COOKIE_ENV)
    if env:
        return env.encode()
    file = Path(os.path.expanduser(path or COOKIE_FILE))
    try:
        value = file.read_bytes().strip()
    except FileNotFoundError:
        value = secrets.token_urlsafe(24).encode()
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        except FileExistsError:  # another node created it first: use theirs
            value = file.read_bytes().strip()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
            return value
    if not value:
        raise ValueError(f"cookie file {file} is empty")
    return value
