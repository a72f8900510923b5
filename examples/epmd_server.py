"""Standalone port mapper: the seed's ``examples/epmd_server.rs``, in Python.

Usage::

    python examples/epmd_server.py [ADDRESS] [--shared]

ADDRESS defaults to ``127.0.0.1:4369``. Erlang's ``erl`` and ``epmd -names``
work against it, and so do joerl nodes. Usually every host runs its own port
mapper (``0.0.0.0:4369``: other hosts look nodes up there, only this host's
nodes register). With ``--shared`` it serves a whole cluster from one daemon,
as the seed did: joerl nodes on other hosts register too, proving the
cluster's cookie (``$JOERL_COOKIE``, else ``~/.joerl.cookie``) with an HMAC.

It prints ``READY port=N`` once listening, logs every registration,
unregistration and expiry, and stops cleanly on Ctrl+C or SIGTERM. If the
address is taken it says what holds it (a port mapper, with its names, or
something else) and how to stop that (``joerl-epmd -kill``), and exits 1.
(``joerl-epmd`` is the same daemon with every option.)
"""

from __future__ import annotations

import errno
import logging
import signal
import sys

import gevent

from joerl.epmd import EpmdServer
from joerl.epmd.client import describe_listener
from joerl.node.config import load_cookie


def main(argv: list[str]) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    address = args[0] if args else "127.0.0.1:4369"
    shared = "--shared" in argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("epmd_server")
    log.info("joerl port mapper starting on %s (Ctrl+C to stop)", address)

    server = EpmdServer(address, keepalive_timeout=60.0, cookie=load_cookie() if shared else None)
    try:
        server.start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        # Say who holds the address, and how to stop it, rather than a traceback.
        print(f"epmd_server: {address} is taken: {describe_listener(address)}", file=sys.stderr)
        print("(or give this example another address: python examples/epmd_server.py 127.0.0.1:4370)", file=sys.stderr)
        return 1
    if not shared and not address.startswith(("127.", "localhost", "[::1]")):
        log.info("joerl nodes on other hosts look nodes up here; to let them register too, add --shared")
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, lambda: gevent.spawn(server.stop))
    print(f"READY port={server.port}", flush=True)
    server.serve_forever()
    log.info("bye")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
