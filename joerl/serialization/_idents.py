"""The Pid and Ref hooks of one codec, and their caches.

A node maps its local pids (node 0) to pids other nodes can route back on the
way out, and back on the way in. Hook results are cached per Pid/Ref object
(out) and per 16-byte form (in), so hooks must be pure. A codec without a Pid
hook has no call to save: it caches one Pid in ``SAMPLE`` (16) it encodes or
decodes, so that a Pid sent again and again is soon found in the cache, and
a stream of new Pids costs little more than packing and making them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from msgpack import ExtType

from ..errors import DecodeError, SerializationError
from ..pid import Pid, Ref
from ._explain import Refused
from ._wire import EXT_PID, EXT_REF, IDENT, make_ext

PidHook = Callable[[Pid], Pid]
RefHook = Callable[[Ref], Ref]

#: Entries a cache holds before it is emptied.
CACHE_MAX = 4096

#: A codec without a Pid hook caches one Pid in this many it makes (with a
#: hook, every one: the cache saves a call to it).
SAMPLE = 16

_new_tuple = tuple.__new__
_pack = IDENT.pack
_unpack = IDENT.unpack
_make_pid = Pid._unchecked


class Idents:
    """Encodes and decodes Pids and Refs through a codec's hooks.

    ``pid_in`` and ``ref_in`` (16-byte form -> value) are read directly by
    the decoder's hot path; they are emptied in place, never replaced.
    """

    __slots__ = (
        "encode_pid", "decode_pid", "encode_ref", "decode_ref", "pid_out", "ref_out", "pid_in", "ref_in", "made_out",
        "made_in",
    )  # fmt: skip

    def __init__(
        self,
        encode_pid: PidHook | None,
        decode_pid: PidHook | None,
        encode_ref: RefHook | None,
        decode_ref: RefHook | None,
    ) -> None:
        self.encode_pid = encode_pid
        self.decode_pid = decode_pid
        self.encode_ref = encode_ref
        self.decode_ref = decode_ref
        self.pid_out: dict[int, tuple[Pid, ExtType]] = {}
        self.ref_out: dict[int, tuple[Ref, ExtType]] = {}
        self.pid_in: dict[bytes, Pid] = {}
        self.ref_in: dict[bytes, Ref] = {}
        self.made_out = self.made_in = 0  # Pids made without a hook (one in SAMPLE is cached)

    def clear(self) -> None:
        """Forget every cached hook result."""
        for cache in (self.pid_out, self.ref_out, self.pid_in, self.ref_in):
            cache.clear()

    def enc_pid(self, pid: Pid) -> ExtType:
        """Ext 1 for ``pid`` as ``encode_pid`` maps it.

        Raises:
            Refused: the hook refused it, failed, or returned a non-Pid.
        """
        hit = self.pid_out.get(id(pid))
        if hit is not None and hit[0] is pid:
            return hit[1]
        return self.new_pid_ext(pid)

    def new_pid_ext(self, pid: Pid) -> ExtType:
        """``enc_pid`` for a Pid not in ``pid_out`` (the encoder looked already)."""
        hook = self.encode_pid
        if hook is None:  # no call to save: one miss in SAMPLE is cached (see the module docstring)
            ext: ExtType = _new_tuple(ExtType, (EXT_PID, _pack(pid.node, pid.id, pid.creation)))
            self.made_out += 1
            if not self.made_out % SAMPLE:
                put(self.pid_out, id(pid), (pid, ext))
            return ext
        return _enc_ident(pid, self.pid_out, hook, EXT_PID)

    def enc_ref(self, ref: Ref) -> ExtType:
        """Ext 2 for ``ref`` as ``encode_ref`` maps it (see ``enc_pid``)."""
        hit = self.ref_out.get(id(ref))
        if hit is not None and hit[0] is ref:
            return hit[1]
        return _enc_ident(ref, self.ref_out, self.encode_ref, EXT_REF)

    def dec_pid(self, data: bytes) -> Pid:
        """The Pid in an ext 1 payload, as ``decode_pid`` maps it.

        Raises:
            DecodeError: not 16 bytes, or the hook failed or returned a non-Pid.
        """
        pid = self.pid_in.get(data)
        return pid if pid is not None else self.new_pid(data)

    def dec_ref(self, data: bytes) -> Ref:
        """The Ref in an ext 2 payload, as ``decode_ref`` maps it (see ``dec_pid``)."""
        ref = self.ref_in.get(data)
        return ref if ref is not None else self.new_ref(data)

    def new_pid(self, data: bytes) -> Pid:
        """``dec_pid`` for a form not in ``pid_in`` (the decoder looked already)."""
        if len(data) != 16:
            raise DecodeError(f"a Pid takes 16 bytes, not {len(data)}")
        pid: Pid = _make_pid(*_unpack(data))
        if self.decode_pid is not None:
            pid = _run_hook(self.decode_pid, pid)
            put(self.pid_in, data, pid)
            return pid
        self.made_in += 1
        if not self.made_in % SAMPLE:
            put(self.pid_in, data, pid)
        return pid

    def new_ref(self, data: bytes) -> Ref:
        """``dec_ref`` for a form not in ``ref_in``."""
        return _dec_ident(data, Ref, self.decode_ref, self.ref_in)  # type: ignore[no-any-return]


def put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value


def _enc_ident(ident: Any, cache: dict[int, Any], hook: Any, code: int) -> ExtType:
    mapped = ident
    if hook is not None:
        try:
            mapped = hook(ident)
        except SerializationError as exc:
            raise Refused(ident, error=exc) from None
        except Exception as exc:
            err = SerializationError(f"the {type(ident).__name__} hook failed on {ident}: {exc!r}")
            raise Refused(ident, error=err) from exc
        if mapped.__class__ is not ident.__class__:
            err = SerializationError(f"the {type(ident).__name__} hook returned {mapped!r} for {ident}")
            raise Refused(ident, error=err)
    ext = make_ext(code, IDENT.pack(mapped.node, mapped.id, mapped.creation))
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[id(ident)] = (ident, ext)
    return ext


def _dec_ident(data: bytes, kind: Any, hook: Callable[[Any], Any] | None, cache: dict[bytes, Any]) -> Any:
    if len(data) != 16:
        raise DecodeError(f"a {kind.__name__} takes 16 bytes, not {len(data)}")
    value = kind._unchecked(*IDENT.unpack(data))
    if hook is not None:
        value = _run_hook(hook, value)
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[data] = value
    return value


def _run_hook(hook: Callable[[Any], Any], value: Any) -> Any:
    try:
        mapped = hook(value)
    except SerializationError:
        raise
    except Exception as exc:
        raise DecodeError(f"the {type(value).__name__} hook failed on {value}: {exc!r}") from exc
    if mapped.__class__ is not value.__class__:
        raise DecodeError(f"the {type(value).__name__} hook returned {mapped!r} for {value}")
    return mapped


def make_default(
    handlers: dict[type, Callable[[Any], Any]], idents: Idents, classify: Callable[[Any], Callable[[Any], Any]]
) -> Callable[[Any], Any]:
    """A codec's Packer ``default``: what msgpack does not know, by class
    (``handlers``, else ``classify`` finds the handler), a Pid from the cache
    without a further call."""
    pid_out = idents.pid_out  # (emptied in place, never replaced)
    new_pid_ext = idents.new_pid_ext

    def default(obj: Any) -> Any:
        cls = obj.__class__
        if cls is Pid:
            hit = pid_out.get(id(obj))
            if hit is not None and hit[0] is obj:
                return hit[1]
            return new_pid_ext(obj)
        handler = handlers.get(cls)
        if handler is None:
            handler = classify(obj)
        return handler(obj)

    if idents.encode_pid is not None:
        return default
    made = 0

    def plain_default(obj: Any) -> Any:
        # default, with new_pid_ext's hook-less branch inline (a call per new Pid counts).
        cls = obj.__class__
        if cls is Pid:
            hit = pid_out.get(id(obj))
            if hit is not None and hit[0] is obj:
                return hit[1]
            ext = _new_tuple(ExtType, (EXT_PID, _pack(obj.node, obj.id, obj.creation)))
            nonlocal made
            made += 1
            if not made % SAMPLE:
                put(pid_out, id(obj), (obj, ext))
            return ext
        handler = handlers.get(cls)
        if handler is None:
            handler = classify(obj)
        return handler(obj)

    return plain_default
