"""A joerl node that Erlang and Elixir nodes join: a GenServer named ``echo`` answers their calls.

    python examples/erlang_interop.py --name py@127.0.0.1 --cookie secret

It prints ``ready: py@127.0.0.1`` once Erlang nodes can reach it, and serves
until SIGTERM or Ctrl+C (then it shuts down and exits 0). It registers with
the port mapper of its host, as ``erl`` does (Erlang's ``epmd`` if one runs,
else joerl's, started on demand). From Erlang, with the same cookie::

    $ erl -name e@127.0.0.1 -setcookie secret -hidden
    1> net_adm:ping('py@127.0.0.1').
    pong
    2> gen_server:call({echo, 'py@127.0.0.1'}, {hello, [1, 2, 3], <<"bytes">>}).
    {hello,[1,2,3],<<"bytes">>}
    3> rpc:call('py@127.0.0.1', echo, upper, [<<"abc">>]).
    <<"ABC">>
    4> rpc:call('py@127.0.0.1', os, cmd, ["id"]).   % not registered: refused
    {badrpc,{'EXIT',{undef,[{os,cmd,1,[]}]}}}

From Elixir: ``iex --name e@127.0.0.1 --cookie secret``, then
``GenServer.call({:echo, :"py@127.0.0.1"}, :hi)`` returns ``:hi``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from joerl import gen_server, rpc
from joerl.gen_server import GenServer, Reply
from joerl.node.node import DistributedSystem


class Echo(GenServer):
    """Replies to every call with the request, unchanged."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(request)


def upper(data: bytes) -> bytes:
    """``rpc:call(Node, echo, upper, [Binary])`` from Erlang."""
    return bytes(data).upper()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the node's full name, NAME@HOST (as Erlang dials it)")
    parser.add_argument("--cookie", required=True, help="the cookie the Erlang nodes use")
    args = parser.parse_args()
    node = DistributedSystem(args.name, cookie=args.cookie, erlang=True)
    gen_server.start(node.system, Echo(), name="echo")
    rpc.register(node, "echo:upper", upper)  # what Erlang's rpc:call may run here: this, nothing else
    print(f"ready: {node.node_name}", flush=True)
    node.serve_forever()  # until SIGTERM or SIGINT, then a clean shutdown
    return 0


if __name__ == "__main__":
    sys.exit(main())
