"""A real ``erl`` as the oracle of joerl's External Term Format codec.

One ``erl -noshell`` process, started once per test session (booting erl
costs about a second), reads requests on stdin, one per line, and answers
one line each:

    C <hex etf> <hex utf-8 source>   ->  ok <true|false> <hex t2b(V)> <hex t2b(V, [compressed])>
        V is the Erlang expression ``source`` evaluated; ``true`` when
        ``binary_to_term(etf) =:= V``.
    E <hex utf-8 source>             ->  ok <hex t2b(V)>
    R <hex etf>                      ->  ok <hex t2b(binary_to_term(etf))>
    anything that fails              ->  error <reason>

:func:`to_source` writes a Python term as Erlang source, independently of
the codec under test; pids, references and opaque terms, which Erlang
source cannot spell, are written as ``binary_to_term(<<...>>)`` of bytes
laid out here by hand (atoms as ATOM_UTF8_EXT, which the codec never
writes for short atoms).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import threading
from typing import Any

from joerl.erlang.terms import Atom, BitString, ErlangPid, ErlangRef, FrozenList, FrozenMap, ImproperList, Opaque

ORACLE_CODE = r"""
Hex = fun(B) -> binary:encode_hex(B) end,
Unhex = fun(S) -> binary:decode_hex(list_to_binary(S)) end,
Eval = fun(Src) ->
    {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Src, utf8) ++ "."),
    {ok, [Expr]} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:expr(Expr, erl_eval:new_bindings()),
    V
end,
Handle = fun
    (["C", H, S]) ->
        V = Eval(Unhex(S)),
        Got = binary_to_term(Unhex(H)),
        io_lib:format("ok ~s ~s ~s", [Got =:= V, Hex(term_to_binary(V)), Hex(term_to_binary(V, [compressed]))]);
    (["E", S]) -> io_lib:format("ok ~s", [Hex(term_to_binary(Eval(Unhex(S))))]);
    (["R", H]) -> io_lib:format("ok ~s", [Hex(term_to_binary(binary_to_term(Unhex(H))))])
end,
Loop = fun Loop() ->
    case io:get_line("") of
        eof -> halt(0);
        Line ->
            Reply = try Handle(string:lexemes(string:trim(Line), " "))
                    catch C:R -> io_lib:format("error ~w", [{C, R}]) end,
            io:put_chars([Reply, $\n]),
            Loop()
    end
end,
io:put_chars("ready\n"),
Loop().
"""


class OracleError(Exception):
    """erl answered ``error ...``."""


class ErlOracle:
    """The long-running erl process; ``ask`` is thread-safe and bounded.

    Args:
        timeout: seconds to wait for each answer (and for the boot).
    """

    def __init__(self, timeout: float = 30.0) -> None:
        erl = shutil.which("erl")
        if erl is None:
            raise FileNotFoundError("erl is not installed")
        self.timeout = timeout
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [erl, "-noshell", "-eval", ORACLE_CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        first = self._readline()
        if first != "ready":
            raise RuntimeError(f"the erl oracle did not start: {first!r}")

    def _readline(self) -> str:
        box: list[str] = []
        assert self.proc.stdout is not None
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.timeout)
        if not box:
            self.close()
            raise TimeoutError(f"the erl oracle did not answer within {self.timeout} s")
        if not box[0]:
            raise RuntimeError(f"the erl oracle exited (rc={self.proc.poll()})")
        return box[0].strip()

    def ask(self, *words: str) -> list[str]:
        """Send one request; return the words of the ``ok`` answer."""
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(" ".join(words) + "\n")
            self.proc.stdin.flush()
            line = self._readline()
        kind, _, rest = line.partition(" ")
        if kind != "ok":
            raise OracleError(rest or line)
        return rest.split(" ")

    def check(self, etf: bytes, term: Any) -> tuple[bool, bytes, bytes]:
        """Is ``binary_to_term(etf) =:= <term written as source>`` in Erlang?

        Returns:
            (that, ``term_to_binary`` of the source's value, the same compressed).
        """
        src = to_source(term).encode("utf-8")
        same, plain, packed = self.ask("C", etf.hex(), src.hex())
        return same == "true", bytes.fromhex(plain), bytes.fromhex(packed)

    def evaluate(self, source: str) -> bytes:
        """``term_to_binary`` of an Erlang expression's value."""
        return bytes.fromhex(self.ask("E", source.encode("utf-8").hex())[0])

    def reencode(self, etf: bytes) -> bytes:
        """``term_to_binary(binary_to_term(etf))``."""
        return bytes.fromhex(self.ask("R", etf.hex())[0])

    def close(self) -> None:
        """Stop erl (closing its stdin ends its loop; killed if it lingers)."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _atom_src(name: str) -> str:
    out = []
    for c in name:
        if c in "\\'":
            out.append("\\" + c)
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\x{{{ord(c):x}}}")
        else:
            out.append(c)
    return "'" + "".join(out) + "'"


def _float_src(x: float) -> str:
    text = repr(x)
    mant, e, exp = text.partition("e")
    if "." not in mant:
        mant += ".0"
    return mant + (f"e{int(exp)}" if e else "")


def _atom_ext(name: str) -> bytes:
    raw = name.encode("utf-8")
    return b"\x76" + struct.pack(">H", len(raw)) + raw  # ATOM_UTF8_EXT


def _raw_term(raw: bytes) -> str:
    return "binary_to_term(<<" + ",".join(str(b) for b in b"\x83" + raw) + ">>)"


def to_source(t: Any) -> str:  # noqa: C901 (one dispatch on the type)
    """Erlang source for the Python term ``t`` (docs/erlang.md's mapping)."""
    if isinstance(t, Atom):
        return _atom_src(t.name)
    if t is True or t is False:
        return "true" if t else "false"
    if t is None:
        return "undefined"
    if isinstance(t, int):
        return str(t)
    if isinstance(t, float):
        return _float_src(t)
    if isinstance(t, (bytes, bytearray)):
        return "<<" + ",".join(str(b) for b in t) + ">>"
    if isinstance(t, str):
        return to_source(t.encode("utf-8"))
    if isinstance(t, BitString):
        head = [str(b) for b in t.data[:-1]]
        return "<<" + ",".join([*head, f"{t.data[-1] >> (8 - t.bits)}:{t.bits}"]) + ">>"
    if isinstance(t, tuple):
        return "{" + ",".join(to_source(x) for x in t) + "}"
    if isinstance(t, (list, FrozenList)):
        return "[" + ",".join(to_source(x) for x in t) + "]"
    if isinstance(t, ImproperList):
        return "[" + ",".join(to_source(x) for x in t.items) + "|" + to_source(t.tail) + "]"
    if isinstance(t, (dict, FrozenMap)):
        return "#{" + ",".join(f"{to_source(k)} => {to_source(v)}" for k, v in t.items()) + "}"
    if isinstance(t, ErlangPid):
        return _raw_term(b"\x58" + _atom_ext(t.node.name) + struct.pack(">III", t.id, t.serial, t.creation))
    if isinstance(t, ErlangRef):
        n = len(t.ids)
        return _raw_term(
            b"\x5a" + struct.pack(">H", n) + _atom_ext(t.node.name) + struct.pack(f">I{n}I", t.creation, *t.ids)
        )
    if isinstance(t, Opaque):
        return _raw_term(bytes([t.tag]) + t.raw)
    raise TypeError(f"no Erlang source for {type(t).__name__}")
