"""``joerl-epmd [ADDRESS]`` and ``python -m joerl.epmd [ADDRESS]``: run the port mapper.

This module owns the command line: options, logging set-up (an application
may configure logging; the library never does), ``--daemon`` detaching, and
a clean stop on SIGINT/SIGTERM. Once listening it prints one line
``READY port=N pid=P`` on standard output, for scripts and supervisors.

``-names``, ``-kill`` and ``-stop NAME`` ask a running daemon instead (joerl's
or Erlang's), and print what Erlang's ``epmd`` prints for them.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import select
import signal
import sys
from collections.abc import Sequence

from ..errors import EpmdError
from .client import EpmdClient, describe_listener
from .protocol import DEFAULT_PORT, parse_address
from .server import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_PER_ADDRESS,
    DEFAULT_RATE_PER_ADDRESS,
    DEFAULT_REQUEST_TIMEOUT,
    EpmdServer,
)

__all__ = ["main", "build_parser"]


def _default_address() -> str:
    port = os.environ.get("ERL_EPMD_PORT", "").strip()
    return f"127.0.0.1:{port if port.isdigit() else DEFAULT_PORT}"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="joerl-epmd",
        description="joerl's port mapper: serves Erlang's EPMD protocol (erl, epmd -names) "
        "and joerl's extension (host and metadata) on one table.",
    )
    ap.add_argument(
        "address",
        nargs="?",
        default=None,
        help="HOST:PORT to listen on (default every interface, 0.0.0.0:4369 or 0.0.0.0:$ERL_EPMD_PORT, "
        "as Erlang's epmd: other hosts look nodes up here; registrations come from this host only)",
    )
    ap.add_argument(
        "--keepalive-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="drop a joerl registration after S seconds without keep-alive (default 60)",
    )
    ap.add_argument(
        "--packet-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="close an unregistered connection idle for S seconds (default 60, as epmd)",
    )
    ap.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="S",
        help=f"close a new connection that sent no whole request within S seconds (default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    ap.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help=f"connections served at once (default {DEFAULT_MAX_CONNECTIONS})",
    )
    ap.add_argument(
        "--max-per-address",
        type=int,
        default=DEFAULT_MAX_PER_ADDRESS,
        metavar="N",
        help=f"connections at once from one remote address (default {DEFAULT_MAX_PER_ADDRESS})",
    )
    ap.add_argument(
        "--rate-per-address",
        type=float,
        default=DEFAULT_RATE_PER_ADDRESS,
        metavar="R",
        help=f"new connections per second from one remote address (default {DEFAULT_RATE_PER_ADDRESS:g})",
    )
    ap.add_argument("--limit-loopback", action="store_true", help="apply the per-address limits to loopback peers too")
    ap.add_argument("--loopback", action="store_true", help="listen on 127.0.0.1 only (no lookups from other hosts)")
    ap.add_argument(
        "--shared",
        action="store_true",
        help="one port mapper for the whole cluster: also accept registrations from other hosts that prove the "
        "cluster's cookie with an HMAC (cookie: $JOERL_COOKIE, else --cookie-file, else ~/.joerl.cookie)",
    )
    ap.add_argument("--cookie-file", default=None, metavar="PATH", help="the cluster's cookie file, with --shared")
    ap.add_argument("--allow-remote-register", action="store_true", help=argparse.SUPPRESS)  # gone: explains --shared
    ap.add_argument(
        "--relaxed-command-check",
        "-relaxed_command_check",
        action="store_true",
        default=bool(os.environ.get("ERL_EPMD_RELAXED_COMMAND_CHECK")),
        help="obey KILL with live names, and STOP (as epmd -relaxed_command_check)",
    )
    ap.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="log level (default info)",
    )
    ap.add_argument(
        "--log-file",
        default=None,
        metavar="PATH",
        help="log to PATH instead of standard error (with --daemon: else no log)",
    )
    ap.add_argument(
        "--daemon", action="store_true", help="detach (as epmd -daemon); exits once the daemon listens, or fails"
    )
    ask = ap.add_argument_group(
        "asking a running port mapper instead (as epmd's options; ADDRESS or -port says which; "
        "KILL and STOP are obeyed only from the daemon's host)"
    )
    ask.add_argument("-names", "--names", action="store_true", help="list the registered names and their ports")
    ask.add_argument(
        "-kill", "--kill", action="store_true", help="make the daemon exit (refused while names are registered)"
    )
    ask.add_argument(
        "-stop", "--stop", metavar="NAME", default=None, help="make the daemon forget NAME (a relaxed daemon only)"
    )
    ask.add_argument("-port", "--port", type=int, default=None, metavar="N", help="the daemon at 127.0.0.1:N")
    return ap


def _ask(args: argparse.Namespace, address: str) -> int:
    """-names, -kill or -stop NAME against the daemon at ``address``, printed as epmd prints them."""
    client = EpmdClient(address)
    try:
        if args.names:
            names = client.names()
            print(f"epmd: up and running on port {client.port} with data:")
            for name, port in names:
                print(f"name {name} at port {port}")
        elif args.kill:
            if not client.kill():
                print("Killing not allowed - living nodes in database.")
                return 1
            print("Killed")
        else:
            print("STOPPED" if client.stop(args.stop) else "NOEXIST")
    except EpmdError as exc:
        print(f"joerl-epmd: {exc}", file=sys.stderr)
        return 1
    return 0


def _configure_logging(level: str, path: str | None, daemon: bool) -> None:
    handler: logging.Handler
    if path:
        handler = logging.FileHandler(path)
    elif daemon:
        handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s joerl-epmd %(levelname)s %(message)s"))
    root = logging.getLogger("joerl")
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))


def _detach() -> int | None:
    """Fork twice (as epmd -daemon). In the original process: wait for the
    daemon's report, print it and return the exit code. In the daemon:
    return None, with the report pipe's write end in ``_REPORT_FD``."""
    global _REPORT_FD
    r, w = os.pipe()
    if os.fork() > 0:
        os.close(w)
        report = b""
        while not report.endswith(b"\n"):
            ready, _, _ = select.select([r], [], [], 30.0)
            if not ready:
                break
            chunk = os.read(r, 4096)
            if not chunk:
                break
            report += chunk
        os.close(r)
        text = report.decode("utf-8", "replace").strip()
        if text.startswith("READY"):
            print(text, flush=True)
            return 0
        print(f"joerl-epmd: {text or 'the daemon exited before listening'}", file=sys.stderr, flush=True)
        return 1
    os.close(r)
    os.setsid()
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    _REPORT_FD = w
    return None


