"""Short, bounded renderings of untrusted values for error messages (pure).

Shared by the wire protocols: ``repr`` of a peer's value can be huge (a
64 MiB string) or fail outright (``RecursionError`` for a value nested ~1000
deep), so their errors describe values with :func:`describe` instead.
"""

from __future__ import annotations

from typing import Any

_SCALARS = (bool, int, float, str, bytes)


def describe(value: object, limit: int = 40) -> str:
    """A short rendering of a value (often the peer's) for an error message.

    Never recursive and bounded in size, whatever the peer sent (``repr`` of a
    value nested ~1000 deep raises ``RecursionError``; that of a long string
    is as long): the type name, plus the value itself, truncated, for scalars.
    """
    if value is None or value.__class__ is bool or value.__class__ is float:
        return repr(value)
    if isinstance(value, int):
        bits = int(value).bit_length()
        return repr(int(value)) if bits <= 128 else f"an int of {bits} bits"
    if isinstance(value, (str, bytes, bytearray)):
        head = repr(value[:limit])
        return f"{head}... ({len(value)} long)" if len(value) > limit else head
    if value.__class__ is tuple or value.__class__ is list:
        items: Any = value
        if len(items) <= 4 and all(x is None or x.__class__ in _SCALARS for x in items):
            inner = ", ".join(describe(x, 16) for x in items)  # scalars: no deeper than this
            return f"[{inner}]" if items.__class__ is list else f"({inner}{',' if len(items) == 1 else ''})"
    if isinstance(value, (list, tuple, dict)):
        n = len(value)
        return f"a {type(value).__name__} of {n} item{'' if n == 1 else 's'}"
    return f"a value of type {type(value).__name__}"
