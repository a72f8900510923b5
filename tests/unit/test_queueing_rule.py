"""The mailbox queueing rule has one definition (mailbox._queued / _pair);
every inline copy in a hot path is marked and checked against it here."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import joerl
from joerl import Actor, ActorContext, ActorSystem, Pid
from joerl.mailbox import Mailbox, _pair, _queued

MARK = "queueing rule: inline copy"
ROOT = Path(joerl.__file__).parent
SENDER = Pid(0, 99, 0)

#: (message, sender) pairs that exercise every branch of the rule.
ITEMS: list[tuple[Any, Any]] = [
    ("plain", None),
    (("a", "tuple"), None),
    ((), None),
    (None, None),
    ("plain", SENDER),
    (("a", "tuple"), SENDER),
    ([1, 2], None),
]


def _marked_functions() -> set[str]:
    """``module:function`` of every function in joerl/ whose body carries the mark."""
    found = set()
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if MARK not in text:
            continue
        tree = ast.parse(text)
        lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                inner = [n for n in ast.walk(node) if n is not node and isinstance(n, ast.FunctionDef)]
                if MARK in body and not any(MARK in "\n".join(lines[n.lineno - 1 : n.end_lineno]) for n in inner):
                    found.add(f"{path.relative_to(ROOT).as_posix()}:{node.name}")
    return found


def test_every_inline_copy_is_known() -> None:
    assert _marked_functions() == {
        "system.py:send",
        "mailbox.py:deliver",
        "mailbox.py:deliver_all",
        "_process.py:_run",
        "_process.py:_bounded_loop",
        "actor.py:receive",
    }


def test_no_unmarked_copy_of_the_rule() -> None:
    # The rule's telltales: a write straight into a mailbox's deque, or a read
    # that splits a queued pair into the message and ``.sender``.
    telltales = re.compile(r"_q\.(append|extend)\(|__class__ is not tuple else|(\w+), (self|ctx)\.sender = \1\b")
    allowed = {
        "mailbox.py:_queued",
        "mailbox.py:_pair",
        "mailbox.py:put_signal",
        "mailbox.py:remove_if",
    } | _marked_functions()
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        tree = ast.parse(text)
        lines = text.splitlines()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                if telltales.search(body):
                    name = f"{path.relative_to(ROOT).as_posix()}:{node.name}"
                    assert name in allowed, f"{name} copies the queueing rule without the mark"


@pytest.mark.parametrize("item", ITEMS, ids=repr)
def test_definition_round_trips(item: tuple[Any, Any]) -> None:
    assert _pair(_queued(item)) == item


def _queue_of(mailbox: Mailbox) -> list[tuple[Any, Any]]:
    return [_pair(q) for q in mailbox._q]


@pytest.mark.parametrize("writer", ["put", "put_signal", "try_put", "deliver", "deliver_all"])
def test_mailbox_writers_follow_the_rule(writer: str) -> None:
    box = Mailbox()
    for msg, sender in ITEMS:
        if writer == "deliver":
            box.deliver(msg, sender)
        elif writer == "deliver_all":
            box.deliver_all((msg,), sender)
        else:
            getattr(box, writer)((msg, sender))
    assert _queue_of(box) == ITEMS


def test_system_send_follows_the_rule() -> None:
    with ActorSystem() as system:
        hold = system.spawn_fn(lambda ctx: ctx.receive(lambda m: m == "never"))
        box = system.context_of(hold.pid)._mailbox  # type: ignore[union-attr]
        for msg, sender in ITEMS:
            system.send(hold.pid, msg, sender=sender)
        assert _queue_of(box) == ITEMS
        system.exit(hold.pid, "kill")


class _Recorder(Actor):
    def __init__(self, seen: list[tuple[Any, Any]], n: int) -> None:
        self.seen, self.n = seen, n

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.seen.append((msg, ctx.sender))
        if len(self.seen) == self.n:
            ctx.stop()


def test_the_actor_loop_reads_by_the_rule() -> None:
    seen: list[tuple[Any, Any]] = []
    with ActorSystem() as system:
        ref = system.spawn(_Recorder(seen, len(ITEMS)))
        for msg, sender in ITEMS:
            system.send(ref.pid, msg, sender=sender)
        assert ref.join(5)
    assert seen == ITEMS


def test_receive_reads_by_the_rule() -> None:
    seen: list[tuple[Any, Any]] = []

    def body(ctx: ActorContext) -> None:
        for _ in ITEMS:
            seen.append((ctx.receive(), ctx.sender))

    with ActorSystem() as system:
        ref = system.spawn_fn(body)
        for msg, sender in ITEMS:
            system.send(ref.pid, msg, sender=sender)
        assert ref.join(5)
    assert seen == ITEMS


def test_marked_sources_name_the_definition() -> None:
    for fn in (ActorSystem.send, Mailbox.deliver, Mailbox.deliver_all, ActorContext.receive):
        assert MARK in inspect.getsource(fn)
