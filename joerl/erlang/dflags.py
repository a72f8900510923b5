"""Erlang distribution flags (``DFLAG_*``, 64 bits) and which of them a peer must offer.

This module owns the flag values (``include/dist.hrl``, OTP 25/26), the
flags joerl offers (:data:`DEFAULT_FLAGS`), the flags joerl requires of a
peer (:data:`REQUIRED_FLAGS`: OTP 25's mandatory set plus ``UNLINK_ID`` and
``V4_NC``, which OTP 26 makes mandatory), :func:`missing_flags` and
:func:`flag_names`. Pure: no IO.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_FLAGS",
    "MANDATORY_25",
    "REQUIRED_FLAGS",
    "flag_names",
    "missing_flags",
]

PUBLISHED = 0x1
ATOM_CACHE = 0x2
EXTENDED_REFERENCES = 0x4
DIST_MONITOR = 0x8
FUN_TAGS = 0x10
DIST_MONITOR_NAME = 0x20
HIDDEN_ATOM_CACHE = 0x40
NEW_FUN_TAGS = 0x80
EXTENDED_PIDS_PORTS = 0x100
EXPORT_PTR_TAG = 0x200
BIT_BINARIES = 0x400
NEW_FLOATS = 0x800
UNICODE_IO = 0x1000
DIST_HDR_ATOM_CACHE = 0x2000
SMALL_ATOM_TAGS = 0x4000
UTF8_ATOMS = 0x10000
MAP_TAG = 0x20000
BIG_CREATION = 0x40000
SEND_SENDER = 0x80000
BIG_SEQTRACE_LABELS = 0x100000
EXIT_PAYLOAD = 0x400000
FRAGMENTS = 0x800000
HANDSHAKE_23 = 0x1000000
UNLINK_ID = 0x2000000
#: One bit standing for all of MANDATORY_25 (dist.hrl's value; the docs' 1<<36 is wrong).
MANDATORY_25_DIGEST = 0x4000000
SPAWN = 1 << 32
NAME_ME = 1 << 33
V4_NC = 1 << 34
ALIAS = 1 << 35

#: The flags OTP 25 requires of every peer (``0x1070F94``).
MANDATORY_25 = (
    EXTENDED_REFERENCES
    | FUN_TAGS
    | NEW_FUN_TAGS
    | EXTENDED_PIDS_PORTS
    | EXPORT_PTR_TAG
    | BIT_BINARIES
    | NEW_FLOATS
    | UTF8_ATOMS
    | MAP_TAG
    | BIG_CREATION
    | HANDSHAKE_23
)

#: What joerl requires of a peer: OTP 25's set, and OTP 26's UNLINK_ID and V4_NC.
REQUIRED_FLAGS = MANDATORY_25 | UNLINK_ID | V4_NC

#: What joerl offers: a hidden node (no PUBLISHED) speaking the ``p``
#: format (no atom cache, no fragments, no EXIT_PAYLOAD, no SEND_SENDER),
#: with remote monitors by pid and name, spawn requests and aliases.
#: ``0xD07074FBC``; add :data:`PUBLISHED` for a visible node.
DEFAULT_FLAGS = (
    REQUIRED_FLAGS | MANDATORY_25_DIGEST | DIST_MONITOR | DIST_MONITOR_NAME | SMALL_ATOM_TAGS | SPAWN | ALIAS
)

_NAMES = {value: name for name, value in globals().items() if name.isupper() and isinstance(value, int)}
_NAMES = {v: n for v, n in _NAMES.items() if v & (v - 1) == 0}  # single bits only


def effective(flags: int) -> int:
    """``flags`` with MANDATORY_25_DIGEST expanded into the flags it stands for."""
    return flags | MANDATORY_25 if flags & MANDATORY_25_DIGEST else flags


def missing_flags(peer_flags: int, required: int = REQUIRED_FLAGS) -> int:
    """The flags of ``required`` the peer does not offer (0: none missing).

    ``MANDATORY_25_DIGEST`` in ``peer_flags`` counts as all of OTP 25's mandatory flags.
    """
    return required & ~effective(peer_flags)


def flag_names(flags: int) -> list[str]:
    """The names of the flags set in ``flags`` (``["UTF8_ATOMS", ...]``; unknown bits as hex)."""
    out = []
    for bit in range(64):
        value = 1 << bit
        if flags & value:
            out.append(_NAMES.get(value, f"{value:#x}"))
    return out
