"""The web observer: a small live web application served from inside a node, like OTP's observer.

``serve(node)`` starts it (opt-in; bound to 127.0.0.1 by default; an
optional token) and returns an :class:`Observer` with its ``url``. Its pages:
the cluster's nodes with their link stats; a node's processes, sortable and
filterable, updating live; a process's page (links, monitors, mailbox, a
GenServer's state, its supervisor); the supervision trees; and the message
rate and process count over the last minutes. The front end is plain
JavaScript with uPlot for the charts, vendored in ``static/vendor/`` with
its licence: nothing is fetched from the network. ``joerl observer NODE``
runs one on a hidden node. It turns on the message counts of the nodes it
shows (the rates need them). See docs/operations.md, "The web observer".
"""

from __future__ import annotations

from ._server import Observer, serve
from ._source import parse_pid

__all__ = ["Observer", "parse_pid", "serve"]
