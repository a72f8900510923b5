"""Supervisors: ChildSpec, the restart strategies, restart intensity, and the
calls that manage children at run time (OTP's ``supervisor``).

A :class:`Supervisor` is an actor that traps exits, starts its children in
order (each linked to it) and restarts them when they end, as their
:class:`ChildSpec` says:

* ``permanent`` children are always restarted; ``transient`` ones only after
  an abnormal exit (anything but ``normal``, ``shutdown``, ``("shutdown", x)``);
  ``temporary`` ones never, and their spec is dropped when they end.
* ``one_for_one`` restarts the child that ended; ``one_for_all`` stops the
  others (newest first) and restarts them all in start order; ``rest_for_one``
  does the same for the children started after it.
* More than ``intensity`` restarts within ``period`` seconds and the
  supervisor gives up: it stops every child (newest first) and exits with
  reason ``"shutdown"``, so that its own supervisor reacts.

A supervisor that is told to stop (an exit signal from its parent,
``system.stop``, ``ActorSystem.shutdown``) stops its children newest first,
each as its spec says (``"shutdown"`` then ``"kill"`` after a timeout, or
``"kill"`` at once), before it ends: a nested tree comes down leaves first.

Everything a supervisor does runs in its own greenlet. The module functions
(:func:`start_child`, :func:`which_children`, ...) are calls to it, made from
any greenlet with an :class:`~joerl.system.ActorSystem` (plain code) or an
:class:`~joerl.actor.ActorContext` (inside an actor).

A :class:`DynamicSupervisor` starts its children at run time instead, one
``start_child`` each (from a template with args, or from a whole spec), names
them by pid, and stops them all at once (OTP's ``simple_one_for_one``).

Import everything from here; the private modules are ``_child`` (ChildSpec),
``_strategy``, ``_intensity``, ``_server`` (the Supervisor process),
``_dynamic`` (the DynamicSupervisor process),
``_start`` (the READY handshake a start waits for), ``_client`` (starting
one, the calls, SupervisorRef) and ``_codes`` (reply error codes).
The errors live in :mod:`joerl.errors`.
"""

from __future__ import annotations

from ..errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildStartError,
    MaxChildrenReached,
    StillRunning,
    SupervisorError,
)

# Importable from here too, though not in __all__ (``X as X`` re-exports them
# for type checkers): the string constants and the Caller type.
from ._child import (
    BRUTAL_KILL as BRUTAL_KILL,
)
from ._child import (
    CHILD_TYPES as CHILD_TYPES,
)
from ._child import IGNORE, ChildInfo, ChildSpec
from ._child import (
    INFINITY as INFINITY,
)
from ._child import (
    PERMANENT as PERMANENT,
)
from ._child import (
    RESTART_TYPES as RESTART_TYPES,
)
from ._child import (
    SUPERVISOR as SUPERVISOR,
)
from ._child import (
    TEMPORARY as TEMPORARY,
)
from ._child import (
    TRANSIENT as TRANSIENT,
)
from ._child import (
    WORKER as WORKER,
)
from ._client import Caller as Caller
from ._client import (
    SupervisorRef,
    count_children,
    delete_child,
    restart_child,
    start_child,
    start_link,
    start_supervisor,
    terminate_child,
    which_children,
)
from ._client import call_supervisor as call_supervisor
from ._dynamic import DynamicSupervisor
from ._server import Supervisor
from ._strategy import (
    ONE_FOR_ALL as ONE_FOR_ALL,
)
from ._strategy import (
    ONE_FOR_ONE as ONE_FOR_ONE,
)
from ._strategy import (
    REST_FOR_ONE as REST_FOR_ONE,
)
from ._strategy import (
    STRATEGIES as STRATEGIES,
)

__all__ = [
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildStartError",
    "DynamicSupervisor",
    "IGNORE",
    "MaxChildrenReached",
    "StillRunning",
    "Supervisor",
    "SupervisorError",
    "SupervisorRef",
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "start_link",
    "start_supervisor",
    "terminate_child",
    "which_children",
]
