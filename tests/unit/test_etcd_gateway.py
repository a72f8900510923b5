"""The etcd gateway's watch stream is split into lines with a bound on each."""

from __future__ import annotations

import io

import pytest

from joerl.discovery._etcd_gateway import EtcdError, _lines


def test_lines_are_split_across_reads_and_blank_lines_skipped() -> None:
    stream = io.BytesIO(b'{"a": 1}\n\n{"b": 2}\n{"c"')
    assert list(_lines(stream.read, limit=100)) == [b'{"a": 1}', b'{"b": 2}']


def test_an_endless_line_is_refused_before_it_is_buffered_whole() -> None:
    reads = 0

    def endless(n: int) -> bytes:
        nonlocal reads
        reads += 1
        return b"x" * n

    with pytest.raises(EtcdError, match="over the reply limit"):
        list(_lines(endless, limit=1000))
    assert reads == 1001