_REPORT_FD: int | None = None


def _report(line: str) -> None:
    global _REPORT_FD
    if _REPORT_FD is None:
        print(line, flush=True)
        return
    try:
        os.write(_REPORT_FD, (line + "\n").encode())
    finally:
        os.close(_REPORT_FD)
        _REPORT_FD = None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the daemon until SIGINT, SIGTERM or a KILL request; return the exit code."""
    args = build_parser().parse_args(argv)
    address = args.address or (f"127.0.0.1:{args.port}" if args.port is not None else _default_address())
    try:
        parse_address(address)
    except ValueError as exc:
        print(f"joerl-epmd: {exc}", file=sys.stderr)
        return 2
    if args.names or args.kill or args.stop is not None:
        return _ask(args, address)
    if args.allow_remote_register:
        print(
            "joerl-epmd: --allow-remote-register is gone (anyone reaching the port could claim or move any name); "
            "run one port mapper for the whole cluster with --shared: registrations from other hosts must then "
            "prove the cluster's cookie with an HMAC",
            file=sys.stderr,
        )
        return 2
    if args.address is None and not args.loopback:
        address = f"0.0.0.0:{parse_address(address)[1]}"  # every interface, as Erlang's epmd
    cookie = None
    if args.shared:
        from ..errors import CookieFileError
        from ..node.config import load_cookie

        try:
            cookie = load_cookie(None, args.cookie_file)
        except CookieFileError as exc:
            print(f"joerl-epmd: --shared needs the cluster's cookie: {exc}", file=sys.stderr)
            return 2
    log_file = os.path.abspath(args.log_file) if args.log_file else None
    if args.daemon:
        code = _detach()
        if code is not None:
            return code
    _configure_logging(args.log_level, log_file, args.daemon)

    import gevent

    if args.daemon:
        gevent.reinit()
    server = EpmdServer(
        address,
        keepalive_timeout=args.keepalive_timeout,
        packet_timeout=args.packet_timeout,
        request_timeout=args.request_timeout,
        max_connections=args.max_connections,
        cookie=cookie,
        relaxed_command_check=args.relaxed_command_check,
        max_per_address=args.max_per_address,
        rate_per_address=args.rate_per_address,
        limit_loopback=args.limit_loopback,
    )
    try:
        server.start()
    except OSError as exc:
        message = f"cannot listen on {address}: {exc.strerror or exc}"
        if exc.errno == errno.EADDRINUSE:
            message += f"; {describe_listener(address)}"
        if args.daemon:
            _report(f"ERROR {message}")
        else:
            print(f"joerl-epmd: {message}", file=sys.stderr)
        return 1

    def on_signal(signum: int) -> None:
        logging.getLogger("joerl.epmd").info("received %s, stopping", signal.Signals(signum).name)
        gevent.spawn(server.stop)

    handlers = [gevent.signal_handler(s, on_signal, s) for s in (signal.SIGINT, signal.SIGTERM)]
    _report(f"READY port={server.port} pid={os.getpid()}")
    try:
        server.serve_forever()
    finally:
        for h in handlers:
            h.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
