"""Erlang interop (sans-IO): the External Term Format codec, the
distribution handshake (version 6) and the control messages.

See docs/erlang.md. Nothing here opens a socket or imports gevent.
"""
