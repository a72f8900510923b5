"""OpenTelemetry: trace context travels with sends and calls, across nodes (the ``otel`` extra).

``instrument(system_or_node)`` opts one system (or a node's) in. From then
on, a send or call made from it while an OpenTelemetry span is current
carries the W3C trace context (``propagate.inject`` into a small dict) with
the message, as a :class:`~joerl._traced.Traced` envelope: a registered
message type, so it crosses nodes as msgpack like any other. The receiving
runtime unwraps it before the process sees the message (selective receive,
matching and the behaviours' dispatch see the message as it was sent), and,
when the receiving system is instrumented too, handles it inside a span that
is a child of the sender's:

* ``Actor.handle_message`` (and so GenServer ``handle_cast``/``handle_info``,
  GenStatem events): a CONSUMER span ``"joerl receive <actor>"``;
* a call to a GenServer, GenStatem or Supervisor: a SERVER span
  ``"joerl call <request>"`` (the request's class, or the head of a tuple
  request such as ``("get", key)``);
* a function actor's ``ctx.receive``: a CONSUMER span for the receive; its
  context stays current in that process until its next receive, so what it
  sends in between belongs to the trace.

Each span ends when the handler returns (a crash is recorded on it). The
sending side adds no span of its own: the receiver's parent is the span that
was current at the send. Processes are greenlets, and each greenlet has its
own ``contextvars`` context: a span current in one process (or in plain
code) is never current in another; only messages carry it.

Cost when not instrumented: one module attribute read per message taken
(``joerl._traced.seen``, which turns on once a Traced exists in the process;
then the message's class is checked too), on the paths that already have
:mod:`joerl.trace`'s hook. Instrumented, a send with no current span costs one
``get_current_span`` check.

Not carried: ``try_send``, timers (``send_after``: they fire from the hub),
and messages to Erlang nodes (don't instrument a system that sends to
``erl`` nodes under a span: the envelope is not an Erlang term). A carrier a
peer sent that is not a small dict of strings holding a valid context is
ignored: the message is handled without a parent, counted in
:attr:`Instrumentation.malformed` and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("joerl.otel needs the OpenTelemetry API: pip install 'joerl[otel]' (opentelemetry-api)") from exc

from ._crash import actor_label
from ._gen import is_call
from ._traced import Traced
from .actor import Actor, StopActor
from .message import format_reason, is_normal
from .system import ActorSystem

if TYPE_CHECKING:
    from .actor import ActorContext

__all__ = ["Instrumentation", "instrument", "uninstrument"]

log = logging.getLogger(__name__)

#: A carrier holds at most this many entries, each key and value a str of at most MAX_VALUE characters.
MAX_ENTRIES = 8
MAX_VALUE = 512


def _system(target: Any) -> ActorSystem:
    system = getattr(target, "system", target)
    if not isinstance(system, ActorSystem):
        raise TypeError(f"instrument an ActorSystem or a node (DistributedSystem), not {target!r}")
    return system


def _request_name(request: Any) -> str:
    if request.__class__ is tuple and request and request[0].__class__ is str:
        return str(request[0])
    return type(request).__name__


class Instrumentation:
    """One system's OpenTelemetry instrumentation (made by :func:`instrument`).

    Attributes:
        system: the instrumented system.
        malformed: carriers from peers that were ignored (not a small dict of
            strings, or no valid trace context in it).
    """

    def __init__(self, system: ActorSystem, tracer: trace.Tracer) -> None:
        self.system = system
        self.malformed = 0
        self._tracer = tracer
        self._send: Callable[..., None] = system.send
        self._call: Callable[..., Any] = system.call

    def __repr__(self) -> str:
        return f"<Instrumentation {self.system.name!r}, {self.malformed} malformed carriers>"

    # -- sending: the system's send and call while instrumented -----------------

    def send(self, dest: Any, msg: Any, sender: Any = None) -> None:
        if (
            msg.__class__ is not Traced
            and not is_call(msg)  # a call's own request: call() wrapped it
            and trace.get_current_span().get_span_context().is_valid
        ):
            msg = self._wrap(msg)
        self._send(dest, msg, sender=sender)

    def call(self, server: Any, request: Any, timeout: float | None = 5.0, *, caller: Any = None) -> Any:
        if request.__class__ is not Traced and trace.get_current_span().get_span_context().is_valid:
            request = self._wrap(request)
        return self._call(server, request, timeout, caller=caller)

    @staticmethod
    def _wrap(msg: Any) -> Any:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        return Traced(msg, carrier) if carrier else msg

    # -- receiving: joerl._traced hands the envelopes here ------------------------

    def _parent(self, env: Traced) -> otel_context.Context | None:
        carrier = env.carrier
        if (
            carrier.__class__ is dict
            and len(carrier) <= MAX_ENTRIES
            and all(
                k.__class__ is str and v.__class__ is str and len(k) <= MAX_VALUE and len(v) <= MAX_VALUE
                for k, v in carrier.items()
            )
        ):
            parent = propagate.extract(carrier)
            if trace.get_current_span(parent).get_span_context().is_valid:
                return parent
        self.malformed += 1
        if self.malformed == 1:
            log.warning(
                "%s: ignored a malformed trace context carrier %.200r (logged once; counted in Instrumentation.malformed)",
                self.system.name,
                carrier,
            )
        return None

    def _attributes(self, ctx: ActorContext) -> dict[str, str]:
        return {"messaging.system": "joerl", "joerl.system": self.system.name, "joerl.pid": str(ctx.pid)}

    def _run(self, ctx: ActorContext, span: trace.Span, parent: Any, handler: Callable[..., Any], msg: Any) -> None:
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            handler(msg, ctx)
        except StopActor as stop:
            if not is_normal(stop.reason):
                span.set_status(Status(StatusCode.ERROR, format_reason(stop.reason)))
            raise
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def handle(self, ctx: ActorContext, env: Traced, handler: Callable[..., Any]) -> None:
        """Handle ``env``'s message (the actor loop) in a CONSUMER span, the sender's child."""
        parent = self._parent(env)
        name = "joerl receive " + actor_label(ctx._actor).rsplit(".", 1)[-1]
        span = self._tracer.start_span(name, parent, SpanKind.CONSUMER, self._attributes(ctx))
        self._run(ctx, span, parent, handler, env.msg)

    def handle_call(self, ctx: ActorContext, env: Traced, call: Any, handler: Callable[..., Any]) -> None:
        """Handle the call ``call`` (its request was ``env``'s) in a SERVER span, the caller's child."""
        parent = self._parent(env)
        name = "joerl call " + _request_name(env.msg)
        span = self._tracer.start_span(name, parent, SpanKind.SERVER, self._attributes(ctx))
        self._run(ctx, span, parent, handler, call)

    def received(self, ctx: ActorContext, msg: Any) -> Any:
        """``ctx.receive`` took ``msg`` (maybe a Traced): the message, with the context it carried current.

        In a function actor the receive span's context stays attached until
        the next receive; inside an Actor's handler (whose own context is
        attached) the receive gets its span, and nothing else changes.
        """
        token = ctx._otel
        if token is not None:
            ctx._otel = None
            otel_context.detach(token)
        if msg.__class__ is not Traced:
            return msg
        parent = self._parent(msg)
        name = "joerl receive " + actor_label(ctx._actor).rsplit(".", 1)[-1]
        span = self._tracer.start_span(name, parent, SpanKind.CONSUMER, self._attributes(ctx))
        span.end()
        if not isinstance(ctx._actor, Actor):
            ctx._otel = otel_context.attach(trace.set_span_in_context(span, parent))
        return msg.msg


def instrument(target: Any, tracer_provider: trace.TracerProvider | None = None) -> Instrumentation:
    """Carry OpenTelemetry trace context with what ``target`` sends and calls, and trace what it handles.

    Args:
        target: an :class:`~joerl.ActorSystem`, or a node (its ``system``).
        tracer_provider: where spans go (default: the global one).

    Returns:
        The :class:`Instrumentation` (``malformed`` counts ignored carriers).

    Raises:
        TypeError: ``target`` is neither a system nor a node.
        RuntimeError: it is instrumented already.
    """
    system = _system(target)
    if system._otel is not None:
        raise RuntimeError(f"{system.name!r} is instrumented already: uninstrument it first")
    from . import __version__

    hook = Instrumentation(system, trace.get_tracer("joerl", __version__, tracer_provider))
    system._otel = hook
    # Instance attributes in front of the methods: ctx.send and ctx.call go
    # through them; an uninstrumented system pays nothing.
    system.send = hook.send  # type: ignore[method-assign]
    system.call = hook.call  # type: ignore[method-assign]
    return hook


def uninstrument(target: Any) -> None:
    """Stop what :func:`instrument` started on ``target`` (harmless when it is not instrumented)."""
    system = _system(target)
    if system._otel is None:
        return
    system._otel = None
    del system.send
    del system.call
