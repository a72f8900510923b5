"""A machine's declared states and transitions (beyond OTP): checking a
transition against them, and drawing them as a Mermaid ``stateDiagram-v2``.

A declaration maps ``(state, event_label)`` to the next state, or to a list
(or set) of the states it may lead to::

    transitions = {
        ("locked", "button"): ["locked", "open"],  # wrong code / right code
        ("open", "state_timeout"): "locked",
    }

The label is free text for the diagram; the machine checks only that every
state change it makes goes from a declared source to one of its declared
targets. Pure code: no runtime.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

#: One declared transition: (from, label, to).
Edge = tuple[Hashable, str, Hashable]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words Mermaid's stateDiagram grammar reads as keywords.
_RESERVED = frozenset({"state", "note", "end", "direction", "classDef", "class", "style", "as", "left", "right", "of"})


def edges(owner: str, transitions: Any) -> list[Edge]:
    """The declared transitions as (from, label, to) triples, in declaration order.

    Args:
        owner: the machine's class name, for error messages.
        transitions: the ``transitions`` mapping.

    Raises:
        TypeError: it is not a mapping of ``(state, label)`` to a state or a
            list / tuple / set of states, or a state is unhashable.
    """
    if not isinstance(transitions, Mapping):
        raise TypeError(f"{owner}.transitions must be a dict of (state, event) -> next state, got {transitions!r}")
    out: list[Edge] = []
    for key, target in transitions.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(f"{owner}.transitions: key {key!r} must be a (state, event) pair")
        source, label = key
        targets = list(target) if isinstance(target, (list, set, frozenset)) else [target]
        if not targets:
            raise TypeError(f"{owner}.transitions[{key!r}]: no target state")
        for state in (source, *targets):
            try:
                hash(state)
            except TypeError:
                raise TypeError(f"{owner}.transitions: state {state!r} is not hashable") from None
        out.extend((source, str(label), t) for t in targets)
    return out


def allowed(owner: str, transitions: Any) -> dict[Hashable, frozenset[Hashable]]:
    """For each declared source state, the states it may change to.

    Raises:
        TypeError: as :func:`edges`.
    """
    table: dict[Hashable, set[Hashable]] = {}
    for source, _label, target in edges(owner, transitions):
        table.setdefault(source, set()).add(target)
    return {source: frozenset(targets) for source, targets in table.items()}


def states(owner: str, transitions: Any, initial: Any = None) -> list[Hashable]:
    """Every declared state, the initial one first, then in order of appearance."""
    seen: dict[Hashable, None] = {}
    if initial is not None:
        seen[initial] = None
    for source, _label, target in edges(owner, transitions):
        seen.setdefault(source, None)
        seen.setdefault(target, None)
    return list(seen)


def _label(text: str) -> str:
    # One line; ';' ends a statement and '"' a quoted name in Mermaid: use its entity codes.
    return " ".join(text.split()).replace(";", "#59;").replace('"', "#quot;")


def to_mermaid(owner: str, transitions: Any, initial: Any = None) -> str:
    """The declared transitions as a Mermaid ``stateDiagram-v2`` (text, ends with a newline).

    A state whose name is a plain identifier is drawn under that name; any
    other state (spaces, punctuation, a Mermaid keyword, a non-str state) gets
    an id ``s1``, ``s2``, ... and its ``str()`` as the label. ``initial``, if
    given, gets the ``[*] -->`` arrow.

    Raises:
        TypeError: as :func:`edges`.
    """
    ids: dict[Hashable, str] = {}
    lines = ["stateDiagram-v2"]
    for n, state in enumerate(states(owner, transitions, initial), 1):
        if isinstance(state, str) and _IDENT.match(state) and state not in _RESERVED:
            ids[state] = state
        else:
            ids[state] = f"s{n}"
            lines.append(f'    state "{_label(str(state))}" as s{n}')
    if initial is not None:
        lines.append(f"    [*] --> {ids[initial]}")
    for source, label, target in edges(owner, transitions):
        text = _label(label)
        lines.append(f"    {ids[source]} --> {ids[target]}" + (f" : {text}" if text else ""))
    return "\n".join(lines) + "\n"
