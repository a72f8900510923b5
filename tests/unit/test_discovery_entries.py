"""What the discovery loop takes from a source: valid names only, its own left out, bounded."""

from __future__ import annotations

from collections.abc import Iterator

from joerl.discovery._entries import sift


def test_valid_names_in_order_without_duplicates_or_its_own() -> None:
    entries = sift(["b@h", "a@h", "c@h", "b@h"], "a@h", 10)
    assert entries.names == ["b@h", "c@h"] and entries.invalid == 0 and not entries.truncated


def test_invalid_entries_are_counted_and_the_first_kept_for_the_log() -> None:
    entries = sift(["", None, 5, b"b@h", "a b@h", "x" * 300, "ok@h"], "me@h", 10)
    assert entries.names == ["ok@h"] and entries.invalid == 6
    assert entries.first_invalid == "''"


def test_a_long_invalid_entry_is_shortened_for_the_log() -> None:
    entries = sift(["\n" * 500], "me@h", 10)
    assert len(entries.first_invalid) == 80 and entries.first_invalid.endswith("...")


def test_the_number_of_names_is_bounded() -> None:
    entries = sift([f"n{i}@h" for i in range(5000)], "me@h", 10)
    assert len(entries.names) == 10 and entries.truncated


def test_an_endless_source_of_garbage_is_cut_short() -> None:
    read = 0

    def garbage() -> Iterator[object]:
        nonlocal read
        while True:
            read += 1
            yield ""

    entries = sift(garbage(), "me@h", 10)
    assert entries.names == [] and entries.truncated and read <= 41


def test_exactly_the_bound_is_not_truncated() -> None:
    entries = sift([f"n{i}@h" for i in range(10)], "me@h", 10)
    assert len(entries.names) == 10 and not entries.truncated


def test_a_name_without_host_gets_this_nodes_host() -> None:
    entries = sift(["b", "c@other", "a"], "a@here", 10)
    assert entries.names == ["b@here", "c@other"]
