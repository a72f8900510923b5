"""A chat room as a process group across three nodes (joerl.pg).

Runs by itself: a private port mapper and three nodes (alice, bob, carol) in
this one process, on loopback. Each node starts the ``pg`` scope and one chat
member that joins the group ``"room"``; a member says something by sending
it to every member of the group. A watcher on alice follows the room through
``monitor("room")``; when carol's member leaves, everyone else sees it go.

    python examples/pg_chat.py
"""

from __future__ import annotations

import sys
from typing import Any

from gevent.event import Event

from joerl import pg
from joerl.actor import ActorContext
from joerl.epmd import EpmdServer
from joerl.node.node import DistributedSystem
from joerl.pg import PgEvent

ROOM = "room"
WAIT = 10.0


def member(ctx: ActorContext, scope: pg.Scope, name: str, heard: dict[str, list[str]], done: Event) -> None:
    """A chat member: joins the room, says what it is told to, prints what it hears."""
    scope.join(ROOM, ctx.pid)
    heard[name] = []
    while True:
        msg: Any = ctx.receive()
        if msg[0] == "say":  # ("say", text): tell every member of the room, ourselves included
            for pid in scope.get_members(ROOM):
                ctx.send(pid, ("said", name, msg[1]))
        elif msg[0] == "said":
            heard[name].append(f"{msg[1]}: {msg[2]}")
            print(f"[{name}] {msg[1]} says {msg[2]!r}", flush=True)
            if all(len(lines) >= 3 for lines in heard.values()) and len(heard) == 3:
                done.set()
        elif msg[0] == "leave":
            scope.leave(ROOM, ctx.pid)
            print(f"[{name}] left the room", flush=True)
            return


def main() -> int:
    epmd = EpmdServer("127.0.0.1:0")
    epmd.start()
    address = f"127.0.0.1:{epmd.port}"
    nodes = [
        DistributedSystem(name, "127.0.0.1:0", address, cookie="pg-chat", start_epmd=False)
        for name in ("alice", "bob", "carol")
    ]
    try:
        alice, bob, carol = nodes
        alice.connect_to_node("bob")
        alice.connect_to_node("carol")
        bob.connect_to_node("carol")
        scopes = [pg.start(node) for node in nodes]

        full = [Event() for _ in nodes]  # set when that node's replica holds all three members
        left = Event()

        def follower(ctx: ActorContext, scope: pg.Scope, full: Event, loud: bool) -> None:
            ref, now = scope.monitor(ROOM, ctx.pid)  # the members now, then every change
            count = len(now)
            while True:
                event = ctx.receive(PgEvent)
                count += len(event.pids) if event.kind == "join" else -len(event.pids)
                if count == 3:
                    full.set()
                if loud:
                    where = sorted({alice.node_of(p) or "?" for p in event.pids})
                    print(f"[watcher@alice] {event.kind}: {where}, {count} in the room", flush=True)
                    if event.kind == "leave":
                        left.set()

        for node, scope, ready in zip(nodes, scopes, full, strict=True):
            node.spawn_fn(follower, scope, ready, node is alice)
        heard: dict[str, list[str]] = {}
        done = Event()
        members = [
            node.spawn_fn(member, scope, node.node_name.partition("@")[0], heard, done)
            for node, scope in zip(nodes, scopes, strict=True)
        ]
        # Eventually consistent: wait until every replica holds all three members.
        if not all(ready.wait(WAIT) for ready in full):
            print("the room did not fill up", flush=True)
            return 1
        print(f"room members seen from alice: {len(scopes[0].get_members(ROOM))}", flush=True)
        for ref, text in zip(members, ("hello from alice", "hi from bob", "hey from carol"), strict=True):
            ref.send(("say", text))
        if not done.wait(WAIT):
            print("not every member heard every line", flush=True)
            return 1
        members[2].send(("leave",))
        if not left.wait(WAIT):
            print("nobody saw carol leave", flush=True)
            return 1
        print(f"room after carol left: {len(scopes[0].get_members(ROOM))} members", flush=True)
        print("chat done", flush=True)
        return 0
    finally:
        for node in reversed(nodes):
            node.shutdown()
        epmd.stop()


if __name__ == "__main__":
    sys.exit(main())
