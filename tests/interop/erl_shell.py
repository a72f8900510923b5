"""A long-running distributed ``erl`` node that evaluates Erlang expressions sent on its stdin.

Booting erl costs about a second, so each test module keeps one
:class:`ErlShell` (``erl -name NAME@127.0.0.1 -setcookie COOKIE -hidden
-noshell``) and sends it expressions, each evaluated with fresh bindings (keep what a later
expression needs under a registered name, or in the process dictionary). Each request is one
line, ``<hex of the UTF-8 source>``; each answer one line, ``@@ ok <hex of
term_to_binary(Value)>`` or ``@@ error <text>`` (other lines, such as
Erlang's own reports, are skipped). Values come back through joerl's ETF
decoder (checked against erl by ``test_erlang_etf_oracle.py``).

The pipes are gevent's, so that a joerl node in the test process keeps
serving while a test waits for erl's answer; every wait has a deadline.
"""

from __future__ import annotations

import os
from typing import Any

import gevent
from gevent import subprocess

from joerl.erlang import decode

COOKIE = "JOERLTEST"
BOOT = 30.0

_LOOP = r"""
Unhex = fun(S) -> binary:decode_hex(list_to_binary(S)) end,
Eval = fun(Src, B) ->
    {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Src, utf8)),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    {value, V, B2} = erl_eval:exprs(Exprs, B),
    {V, B2}
end,
Loop = fun Loop(B) ->
    case io:get_line("") of
        eof -> halt(0);
        Line ->
            {Reply, B3} = try Eval(Unhex(string:trim(Line)), B) of
                              {V, _} -> {["@@ ok ", binary:encode_hex(term_to_binary(V))], B}
                          catch C:R -> {io_lib:format("@@ error ~0p", [{C, R}]), B} end,
            io:put_chars([Reply, $\n]),
            Loop(B3)
    end
end,
io:put_chars("@@ ready\n"),
Loop(erl_eval:new_bindings()).
"""


class ErlError(Exception):
    """erl raised evaluating the expression (the message is its ``{Class, Reason}``)."""


class ErlShell:
    """One erl node (see the module docstring).

    Args:
        epmd_port: the port mapper erl registers with (``ERL_EPMD_PORT``).
        name: its alive name; the node is ``name@127.0.0.1``.
        cookie: its cookie.
        extra: more ``erl`` arguments (``-kernel net_ticktime 4``...).
        hidden: start it ``-hidden`` (else a visible node).
    """

    def __init__(self, epmd_port: int, name: str, cookie: str = COOKIE, *extra: str, hidden: bool = True) -> None:
        self.node = f"{name}@127.0.0.1"
        env = dict(os.environ, ERL_EPMD_PORT=str(epmd_port))
        argv = ["erl", "-name", self.node, "-setcookie", cookie, "-noshell", "-start_epmd", "false"]
        argv += ["-hidden"] if hidden else []
        self.proc = subprocess.Popen(
            [*argv, *extra, "-eval", _LOOP],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []  # every line that was not an answer
        first = self._answer(BOOT)
        if first != "ready":
            raise RuntimeError(f"erl did not start: {first!r}")

    def _answer(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        with gevent.Timeout(timeout, TimeoutError(f"erl {self.node} did not answer within {timeout}s")):
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"erl {self.node} exited: {''.join(self.output[-20:])}")
                if line.startswith("@@ "):
                    return line[3:].strip()
                self.output.append(line)

    def eval(self, source: str, timeout: float = 20.0) -> Any:
        """Evaluate ``source`` (one or more expressions; the final ``.`` is added) and return its value.

        Raises:
            ErlError: evaluating it raised (in erl).
        """
        source = source.strip()
        if not source.endswith("."):
            source += "."
        assert self.proc.stdin is not None
        self.proc.stdin.write(source.encode("utf-8").hex() + "\n")
        self.proc.stdin.flush()
        kind, _, rest = self._answer(timeout).partition(" ")
        if kind != "ok":
            raise ErlError(rest)
        return decode(bytes.fromhex(rest))

    def load_module(self, source: str) -> None:
        """Compile and load an Erlang module given as source text (forms ending in ``.``)."""
        self.eval(
            "(fun() -> {ok, Toks, _} = erl_scan:string(" + _erl_string(source) + "), "
            "Split = fun S([], _, Out) -> lists:reverse(Out); "
            "S([{dot, _} = D | T], Acc, Out) -> {ok, F} = erl_parse:parse_form(lists:reverse([D | Acc])), "
            "S(T, [], [F | Out]); S([H | T], Acc, Out) -> S(T, [H | Acc], Out) end, "
            "{ok, Mod, Bin} = compile:forms(Split(Toks, [], [])), "
            '{module, Mod} = code:load_binary(Mod, "dynamic", Bin) end)()'
        )

    def kill(self) -> None:
        """Kill erl at once (its links drop)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=BOOT)

    def close(self) -> None:
        """Stop erl: close its stdin (its loop halts), kill it if it lingers."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Epmd:
    """Erlang's own epmd in the foreground on a free port (``port``); :meth:`kill` ends it."""

    def __init__(self) -> None:
        from joerl.epmd import EpmdClient
        from joerl.testing import free_port, wait_until

        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERL_EPMD")}
        self.proc = subprocess.Popen(
            ["epmd", "-port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        address = f"127.0.0.1:{self.port}"
        wait_until(lambda: EpmdClient(address, timeout=1).ping() or self.proc.poll() is not None, timeout=10)
        assert self.proc.poll() is None, "epmd exited at once"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def erlang_node(epmd_port: int, name: str = "py@127.0.0.1", **kw: Any) -> Any:
    """A joerl node with Erlang distribution on, registered at the port mapper on ``epmd_port``
    (found there as Erlang finds nodes: ``ERL_EPMD_PORT``, one port mapper per host)."""
    from joerl.node.node import DistributedSystem

    kw.setdefault("cookie", COOKIE)
    kw.setdefault("erlang", True)
    saved = {k: os.environ.pop(k, None) for k in ("ERL_EPMD_PORT", "JOERL_EPMD_ADDRESS")}
    os.environ["ERL_EPMD_PORT"] = str(epmd_port)
    try:
        return DistributedSystem(name, start_epmd=False, global_names=False, **kw)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _erl_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
