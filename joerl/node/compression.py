"""Frame compression on a link: the codecs, their negotiation, compressed frames (sans-IO).

Wire layout: a compressed frame is a link frame (``frames.py``) whose body is::

    0xC1 | Codec:8 | RawLen:32 | Data      Data = Codec's compression of the original body

``0xC1`` is the one byte msgpack never uses, so no ordinary body (a msgpack
array) starts with it. ``RawLen`` is the original body's length: at most the
receiver's ``max_frame`` (the one size limit holds for the uncompressed
bytes), checked before anything is decompressed, and the output is bounded by
it. Codec ids: 1 zlib (the standard library's, always there), 2 zstd (the
``zstandard`` package, the ``zstd`` extra).

Negotiation: each HELLO may carry ``compress``, the codec names its sender
accepts, most preferred first (absent or empty: none; names it does not know
are ignored: a newer peer may offer more). A node sends compressed frames only
with the first codec of *its own* offer that the peer's offer holds
(:func:`choose`), so compression is off unless both sides enable it, and each
side decompresses only what it offered.

A frame is compressed when its body has at least ``compress_min`` bytes and
compressing saves bytes; below that no attempt is made. Opens no socket,
imports no gevent.
"""

from __future__ import annotations

import importlib
import struct
import zlib
from collections.abc import Callable, Iterable
from typing import Any

from .._describe import describe as _describe

__all__ = [
    "COMPRESSED",
    "CODEC_IDS",
    "CompressionError",
    "Compressor",
    "Decompressor",
    "available",
    "check_offer",
    "choose",
    "for_link",
    "parse_offer",
]

#: The first byte of a compressed frame's body (msgpack's "never used" byte).
COMPRESSED = 0xC1
#: Codec name -> its id on the wire.
CODEC_IDS = {"zlib": 1, "zstd": 2}
#: Most codec names a HELLO's offer may hold.
MAX_OFFER = 8

_HEAD = struct.Struct(">BBI")  # COMPRESSED, codec id, RawLen
_ZLIB_LEVEL = 1  # fast: a link trades CPU for bytes on the wire, not archive size
_ZSTD_LEVEL = 3  # zstd's default

_zstd: Any
try:  # the ``zstd`` extra (imported by name: typed as Any, installed or not)
    _zstd = importlib.import_module("zstandard")
except ImportError:  # pragma: no cover - depends on the installation
    _zstd = None


def for_link(config: Any, peer_offer: Iterable[str]) -> tuple[Compressor | None, Callable[[bytes], bytes] | None]:
    """A link's compressor (None unless both sides offer a codec) and its
    inflater (None unless this node offered any), from its ``LinkConfig``."""
    codec = choose(config.compression, peer_offer)
    compressor = Compressor(codec, config.compress_min) if codec is not None else None
    inflate = Decompressor(config.compression, config.max_frame_size).body if config.compression else None
    return compressor, inflate


class CompressionError(ValueError):
    """A compressed frame that cannot be decompressed (unknown codec, bad
    length, corrupt data): the frame is bad, the link's framing intact."""


def available() -> tuple[str, ...]:
    """The codecs this interpreter has, fastest first: ``("zstd", "zlib")`` or ``("zlib",)``."""
    return ("zstd", "zlib") if _zstd is not None else ("zlib",)


def check_offer(names: Any) -> tuple[str, ...]:
    """``names`` as a node's offer (``LinkConfig.compression``).

    Raises:
        ValueError: not a tuple of known, installed codec names without repeats.
    """
    if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"compression must be a tuple of codec names, got {_describe(names)}")
    if len(set(names)) != len(names) or len(names) > MAX_OFFER:
        raise ValueError(f"compression must name each codec once, at most {MAX_OFFER}: {names!r}")
    for name in names:
        if name not in CODEC_IDS:
            raise ValueError(f"unknown compression codec {name!r} (known: {', '.join(CODEC_IDS)})")
        if name not in available():
            raise ValueError(f"compression codec {name!r} is not installed (pip install 'joerl[{name}]')")
    return names


def parse_offer(value: Any) -> tuple[str, ...]:
    """A HELLO's ``compress`` field: the names this node knows, in the peer's order.

    Raises:
        ValueError: not a list of at most ``MAX_OFFER`` strs.
    """
    if value is None:
        return ()
    if not isinstance(value, (list, tuple)) or len(value) > MAX_OFFER or not all(isinstance(v, str) for v in value):
        raise ValueError(f"compress must be a list of at most {MAX_OFFER} codec names, got {_describe(value)}")
    return tuple(v for v in value if v in CODEC_IDS)


