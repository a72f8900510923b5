"""Decoding limits, and the nesting-depth check msgpack does not offer.

msgpack's ``unpackb`` bounds string, bin, array, map and ext lengths but not
nesting depth (its C unpacker stops at 1024 levels; Python code handling the
result, ``repr`` included, fails far earlier). ``exceeds_depth`` measures the
depth of an encoded message without decoding it, and costs nothing for the
common case: a message of ``n`` bytes nests at most ``n`` levels, and at most
as many levels as it has bytes that can open an array or a map, which
``bytes.translate`` counts at C speed. A message that fails both tests is
measured by msgpack's own C stack limit: ``Unpacker.skip`` (which builds no
object and calls no hook) of the message behind ``1024 - limit`` array headers
of one item fails with ``StackError`` exactly when the message nests deeper
than ``limit``. Only where that cannot answer (a limit of 1024 or more, or a
msgpack whose stack is not the 1024 levels measured at import) is the message
walked, header by header, in Python.

``ExtWalk`` walks a message with the same header walk, on demand and as far
as allowed, to find how deep each ext of one type sits: the codec counts a
registered message's payload as nested where the message sits, when a
deserializer decodes that payload again.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields

from msgpack import StackError, Unpacker

_MiB = 1024 * 1024

#: Most registered messages nested in one another whose payloads are decoded
#: again (each level costs a few Python frames: this keeps far from Python's
#: recursion limit, whatever ``max_depth`` says).
MAX_NESTED_MESSAGES = 32

# Bytes that can open an array or a map: fixmap, fixarray, array16/32, map16/32.
_OPENERS = bytes(range(0x80, 0xA0)) + b"\xdc\xdd\xde\xdf"
_NOT_OPENERS = bytes(b for b in range(256) if b not in _OPENERS)

# Fixed-size items by header byte: bytes that follow the header.
_FIXED = {
    0xC0: 0,
    0xC2: 0,
    0xC3: 0,  # nil, false, true
    0xCA: 4,
    0xCB: 8,  # float 32/64
    0xCC: 1,
    0xCD: 2,
    0xCE: 4,
    0xCF: 8,  # uint 8..64
    0xD0: 1,
    0xD1: 2,
    0xD2: 4,
    0xD3: 8,  # int 8..64
    0xD4: 2,
    0xD5: 3,
    0xD6: 5,
    0xD7: 9,
    0xD8: 17,  # fixext 1..16 (type byte + data)
}
# Variable-size items: (bytes of the length field, extra bytes after it).
_SIZED = {
    0xC4: (1, 0),
    0xC5: (2, 0),
    0xC6: (4, 0),  # bin 8/16/32
    0xC7: (1, 1),
    0xC8: (2, 1),
    0xC9: (4, 1),  # ext 8/16/32 (+ type byte)
    0xD9: (1, 0),
    0xDA: (2, 0),
    0xDB: (4, 0),  # str 8/16/32
}
# Containers with an explicit count: (bytes of the count field, items per count).
_COUNTED = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}
# Ext headers: (bytes of the length field, or 0 for a fixext; data length of a fixext).
_EXTS = {
    0xD4: (0, 1), 0xD5: (0, 2), 0xD6: (0, 4), 0xD7: (0, 8), 0xD8: (0, 16),  # fixext 1..16
    0xC7: (1, 0), 0xC8: (2, 0), 0xC9: (4, 0),  # ext 8/16/32
}  # fmt: skip
# A walk looking for exts steps over every other scalar the same way.
_FIXED_NOT_EXT = {b: n for b, n in _FIXED.items() if b not in _EXTS}
_SIZED_NOT_EXT = {b: n for b, n in _SIZED.items() if b not in _EXTS}

# ``_Headers.run``: an array or a map nests deeper than the limit.
_DEEP = -1


@dataclass(frozen=True)
class Limits:
    """Bounds applied to every decoded message (and to ints on encode).

    Attributes:
        max_bytes: longest message accepted, in bytes (8 MiB). The payloads
            of registered messages decoded again inside one message (by a
            deserializer calling ``decode``, as a ``@serializable`` class sent
            as a registered message does) may add up to as much again, all
            levels of such nesting together.
        max_depth: deepest nesting of arrays and maps (128). A list or dict is
            one level, a tuple one, a ``@serializable`` record two (its
            ``[head, {fields}]`` array and its field map). A registered
            message whose payload a deserializer decodes again is one level
            more, and its payload's levels count from where the message sits
            (far into a message of many items, from a cheap upper bound of
            that); such messages nest at most ``MAX_NESTED_MESSAGES`` (32) deep.
        max_container_len: most items in one list or tuple, or pairs in one
            dict (1 Mi). Counts of small objects are bounded by ``max_bytes``:
            every decoded object takes at least one byte.
        max_str_len: longest str, in UTF-8 bytes (8 MiB).
        max_bin_len: longest bytes value, and longest ``serialize()`` payload
            (8 MiB).
        max_int_bytes: largest int beyond 64 bits, in bytes of two's complement
            (1024, i.e. 8191 bits). Larger ints are refused at send time.
    """

    max_bytes: int = 8 * _MiB
    max_depth: int = 128
    max_container_len: int = 1 << 20
    max_str_len: int = 8 * _MiB
    max_bin_len: int = 8 * _MiB
    max_int_bytes: int = 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 1:
                raise ValueError(f"Limits.{f.name} must be a positive int, got {value!r}")


def _stack_depth() -> int:
    """The deepest nesting msgpack's C unpacker accepts (1024), or 0 if that
    is not the sharp limit ``exceeds_depth`` relies on."""
    try:
        _skip(b"\x91" * 1024 + b"\xc0")
    except Exception:
        return 0
    try:
        _skip(b"\x91" * 1025 + b"\xc0")
    except StackError:
        return 1024
    except Exception:
        return 0
    return 0


def _skip(data: bytes, pad: bytes = b"") -> None:
    unpacker = Unpacker(max_buffer_size=len(pad) + len(data) + 1)
    unpacker.feed(pad)
    unpacker.feed(data)
    unpacker.skip()


_STACK_DEPTH = _stack_depth()

#: Above this many bytes ``exceeds_depth`` goes straight to msgpack's skip
#: instead of counting openers first: the count (``bytes.translate``, which
#: copies) costs ~0.3 ms a MiB, the skip ~0.03 ms for a MiB of bytes or
#: strings; a MiB of small containers is skipped in ~0.4 ms, and there the
#: count finds too many openers to spare the skip anyway.
_SKIP_ONLY = 64 * 1024


def exceeds_depth(data: bytes, limit: int) -> bool:
    """True if the msgpack ``data`` nests arrays and maps deeper than ``limit``.

    Malformed input is not diagnosed here (the check stops where it goes
    wrong, and the decoder reports the error); well-formed input is measured
    exactly.
    """
    size = len(data)
    if size <= limit:
        return False
    if (size <= _SKIP_ONLY or limit >= _STACK_DEPTH) and len(data.translate(None, _NOT_OPENERS)) <= limit:
        return False
    if limit >= _STACK_DEPTH:  # (also when the stack limit was not found)
        return _walk(data, limit)
    try:  # behind STACK - limit levels, msgpack's stack overflows exactly when data nests deeper than limit
        _skip(data, b"\x91" * (_STACK_DEPTH - limit))
    except StackError:
        return True
    except Exception:  # malformed or truncated before too deep a level: the decoder reports it
        return False
    return False


def count_openers(data: bytes) -> int:
    """How many bytes of ``data`` could open an array or a map: at least as
    many as it nests levels (counted at C speed)."""
    return len(data.translate(None, _NOT_OPENERS))


def _walk(data: bytes, limit: int) -> bool:
    """``exceeds_depth`` without its shortcut: the walk, header by header."""
    return _Headers(data).run(len(data), limit, None) == _DEEP  # every header takes a byte: never out of headers


class _Headers:
    """A walk over msgpack ``data``, header by header in the order of the
    bytes, keeping how many items are left in each open array and map: the
    one walk behind both ``exceeds_depth`` and ``ExtWalk``. It is resumable
    (``run`` goes on from where it stopped) and bounded by the caller.

    Malformed input is not diagnosed: a length or count cut short reads as the
    bytes that are there, and the walk ends past the end of the data or at the
    byte msgpack never uses (0xC1); the decoder reports either.
    """

    __slots__ = ("data", "pos", "stack", "headers")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.stack = [1]  # items left in each open container; the bottom one holds the top-level object
        self.headers = 0  # headers read so far

    def run(self, max_headers: int, limit: int, code: int | None) -> int | None:
        """Read headers until one of these, and say which.

        Args:
            max_headers: most headers read in all, since the walk began.
            limit: deepest nesting of arrays and maps allowed.
            code: the ext type looked for, or None to step over exts like
                any other scalar.

        Returns:
            How many arrays and maps enclose the next ext of type ``code``;
            ``_DEEP`` if an array or a map nests deeper than ``limit`` (the
            walk then ends); None at the end of the top-level object, of the
            data or of ``max_headers``, or at malformed bytes.
        """
        data, stack = self.data, self.stack
        end = len(data)
        pos = self.pos
        fixed, sized = (_FIXED, _SIZED) if code is None else (_FIXED_NOT_EXT, _SIZED_NOT_EXT)
        read = start = self.headers
        # Every kind of header inline, in one loop: a call per header costs 20-40% more.
        for read in range(start + 1, max_headers + 1):  # headers read, this one included
            if not stack or pos >= end:
                read -= 1
                break
            b = data[pos]
            pos += 1
            stack[-1] -= 1
            if b <= 0x7F or b >= 0xE0:
                pass  # fixint
            elif b <= 0x9F or b >= 0xDC:  # a map or an array
                if b <= 0x8F:
                    count = (b & 0x0F) * 2
                elif b <= 0x9F:
                    count = b & 0x0F
                else:
                    width, per = _COUNTED[b]
                    count = int.from_bytes(data[pos : pos + width], "big") * per
                    pos += width
                if len(stack) > limit:
                    self.pos, self.headers = end, read
                    return _DEEP
                if count:
                    stack.append(count)
                    continue
            elif b <= 0xBF:
                pos += b & 0x1F  # fixstr
            elif b in fixed:
                pos += fixed[b]
            elif b in sized:
                width, extra = sized[b]
                pos += width + extra + int.from_bytes(data[pos : pos + width], "big")
            elif b in _EXTS:  # only when looking for exts
                width, size = _EXTS[b]
                if width:
                    size = int.from_bytes(data[pos : pos + width], "big")
                    pos += width
                if pos < end and data[pos] == code:
                    depth = len(stack) - 1
                    pos += 1 + size
                    while stack and stack[-1] == 0:
                        stack.pop()
                    self.pos, self.headers = pos, read
                    return depth
                pos += 1 + size
            else:
                pos = end  # 0xC1: never used
                break
            while stack and stack[-1] == 0:
                stack.pop()
        self.pos, self.headers = pos, read
        return None


class ExtWalk(_Headers):
    """How many arrays and maps enclose each ext of type ``code`` in the
    msgpack ``data``, found on demand by walking it header by header, in the
    order of the bytes (the order in which msgpack's ``ext_hook`` sees them).

    The walk is resumable and bounded by the caller (``depth_of``), so that
    finding where one ext sits in a message of millions of items can cost a
    bounded amount of Python work; ``bound`` is a cheap upper bound of every
    answer (the bytes that could open an array or a map); ``headers`` counts
    the headers read so far. Malformed input is not diagnosed: the walk stops
    where it goes wrong (the decoder reports it).
    """

    __slots__ = ("code", "bound", "found")

    def __init__(self, data: bytes, code: int) -> None:
        super().__init__(data)
        self.code = code
        self.bound = min(len(data), count_openers(data))
        self.found: list[int] = []

    def depth_of(self, index: int, max_headers: int) -> int | None:
        """How deep the ``index``-th ext of the type sits, or None if it was
        not found within ``max_headers`` headers read in all (or at all)."""
        found = self.found
        while len(found) <= index:
            depth = self.run(max_headers, sys.maxsize, self.code)
            if depth is None:
                return None
            found.append(depth)
        return found[index]


def ext_depths(data: bytes, code: int) -> list[int]:
    """How many arrays and maps enclose each ext of type ``code`` in ``data``,
    in the order of the bytes (the whole of ``ExtWalk``'s answer)."""
    walk = ExtWalk(data, code)
    walk.depth_of(len(data), len(data) + 1)  # no ext index reaches len(data): walks it all
    return walk.found
