"""The restart strategies: which of a supervisor's children restart together
when one of them ends."""

from __future__ import annotations

from typing import Any

from ._child import Child

ONE_FOR_ONE = "one_for_one"
ONE_FOR_ALL = "one_for_all"
REST_FOR_ONE = "rest_for_one"

STRATEGIES = (ONE_FOR_ONE, ONE_FOR_ALL, REST_FOR_ONE)


def check_strategy(strategy: Any) -> None:
    """Raises ValueError unless ``strategy`` is one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown supervisor strategy {strategy!r}; expected one of {STRATEGIES}")


def restart_group(strategy: str, children: list[Child], child: Child) -> list[Child]:
    """The children that restart, in start order, because ``child`` ended.

    ``one_for_one``: ``child`` alone. ``one_for_all``: ``child`` and every
    other child; ``rest_for_one``: ``child`` and the children started after
    it. Of the others, only those running or waiting for a (re)start count:
    one stopped with ``terminate_child`` stays stopped.

    Args:
        children: all of the supervisor's children, in start order.
    """
    if strategy == ONE_FOR_ONE:
        return [child]
    first = 0 if strategy == ONE_FOR_ALL else children.index(child)
    return [c for c in children[first:] if c is child or c.pid is not None or c.restarting]