def choose(ours: Iterable[str], theirs: Iterable[str]) -> str | None:
    """The codec a node sends with: the first of its own offer that the peer offers too."""
    accepted = set(theirs)
    return next((name for name in ours if name in accepted), None)


def _zlib_pack(data: bytes) -> bytes:
    return zlib.compress(data, _ZLIB_LEVEL)


def _zlib_unpack(data: bytes, raw_len: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, raw_len)  # never more than raw_len bytes
    if len(out) != raw_len or not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise CompressionError(f"zlib data does not inflate to exactly {raw_len} bytes")
    return out


def _zstd_packer() -> Callable[[bytes], bytes]:
    pack: Callable[[bytes], bytes] = _zstd.ZstdCompressor(level=_ZSTD_LEVEL).compress
    return pack


def _zstd_unpack(data: bytes, raw_len: int) -> bytes:
    if _zstd.frame_content_size(data) != raw_len:
        raise CompressionError(f"zstd frame does not say {raw_len} bytes")
    out: bytes = _zstd.ZstdDecompressor().decompress(data, max_output_size=raw_len)
    if len(out) != raw_len:
        raise CompressionError(f"zstd data does not inflate to exactly {raw_len} bytes")
    return out


_PACKERS: dict[str, Callable[[], Callable[[bytes], bytes]]] = {"zlib": lambda: _zlib_pack, "zstd": _zstd_packer}
_UNPACK: dict[str, Callable[[bytes, int], bytes]] = {"zlib": _zlib_unpack, "zstd": _zstd_unpack}


class Compressor:
    """Compresses the frames of one link with one codec.

    Args:
        codec: a name of :data:`CODEC_IDS` (installed).
        min_size: bodies shorter than this are not compressed.

    Attributes:
        saved: bytes the compressed frames saved so far.
        frames: frames sent compressed so far.
    """

    def __init__(self, codec: str, min_size: int) -> None:
        check_offer((codec,))
        self.codec = codec
        self.min_size = min_size
        self.saved = 0
        self.frames = 0
        self._pack = _PACKERS[codec]()  # (one zstd context per link, reused)
        self._id = CODEC_IDS[codec]

    def __repr__(self) -> str:
        return f"<Compressor {self.codec} from {self.min_size} bytes>"

    def body(self, body: bytes) -> bytes | None:
        """The compressed body for ``body``, or None when it is short or does not shrink."""
        size = len(body)
        if size < self.min_size:
            return None
        data = self._pack(body)
        if len(data) + _HEAD.size >= size:
            return None
        self.saved += size - len(data) - _HEAD.size
        self.frames += 1
        return _HEAD.pack(COMPRESSED, self._id, size) + data


class Decompressor:
    """Decompresses the compressed frames a link receives.

    Args:
        accepted: the codecs this node offered (others are refused).
        max_size: the largest original body accepted (the node's ``max_frame``).
    """

    def __init__(self, accepted: Iterable[str], max_size: int) -> None:
        self._by_id = {CODEC_IDS[name]: name for name in check_offer(tuple(accepted))}
        self.max_size = max_size

    def __repr__(self) -> str:
        return f"<Decompressor {sorted(self._by_id.values())} up to {self.max_size} bytes>"

    def body(self, body: bytes) -> bytes:
        """The original body of the compressed body ``body`` (which starts with ``COMPRESSED``).

        Raises:
            CompressionError: a codec not offered, a length over ``max_size``,
                or data that does not inflate to exactly that length.
        """
        if len(body) < _HEAD.size:
            raise CompressionError(f"a compressed frame of {len(body)} bytes has no room for its header")
        _, codec_id, raw_len = _HEAD.unpack_from(body)
        name = self._by_id.get(codec_id)
        if name is None:
            raise CompressionError(f"codec {codec_id} was not offered by this node")
        if raw_len > self.max_size or raw_len == 0:
            raise CompressionError(f"a compressed frame of {raw_len} bytes (allowed 1..{self.max_size})")
        try:
            return _UNPACK[name](body[_HEAD.size :], raw_len)
        except CompressionError:
            raise
        except Exception as exc:  # zlib.error, zstd.ZstdError: corrupt data
            raise CompressionError(f"corrupt {name} data: {exc}") from None
