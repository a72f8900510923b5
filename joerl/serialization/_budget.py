"""What a decode may use: the size and depth checks of a whole message, and
the ``Budget`` of a registered message's payload decoded again inside another
message (by its deserializer), so that nesting cannot multiply the limits.
"""

from __future__ import annotations

from ..errors import DecodeError
from ._limits import MAX_NESTED_MESSAGES, ExtWalk, Limits, exceeds_depth

#: What a registered message's payload decoded again inside another message
#: may use: the depth left to it, how many more registered messages may nest
#: in it, and the bytes left to every payload decoded again inside the
#: outermost message (one shared, mutable cell). See Limits.
Budget = tuple[int, int, list[int]]

# Headers of a message walked to find where a registered message sits whose
# payload is decoded again, when checking its depth did not walk it already:
# this many, plus _WALK_PER_PAYLOAD per payload decoded again so far (beyond
# that, ExtWalk.bound bounds the depth, and is then at most max_depth).
_WALK_BASE = 65536
_WALK_PER_PAYLOAD = 256


def first_budget(lim: Limits) -> Budget:
    """The budget of the first payload decoded again inside an outermost decode."""
    return (lim.max_depth, MAX_NESTED_MESSAGES, [lim.max_bytes])


def check_size(data: bytes, lim: Limits) -> None:
    """Raise ``DecodeError`` if a whole message is over ``max_bytes`` or ``max_depth``."""
    if len(data) > lim.max_bytes:
        raise DecodeError(f"a message of {len(data)} bytes is over max_bytes={lim.max_bytes}")
    if exceeds_depth(data, lim.max_depth):
        raise DecodeError(f"the message nests deeper than max_depth={lim.max_depth}")


def check_payload(data: bytes, budget: Budget, lim: Limits) -> None:
    """Check a registered message's payload decoded inside another message
    against what the enclosing decodes left it, and take its bytes from it.

    Raises:
        DecodeError: it is over a limit.
    """
    depth, levels, left = budget
    if levels < 0:
        raise DecodeError(
            f"registered messages whose payloads are decoded again nest more than {MAX_NESTED_MESSAGES} deep"
        )
    if depth < 0:
        raise DecodeError(
            f"registered messages nest deeper than max_depth={lim.max_depth} (each one whose payload "
            "is decoded again counts one level)"
        )
    size = len(data)
    if size > lim.max_bytes:
        raise DecodeError(f"a message of {size} bytes is over max_bytes={lim.max_bytes}")
    if size > left[0]:
        raise DecodeError(
            f"the payloads of registered messages decoded inside one message add up to more than "
            f"max_bytes={lim.max_bytes}"
        )
    left[0] -= size
    if exceeds_depth(data, min(depth, lim.max_depth)):
        raise DecodeError(
            f"the message nests deeper than max_depth={lim.max_depth}, counting the messages it is nested in"
        )


def payload_budget(budget: Budget, walk: ExtWalk, size: int, index: int, payloads: int) -> Budget:
    """What the payload of the ``index``-th registered message (ext 4) of a
    message of ``size`` bytes may use when decoded again, the ``payloads``-th
    payload so decoded: the depth below where the message sits, less one for
    the message, one nesting level less, and the bytes left to all such payloads."""
    depth, levels, left = budget
    if walk.bound > depth:  # checking the message's depth walked all of it: so may this
        where = walk.depth_of(index, size + 1)
    else:  # maybe millions of scalars: walk a bounded part, else the bound will do
        where = walk.depth_of(index, _WALK_BASE + _WALK_PER_PAYLOAD * payloads)
    if where is None:  # not reached (or malformed, which msgpack refuses anyway)
        where = min(walk.bound, depth)
    return (depth - where - 1, levels - 1, left)
