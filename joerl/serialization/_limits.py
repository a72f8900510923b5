"""Decoding limits, and the nesting-depth check msgpack does not offer.

msgpack's ``unpackb`` bounds string, bin, array, map and ext lengths but not
nesting depth (its C unpacker stops at 1024 levels; Python code handling the
result, ``repr`` included, fails far earlier). ``exceeds_depth`` measures the
depth of an encoded message without decoding it, and costs nothing for the
common case: a message of ``n`` bytes nests at most ``n`` levels, and at most
as many levels as it has bytes that can open an array or a map, which
``bytes.translate`` counts at C speed. Only a message that fails both tests is
walked, header by header, in Python.

``ExtWalk`` walks a message the same way, on demand and as far as allowed, to
find how deep each ext of one type sits: the codec counts a registered
message's payload as nested where the message sits, when a deserializer
decodes that payload again.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

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
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float 32/64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint 8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int 8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16 (type byte + data)
}
# Variable-size items: (bytes of the length field, extra bytes after it).
_SIZED = {
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin 8/16/32
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext 8/16/32 (+ type byte)
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str 8/16/32
}
# Containers with an explicit count: (bytes of the count field, items per count).
_COUNTED = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


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


def exceeds_depth(data: bytes, limit: int) -> bool:
    """True if the msgpack ``data`` nests arrays and maps deeper than ``limit``.

    Malformed input is not diagnosed here (the walk stops where it goes wrong,
    and the decoder reports the error); well-formed input is measured exactly.
    """
    if len(data) <= limit or len(data.translate(None, _NOT_OPENERS)) <= limit:
        return False
    return _walk(data, limit)


def count_openers(data: bytes) -> int:
    """How many bytes of ``data`` could open an array or a map: at least as
    many as it nests levels (counted at C speed)."""
    return len(data.translate(None, _NOT_OPENERS))


def _walk(data: bytes, limit: int) -> bool:
    end = len(data)
    pos = 0
    stack = [1]  # items left in each open container; the bottom one holds the top-level object
    while stack and pos < end:
        b = data[pos]
        pos += 1
        stack[-1] -= 1
        count = -1  # items of a container opened by this header; -1: not a container
        if b <= 0x7F or b >= 0xE0:
            pass  # fixint
        elif b <= 0x8F:
            count = (b & 0x0F) * 2
        elif b <= 0x9F:
            count = b & 0x0F
        elif b <= 0xBF:
            pos += b & 0x1F  # fixstr
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            pos += width + extra + int.from_bytes(data[pos : pos + width], "big")
        elif b in _COUNTED:
            width, per = _COUNTED[b]
            count = int.from_bytes(data[pos : pos + width], "big") * per
            pos += width
        else:
            return False  # 0xC1: never used; the decoder reports it
        if count >= 0:
            if len(stack) > limit:
                return True
            if count:
                stack.append(count)
        while stack and stack[-1] == 0:
            stack.pop()
    return False


# Ext headers: (bytes of the length field, or 0 for a fixext; data length of a fixext).
_EXTS = {
    0xD4: (0, 1), 0xD5: (0, 2), 0xD6: (0, 4), 0xD7: (0, 8), 0xD8: (0, 16),  # fixext 1..16
    0xC7: (1, 0), 0xC8: (2, 0), 0xC9: (4, 0),  # ext 8/16/32
}  # fmt: skip


class ExtWalk:
    """How many arrays and maps enclose each ext of type ``code`` in the
    msgpack ``data``, found on demand by walking it header by header, in the
    order of the bytes (the order in which msgpack's ``ext_hook`` sees them).

    The walk is resumable and bounded by the caller (``depth_of``), so that
    finding where one ext sits in a message of millions of items can cost a
    bounded amount of Python work; ``bound`` is a cheap upper bound of every
    answer (the bytes that could open an array or a map). Malformed input is
    not diagnosed: the walk stops where it goes wrong (the decoder reports it).
    """

    __slots__ = ("data", "code", "bound", "pos", "stack", "found", "headers")

    def __init__(self, data: bytes, code: int) -> None:
        self.data = data
        self.code = code
        self.bound = min(len(data), count_openers(data))
        self.pos = 0
        self.stack = [1]  # items left in each open container; the bottom one holds the top-level object
        self.found: list[int] = []
        self.headers = 0  # headers read so far

    def depth_of(self, index: int, max_headers: int) -> int | None:
        """How deep the ``index``-th ext of the type sits, or None if it was
        not found within ``max_headers`` headers read in all (or at all)."""
        found = self.found
        if index < len(found):
            return found[index]
        data, code, stack = self.data, self.code, self.stack
        end = len(data)
        pos = self.pos
        headers = self.headers
        while stack and pos < end and len(found) <= index and headers < max_headers:
            b = data[pos]
            pos += 1
            headers += 1
            stack[-1] -= 1
            count = -1
            if b <= 0x7F or b >= 0xE0:
                pass
            elif b <= 0x8F:
                count = (b & 0x0F) * 2
            elif b <= 0x9F:
                count = b & 0x0F
            elif b <= 0xBF:
                pos += b & 0x1F
            elif b in _EXTS:
                width, size = _EXTS[b]
                if width:
                    size = int.from_bytes(data[pos : pos + width], "big")
                    pos += width
                if pos < end and data[pos] == code:
                    found.append(len(stack) - 1)
                pos += 1 + size
            elif b in _FIXED:
                pos += _FIXED[b]
            elif b in _SIZED:
                width, extra = _SIZED[b]
                pos += width + extra + int.from_bytes(data[pos : pos + width], "big")
            elif b in _COUNTED:
                width, per = _COUNTED[b]
                count = int.from_bytes(data[pos : pos + width], "big") * per
                pos += width
            else:
                pos = end  # 0xC1: never used; the decoder reports it
                break
            if count > 0:
                stack.append(count)
            while stack and stack[-1] == 0:
                stack.pop()
        self.pos = pos
        self.headers = headers
        return found[index] if index < len(found) else None


def ext_depths(data: bytes, code: int) -> list[int]:
    """How many arrays and maps enclose each ext of type ``code`` in ``data``,
    in the order of the bytes (the whole of ``ExtWalk``'s answer)."""
    walk = ExtWalk(data, code)
    walk.depth_of(len(data), len(data) + 1)  # no ext index reaches len(data): walks it all
    return walk.found
