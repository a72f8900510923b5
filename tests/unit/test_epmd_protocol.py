"""The facade joerl.epmd.protocol: every name it exported before the split, the same objects as
in the modules that define them, and the exceptions importable where users import them."""

from __future__ import annotations

from _epmd_vectors import (  # tests/unit/_epmd_vectors.py
    NODE,
)

from joerl.epmd import protocol as p
from joerl.epmd.protocol import (
    NodeInfo,
)

# What joerl.epmd.protocol.__all__ held before it was split per protocol.
EXPORTED_BEFORE_THE_SPLIT = """
ALIVE2_REQ ALIVE2_RESP ALIVE2_X_RESP DEFAULT_PORT DUMP_REQ KILL_REQ MAX_EXTRA MAX_EXT_LEN MAX_METADATA
MAX_NAME_BYTES MAX_REQUEST_LEN NAMES_REQ NODE_TYPE_HIDDEN NODE_TYPE_NORMAL OP_JOERL PORT2_RESP PORT_PLEASE2_REQ
STOP_REQ Alive2Rejected Alive2Req Alive2Resp ClassicReplyDecoder DumpReq DumpResp EpmdProtocolError ExtError
ExtReplyDecoder InvalidName KeepAlive KeepAliveAck KillReq KillResp ListNodes Lookup LookupResult NamesReq
NamesResp NodeInfo NodeList Ping Pong Port2Resp PortPlease2Req Register Registered RequestDecoder StopReq
StopResp UnknownExt Unregister Unregistered check_name decode_request_body encode_dump encode_names
format_address parse_address
""".split()


def test_the_facade_exports_every_name_it_exported() -> None:
    assert set(EXPORTED_BEFORE_THE_SPLIT) <= set(p.__all__)
    for name in p.__all__:
        assert hasattr(p, name), name
    for name in ("MAX_HOST_BYTES", "MAX_NAME_CHARS", "MAX_DEPTH", "ALIVE2_ERROR_CREATION", "Request", "ExtReply"):
        assert hasattr(p, name), name


def test_the_facade_re_exports_the_defining_modules_objects() -> None:
    from joerl import address, errors
    from joerl.epmd import _classic, _classic_reply, _ext, _node, _requests, _wire

    assert p.parse_address is address.parse_address and p.format_address is address.format_address
    assert p.Alive2Req is _classic.Alive2Req and p.ClassicReplyDecoder is _classic_reply.ClassicReplyDecoder
    assert p.Register is _ext.Register and p.NodeInfo is _node.NodeInfo
    assert p.RequestDecoder is _requests.RequestDecoder and p.check_name is _wire.check_name
    assert p.EpmdProtocolError is errors.EpmdProtocolError and p.InvalidName is errors.InvalidName


def test_exceptions_importable_where_users_import_them() -> None:
    import joerl.epmd as epmd
    from joerl import errors
    from joerl.epmd import client

    for name in ("EpmdConnectionError", "EpmdTimeout", "NameInUse", "RegistrationRefused", "EpmdClientClosed"):
        assert getattr(epmd, name) is getattr(client, name) is getattr(errors, name)
    assert epmd.EpmdProtocolError is errors.EpmdProtocolError and epmd.InvalidName is errors.InvalidName


def test_sans_io_modules_import_no_gevent_and_no_socket() -> None:
    import ast
    import pathlib

    import joerl.epmd

    root = pathlib.Path(joerl.epmd.__file__).parent
    for mod in (
        "_wire",
        "_node",
        "_classic",
        "_classic_reply",
        "_ext",
        "_requests",
        "protocol",
        "_table",
        "_admission",
        "_classic_service",
        "_ext_service",
    ):
        tree = ast.parse((root / f"{mod}.py").read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not any(n.split(".")[0] in ("gevent", "socket") for n in names), (mod, names)


def test_the_facade_uses_the_one_address_parser() -> None:
    from joerl import address

    assert p.parse_address is address.parse_address and p.format_address is address.format_address


def test_format_address_and_node_address() -> None:
    assert p.format_address("::1", 5) == "[::1]:5"
    assert NODE.address == "10.0.0.1:5000"
    assert NodeInfo("n", "", 1).with_host("h").host == "h"
