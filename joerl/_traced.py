"""``Traced``: a message with the OpenTelemetry trace context it was sent under.

:mod:`joerl.otel` wraps what an instrumented system sends (and the request of
a call) in a :class:`Traced` while a span is current: ``msg`` and a small
``carrier`` dict (W3C ``traceparent``/``tracestate``). The runtime unwraps it
before the process sees the message: the actor loop, ``ctx.receive``
(selective receive matches the inner message) and the behaviours' call
dispatch. The type is registered with every node (``joerl::Traced``) and this
module needs no OpenTelemetry package, so a node that is not instrumented still
unwraps what an instrumented peer sends, and records nothing.

What happens around the handler when the receiving system is instrumented is
``system._otel``'s business (``joerl.otel``); None: the message is just
handled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._gen import CALL
from .serialization import serializable

if TYPE_CHECKING:
    from .actor import ActorContext

__all__ = ["Traced", "handle", "handle_call", "received"]


#: True once a Traced was made in this process (sent, or decoded from a peer):
#: from then on every process is watched (joerl._watch), so that the runtime
#: unwraps what it takes; until then the hot paths do not look for one.
seen = False


@serializable("joerl::Traced")
@dataclass(frozen=True)
class Traced:
    """``msg`` as sent, with ``carrier``: the trace context's text map (checked by the receiver, never here)."""

    msg: Any
    carrier: Any

    def __post_init__(self) -> None:
        if not seen:
            _first()


def _first() -> None:
    global seen
    seen = True
    from . import _watch  # (imports this module)

    _watch.watch_everything()


def handle(ctx: ActorContext, env: Traced, handler: Callable[[Any, ActorContext], Any]) -> None:
    """The actor loop took ``env``: handle its message (in a span when the system is instrumented)."""
    msg = env.msg
    if ctx._trace is not None:
        ctx._trace.on_receive(ctx, msg)
    hook = ctx.system._otel
    if hook is None:
        handler(msg, ctx)
    else:
        hook.handle(ctx, env, handler)


def handle_call(ctx: ActorContext, msg: Any, handler: Callable[[Any, ActorContext], Any]) -> None:
    """A behaviour got ``(CALL, From, Traced)``: handle the call with its own request (in a span when instrumented)."""
    env = msg[2]
    call = (CALL, msg[1], env.msg)
    hook = ctx.system._otel
    if hook is None:
        handler(call, ctx)
    else:
        hook.handle_call(ctx, env, call, handler)


def received(ctx: ActorContext, msg: Any) -> Any:
    """``ctx.receive`` took ``msg``: the message itself (a function actor's receive; see joerl.otel)."""
    hook = ctx.system._otel
    if hook is not None:
        return hook.received(ctx, msg)
    ctx._otel = None  # attached while instrumented: nothing reads it now
    return msg.msg if msg.__class__ is Traced else msg


def unwrap_match(match: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A selective receive's ``match``, applied to the inner message of a Traced."""
    return lambda m: match(m.msg if m.__class__ is Traced else m)
