"""Pid and Ref: immutable, hashable value types with validated ranges."""

from __future__ import annotations

import copy

import pytest

from joerl.pid import Pid, Ref
from joerl.system import SYSTEM_PID, ActorSystem

U32 = 2**32 - 1
U64 = 2**64 - 1


def test_fields_and_defaults() -> None:
    pid = Pid(0, 123)
    assert (pid.node, pid.id, pid.creation) == (0, 123, 0)
    assert Pid() == Pid(0, 0, 0)


def test_str_and_repr() -> None:
    assert str(Pid(0, 123)) == "<0.123.0>"
    assert str(Pid.with_node(42, 100)) == "<42.100.0>"
    assert str(Pid(7, 8, 9)) == "<7.8.9>"
    assert repr(Pid(1, 2, 3)) == "<1.2.3>"  # one printed form: joerl's own
    assert str(Ref(0, 5, 1)) == "#Ref<0.5.1>"
    assert repr(Ref(0, 5, 1)) == "#Ref<0.5.1>"
    assert f"{[Pid(1, 2, 3)]}" == "[<1.2.3>]"


def test_with_node() -> None:
    pid = Pid.with_node(42, 100)
    assert (pid.node, pid.id, pid.creation) == (42, 100, 0)
    assert Pid.with_node(42, 100, 3).creation == 3
    assert type(Ref.with_node(1, 2)) is Ref
    moved = Pid(0, 9, 1).with_node_id(5)
    assert moved == Pid(5, 9, 1)
    assert Pid(0, 9, 1).with_node_id(5, 7) == Pid(5, 9, 7)


def test_is_local() -> None:
    assert Pid(0, 1).is_local()
    assert not Pid.with_node(42, 1).is_local()
    assert SYSTEM_PID.is_local()


def test_extreme_values_accepted() -> None:
    pid = Pid(U32, U64, U32)
    assert str(pid) == f"<{U32}.{U64}.{U32}>"


@pytest.mark.parametrize(
    "args, field",
    [
        ((-1, 0, 0), "node"),
        ((U32 + 1, 0, 0), "node"),
        ((0, -1, 0), "id"),
        ((0, U64 + 1, 0), "id"),
        ((0, 0, -1), "creation"),
        ((0, 0, U32 + 1), "creation"),
    ],
)
@pytest.mark.parametrize("cls", [Pid, Ref])
def test_out_of_range_raises_value_error(cls: type, args: tuple[int, int, int], field: str) -> None:
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field} must be in 0\.\.\d+, got -?\d+"):
        cls(*args)


@pytest.mark.parametrize("bad", ["1", 1.0, None, True, b"\x01"])
@pytest.mark.parametrize("position", [0, 1, 2])
def test_non_int_raises_type_error(bad: object, position: int) -> None:
    args: list[object] = [0, 1, 0]
    args[position] = bad
    with pytest.raises(TypeError, match=r"Pid\.(node|id|creation) must be an int"):
        Pid(*args)  # type: ignore[arg-type]


def test_with_node_validates() -> None:
    with pytest.raises(ValueError):
        Pid.with_node(U32 + 1, 1)
    with pytest.raises(ValueError):
        Pid(0, 1).with_node_id(-1)


def test_equality_and_hash() -> None:
    a, b = Pid(1, 2, 3), Pid(1, 2, 3)
    assert a == b and not (a != b)
    assert hash(a) == hash(b)
    assert len({a, b, Pid(1, 2, 4)}) == 2
    assert {a: "x"}[b] == "x"
    for other in (Pid(0, 2, 3), Pid(1, 0, 3), Pid(1, 2, 0)):
        assert a != other


def test_pid_and_ref_never_equal() -> None:
    assert Pid(0, 1, 0) != Ref(0, 1, 0)
    assert Ref(0, 1, 0) != Pid(0, 1, 0)
    assert len({Pid(0, 1, 0), Ref(0, 1, 0)}) == 2
    assert Pid(0, 1, 0) != (0, 1, 0)
    assert Pid(0, 1, 0) != "<0.1.0>"


def test_ordering() -> None:
    assert sorted([Pid(1, 0), Pid(0, 5), Pid(0, 2, 1), Pid(0, 2)]) == [Pid(0, 2), Pid(0, 2, 1), Pid(0, 5), Pid(1, 0)]
    with pytest.raises(TypeError):
        _ = Pid(0, 1) < Ref(0, 2)  # type: ignore[operator]


@pytest.mark.parametrize("value", [Pid(1, 2, 3), Ref(1, 2, 3)])
def test_immutable(value: Pid | Ref) -> None:
    for field in ("node", "id", "creation", "other"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(value, field, 9)
        with pytest.raises(AttributeError, match="immutable"):
            delattr(value, field)
    assert not hasattr(value, "__dict__")
    assert (value.node, value.id, value.creation) == (1, 2, 3)


def test_copy_returns_same_object() -> None:
    pid = Pid(1, 2, 3)
    assert copy.copy(pid) is pid
    assert copy.deepcopy({"p": pid})["p"] is pid


def test_ref_fields() -> None:
    ref = Ref(0, 10, 2)
    assert (ref.node, ref.id, ref.creation) == (0, 10, 2)
    assert ref.is_local()
    assert hash(ref) == hash(Ref(0, 10, 2))


def test_spawned_pids_are_local_unique_and_never_reused() -> None:
    with ActorSystem() as system:
        seen: set[Pid] = set()
        last = 0
        for _batch in range(10):
            refs = [system.spawn_fn(lambda ctx: None) for _ in range(1000)]
            for ref in refs:
                pid = ref.pid
                assert pid.is_local() and pid.creation == 0
                assert pid != SYSTEM_PID
                assert pid.id > last, "pid ids must only grow"
                last = pid.id
                assert pid not in seen
                seen.add(pid)
            for ref in refs:
                assert ref.join(2.0)
        assert len(seen) == 10_000
        assert system.processes() == []
        # after 10k dead processes a new one still gets a fresh pid
        fresh = system.spawn_fn(lambda ctx: None)
        assert fresh.pid not in seen
        assert fresh.join(2.0)


def test_refs_are_unique() -> None:
    with ActorSystem() as system:
        refs = {system.make_ref() for _ in range(1000)}
        assert len(refs) == 1000
        assert all(isinstance(r, Ref) and r.is_local() for r in refs)
