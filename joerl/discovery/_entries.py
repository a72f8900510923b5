"""What a source answered, made safe: valid node names only, this node's left out, a bounded number.

Pure: no IO. The one check of a node name is the node layer's own
(:func:`joerl.node.names.node_name`, which ``connect_to_node`` applies too),
so a name the loop lets through is one the node can dial; a name without
``@host`` gets this node's host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice

from ..node.names import node_name

__all__ = ["Entries", "check_node_name", "sift"]


def check_node_name(entry: object, host: str | None = None) -> str:
    """``entry`` as a full node name the node can dial (``host``: the host of a name without one).

    Raises:
        InvalidNodeName: it is not one (a ValueError).
    """
    return node_name(entry, host=host)


@dataclass
class Entries:
    """One answer of a source, sifted.

    Attributes:
        names: the valid names, in the source's order, without duplicates or this node's.
        invalid: entries that are no node name.
        first_invalid: the first of them, for the log (its repr, shortened).
        truncated: True when the source gave more than the bound (the rest were not read).
    """

    names: list[str] = field(default_factory=list)
    invalid: int = 0
    first_invalid: str = ""
    truncated: bool = False


def sift(answer: Iterable[object], own_name: str, max_nodes: int) -> Entries:
    """Validate and bound a source's ``answer``.

    At most ``max_nodes`` valid names are taken, and at most ``4 * max_nodes``
    entries are read (so that an endless source of garbage is cut short too).

    Args:
        answer: what the source answered (anything iterable).
        own_name: this node's name (left out).
        max_nodes: the most names to take.

    Returns:
        The sifted :class:`Entries`.
    """
    out = Entries()
    seen: set[str] = set()
    host = own_name.partition("@")[2] or None
    read = 0
    for entry in islice(answer, 4 * max_nodes + 1):
        read += 1
        if read > 4 * max_nodes or len(out.names) >= max_nodes:
            out.truncated = True
            break
        try:
            name = check_node_name(entry, host)
        except ValueError:
            out.invalid += 1
            if not out.first_invalid:
                text = repr(entry)
                out.first_invalid = text if len(text) <= 80 else text[:77] + "..."
            continue
        if name != own_name and name not in seen:
            seen.add(name)
            out.names.append(name)
    return out
