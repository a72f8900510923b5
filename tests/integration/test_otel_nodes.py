"""joerl.otel across nodes (two nodes in one process, real loopback links): the trace
context crosses as a registered envelope, and the receiving node unwraps it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (the test extra) is not installed")

from _otelkit import exporter, provider  # noqa: E402, F401 - fixtures
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from joerl import Actor, ActorContext, GenServer, Reply, gen_server, otel  # noqa: E402
from joerl._traced import Traced  # noqa: E402
from joerl.node.node import DistributedSystem  # noqa: E402
from joerl.pid import Pid  # noqa: E402
from joerl.testing import node_cluster, wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(60)


class Recorder(Actor):
    def __init__(self, seen: list[Any]) -> None:
        self.seen = seen

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        self.seen.append(msg)


class Store(GenServer):
    def init(self, args: Any) -> Any:
        return None

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(("ok", request), state)


@pytest.fixture
def nodes() -> Iterator[list[DistributedSystem]]:
    with node_cluster("oa", "ob", cookie="joerl-otel-test", global_names=False) as nodes:
        yield nodes


def finished(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found: ReadableSpan = wait_until(
        lambda: next((s for s in exporter.get_finished_spans() if s.name == name), None), what=f"a span {name!r}"
    )
    return found


def test_a_send_and_a_call_to_another_node_continue_the_trace(
    nodes: list[DistributedSystem], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    a, b = nodes
    otel.instrument(a, provider)
    otel.instrument(b, provider)
    seen: list[Any] = []
    b.system.spawn(Recorder(seen), name="recorder")
    gen_server.start(b.system, Store(), name="store")
    with provider.get_tracer("test").start_as_current_span("request") as root:
        a.system.send(("recorder", b.node_name), ("hello", [1, 2]))
        assert a.call(("store", b.node_name), ("get", "k")) == ("ok", ("get", "k"))
    root_ctx = root.get_span_context()
    received = finished(exporter, "joerl receive Recorder")
    called = finished(exporter, "joerl call get")
    for span, kind in ((received, SpanKind.CONSUMER), (called, SpanKind.SERVER)):
        assert span.kind is kind
        assert span.context.trace_id == root_ctx.trace_id
        assert span.parent is not None and span.parent.span_id == root_ctx.span_id and span.parent.is_remote
        assert span.attributes is not None and span.attributes["joerl.system"] == b.system.name
    assert seen == [("hello", [1, 2])]  # the message as sent, not the envelope


def test_a_node_that_is_not_instrumented_unwraps_and_records_nothing(
    nodes: list[DistributedSystem], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    a, b = nodes
    otel.instrument(a, provider)
    seen: list[Any] = []
    b.system.spawn(Recorder(seen), name="recorder")
    gen_server.start(b.system, Store(), name="store")

    def selective(ctx: ActorContext) -> None:
        seen.append(ctx.receive(lambda m: m == "second"))  # the envelope is matched by its message
        seen.append(ctx.receive())

    fn = b.system.spawn_fn(selective)
    with provider.get_tracer("test").start_as_current_span("request"):
        a.system.send(("recorder", b.node_name), "plain")
        assert a.call(("store", b.node_name), "get") == ("ok", "get")
        a.system.send(remote(b, fn.pid), "first")
        a.system.send(remote(b, fn.pid), "second")
    assert fn.wait(5) == "normal"
    assert seen == ["plain", "second", "first"]
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]


def remote(node: DistributedSystem, pid: Pid) -> Pid:
    """How other nodes name ``node``'s local process ``pid``."""
    return Pid(node.node_id, pid.id, node.creation)


def test_a_malformed_carrier_from_a_peer_is_ignored_and_counted(
    nodes: list[DistributedSystem], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    a, b = nodes
    hook = otel.instrument(b, provider)
    seen: list[Any] = []
    b.system.spawn(Recorder(seen), name="recorder")
    for carrier in ({"traceparent": "not-a-trace-context"}, ["not", "a", "dict"], {"traceparent": 1}):
        a.system.send(("recorder", b.node_name), Traced("payload", carrier))
    wait_until(lambda: len(seen) == 3, what="the three messages")
    assert seen == ["payload"] * 3
    assert hook.malformed == 3

    def received() -> list[ReadableSpan]:
        return [s for s in exporter.get_finished_spans() if s.name == "joerl receive Recorder"]

    wait_until(lambda: len(received()) == 3, what="three receive spans")
    assert all(s.parent is None for s in received())  # handled, without a parent
