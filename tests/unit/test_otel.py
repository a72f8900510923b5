"""joerl.otel: OpenTelemetry trace context travels with sends and calls; the receiver handles in a child span."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK (the test extra) is not installed")

from _otelkit import exporter, provider  # noqa: E402, F401 - fixtures
from opentelemetry import trace as otel_trace  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

from joerl import Actor, ActorContext, ActorSystem, GenServer, Reply, gen_server, gen_statem, otel  # noqa: E402
from joerl._traced import Traced  # noqa: E402
from joerl.gen_statem import GenStatem, KeepState  # noqa: E402
from joerl.gen_statem import Reply as StatemReply  # noqa: E402
from joerl.serialization import Codec  # noqa: E402
from joerl.supervisor import ChildSpec, Supervisor, start_supervisor, which_children  # noqa: E402
from joerl.testing import wait_until  # noqa: E402


class Recorder(Actor):
    def __init__(self, seen: list[Any], forward: Any = None) -> None:
        self.seen = seen
        self.forward = forward

    def handle_message(self, msg: Any, ctx: ActorContext) -> None:
        if msg == "crash":
            raise ValueError("asked to")
        self.seen.append(msg)
        if self.forward is not None:
            ctx.send(self.forward, ("forwarded", msg))


class Store(GenServer):
    def init(self, args: Any) -> Any:
        return {}

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply(("ok", request), state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return {**state, "cast": request}


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    with ActorSystem("otel") as s:
        yield s


def spans(exporter: InMemorySpanExporter, name: str, count: int = 1) -> list[ReadableSpan]:
    return wait_until(
        lambda: (
            [s for s in exporter.get_finished_spans() if s.name == name][:count]
            if len([s for s in exporter.get_finished_spans() if s.name == name]) >= count
            else None
        ),
        what=f"{count} span(s) named {name!r}",
    )


def child_of(span: ReadableSpan, parent: Any) -> bool:
    """``span``'s parent is ``parent`` (a live span or a finished one's SpanContext)."""
    ctx = parent.get_span_context() if hasattr(parent, "get_span_context") else parent
    return span.context.trace_id == ctx.trace_id and span.parent is not None and span.parent.span_id == ctx.span_id


def test_a_send_under_a_span_is_handled_in_a_child_consumer_span(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    seen: list[Any] = []
    ref = system.spawn(Recorder(seen))
    with provider.get_tracer("test").start_as_current_span("request") as root:
        system.send(ref.pid, ("hello", 1))
    [span] = spans(exporter, "joerl receive Recorder")
    assert seen == [("hello", 1)]  # the handler sees the message as sent
    assert child_of(span, root)
    assert span.kind is SpanKind.CONSUMER
    assert span.attributes is not None and span.attributes["joerl.pid"] == str(ref.pid)


def test_a_gen_server_call_and_cast(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    server = gen_server.start(system, Store())
    with provider.get_tracer("test").start_as_current_span("request") as root:
        assert server.call(("get", "k")) == ("ok", ("get", "k"))
        server.cast("noted")
    [call] = spans(exporter, "joerl call get")
    assert call.kind is SpanKind.SERVER and child_of(call, root)
    [cast] = spans(exporter, "joerl receive Store")
    assert child_of(cast, root)
    assert server.call("state") == ("ok", "state")  # no span current: nothing wrapped, nothing recorded
    assert "joerl call str" not in [s.name for s in exporter.get_finished_spans()]


def test_the_context_follows_the_messages_an_actor_sends_while_handling(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    last: list[Any] = []
    tail = system.spawn(Recorder(last), name="tail")
    head = system.spawn(Recorder([], forward="tail"))
    with provider.get_tracer("test").start_as_current_span("request") as root:
        head.send("job")
    first, second = spans(exporter, "joerl receive Recorder", 2)
    if first.parent is not None and first.parent.span_id != root.get_span_context().span_id:
        first, second = second, first
    assert child_of(first, root)
    assert child_of(second, first.context)  # the second hop is a child of the first handler's span
    assert last == [("forwarded", "job")]
    assert tail.pid is not None


def test_a_function_actor_receives_the_message_with_the_context_current(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    got: list[Any] = []

    def worker(ctx: ActorContext) -> None:
        got.append(ctx.receive(int))  # selective: the str (also Traced) stays queued
        got.append(otel_trace.get_current_span().get_span_context().trace_id)
        got.append(ctx.receive())
        got.append(otel_trace.get_current_span().get_span_context().is_valid)

    ref = system.spawn_fn(worker)
    with provider.get_tracer("test").start_as_current_span("request") as root:
        ref.send("first")
        ref.send(42)
    assert ref.wait(5) == "normal"
    trace_id = root.get_span_context().trace_id
    assert got[:3] == [42, trace_id, "first"]
    assert got[3] is True
    receives = spans(exporter, "joerl receive worker", 2)
    assert all(child_of(s, root) and s.kind is SpanKind.CONSUMER for s in receives)


class Counter(GenStatem):
    def init(self, args: Any) -> Any:
        return ("counting", 0)

    def counting(self, event_type: Any, content: Any, data: int) -> Any:
        return KeepState(data + 1, StatemReply(event_type[1], ("counted", content, data + 1)))


def test_a_gen_statem_call(system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    otel.instrument(system, provider)
    ref = gen_statem.start(system, Counter())
    with provider.get_tracer("test").start_as_current_span("request") as root:
        assert ref.call(("inc", 5)) == ("counted", ("inc", 5), 1)  # the machine sees the request as sent
    [span] = spans(exporter, "joerl call inc")
    assert span.kind is SpanKind.SERVER and child_of(span, root)


def test_a_crash_is_recorded_on_the_handler_span(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    ref = system.spawn(Recorder([]))
    with provider.get_tracer("test").start_as_current_span("request"):
        ref.send("crash")
    assert isinstance(ref.wait(5), ValueError)
    [span] = spans(exporter, "joerl receive Recorder")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_a_supervisor_call_under_a_span(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel.instrument(system, provider)
    sup = start_supervisor(system, Supervisor("one_for_one", [ChildSpec.worker("store", Recorder, [])]))
    with provider.get_tracer("test").start_as_current_span("request") as root:
        assert [c.id for c in which_children(system, sup)] == ["store"]
    assert any(child_of(s, root) for s in exporter.get_finished_spans() if s.name.startswith("joerl call"))


def test_disabled_nothing_is_wrapped_nor_recorded(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    assert "send" not in vars(system) and "call" not in vars(system)  # the class's methods, untouched
    seen: list[Any] = []
    ref = system.spawn(Recorder(seen))
    server = gen_server.start(system, Store())
    with provider.get_tracer("test").start_as_current_span("request"):
        ref.send("plain")
        assert server.call("get") == ("ok", "get")
        # What an instrumented peer sends arrives as an envelope: unwrapped, nothing recorded.
        ref.send(Traced("from a peer", {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}))
    wait_until(lambda: len(seen) == 2)
    assert seen == ["plain", "from a peer"]
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]


def test_uninstrument_restores_the_system(
    system: ActorSystem, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    hook = otel.instrument(system, provider)
    with pytest.raises(RuntimeError, match="instrumented already"):
        otel.instrument(system, provider)
    assert system._otel is hook
    otel.uninstrument(system)
    otel.uninstrument(system)  # harmless twice
    assert "send" not in vars(system) and system._otel is None
    seen: list[Any] = []
    ref = system.spawn(Recorder(seen))
    with provider.get_tracer("test").start_as_current_span("request"):
        ref.send("plain")
    wait_until(lambda: seen == ["plain"])
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]
    with pytest.raises(TypeError, match="ActorSystem or a node"):
        otel.instrument(object())


@pytest.mark.parametrize(
    "carrier",
    [
        {"traceparent": "garbage"},
        [1, 2],
        {"traceparent": 7},
        {f"k{i}": "v" for i in range(100)},
    ],
)
def test_a_malformed_carrier_is_ignored_and_counted_and_logged_once(
    system: ActorSystem,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    carrier: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = otel.instrument(system, provider)
    seen: list[Any] = []
    ref = system.spawn(Recorder(seen))
    with caplog.at_level(logging.WARNING, logger="joerl.otel"):
        ref.send(Traced("one", carrier))
        ref.send(Traced("two", carrier))
        wait_until(lambda: len(seen) == 2)
    assert seen == ["one", "two"]  # still delivered, unwrapped
    assert hook.malformed == 2
    assert len([r for r in caplog.records if "malformed trace context" in r.getMessage()]) == 1
    received = spans(exporter, "joerl receive Recorder", 2)
    assert all(s.parent is None for s in received)  # handled without a parent


def test_the_envelope_crosses_the_codec_as_a_registered_type() -> None:
    codec = Codec()
    env = Traced(("get", 1), {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    back = codec.decode(codec.encode(env))
    assert back == env and back.__class__ is Traced and back.msg == ("get", 1)


def test_a_span_is_never_current_in_another_greenlet(provider: TracerProvider) -> None:
    """Each greenlet has its own contextvars context: only messages carry a trace across processes."""
    with provider.get_tracer("test").start_as_current_span("request"):
        assert otel_trace.get_current_span().get_span_context().is_valid
        assert gevent.spawn(lambda: otel_trace.get_current_span().get_span_context().is_valid).get(timeout=5) is False


@pytest.mark.timeout(60)
def test_without_the_package_the_import_error_names_the_extra() -> None:
    code = "import sys; sys.modules['opentelemetry'] = None\nimport joerl\ntry:\n    joerl.otel\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=True)
    assert "joerl[otel]" in out.stdout
