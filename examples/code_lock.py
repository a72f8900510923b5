"""OTP's code lock as a GenStatem: buttons are pressed one digit at a time;
the right code opens the door, which locks again by itself on a state timeout.

Shows state functions, a state enter call, the state timeout (set on entering
``open``, cancelled by leaving it), an event timeout that forgets a half-typed
code, postponing (a ``lock_now`` call while locked waits until the door has
been opened), and the declared transitions drawn as a Mermaid diagram.

Run: ``python examples/code_lock.py`` (it ends by itself and exits 0).
"""

from __future__ import annotations

from typing import Any

import gevent
from gevent.event import Event

from joerl import gen_statem
from joerl.gen_statem import EventTimeout, GenStatem, KeepState, NextState, Postpone, Reply, StateTimeout
from joerl.system import ActorSystem


class CodeLock(GenStatem):
    """Calls: ("button", digit) -> "locked" / "open"; "lock_now". Casts: none."""

    state_enter = True
    initial_state = "locked"
    transitions = {
        ("locked", "button (right code)"): "open",
        ("open", "state_timeout / lock_now"): "locked",
    }

    def __init__(self, code: str, open_for: float) -> None:
        self.code = code
        self.open_for = open_for
        self.relocked = Event()

    def init(self, args: Any) -> Any:
        return ("locked", "")  # data: the digits typed so far

    def locked(self, event_type: Any, content: Any, typed: str) -> Any:
        if event_type == "enter":
            print(f"  [lock] locked (came from {content})")
            if content == "open":
                self.relocked.set()
            return KeepState("")
        if event_type == "timeout":  # nobody pressed a button for a while
            print(f"  [lock] forgot the half-typed code {typed!r}")
            return KeepState("")
        from_ = event_type[1]
        if content == "lock_now":
            return KeepState(actions=[Postpone()])  # retried once the state changes
        typed += content[1]
        if typed == self.code:
            return NextState("open", "", [Reply(from_, "open")])
        if not self.code.startswith(typed):
            typed = ""
        return KeepState(typed, [Reply(from_, "locked"), EventTimeout(0.5, "forget")])

    def open(self, event_type: Any, content: Any, typed: str) -> Any:
        if event_type == "enter":
            print(f"  [lock] open for {self.open_for}s")
            return KeepState(actions=[StateTimeout(self.open_for, "lock")])
        if event_type == "state_timeout":
            print("  [lock] state timeout: locking")
            return NextState("locked")
        from_ = event_type[1]
        if content == "lock_now":
            print("  [lock] lock_now")
            return NextState("locked", actions=[Reply(from_, "locked")])
        return KeepState(actions=[Reply(from_, "open")])


def press(lock: gen_statem.GenStatemRef, digits: str) -> str:
    answer = ""
    for digit in digits:
        answer = lock.call(("button", digit))
    return answer


def main() -> int:
    system = ActorSystem("code_lock")
    machine = CodeLock("1234", open_for=0.2)
    lock = gen_statem.start(system, machine)
    print("1. wrong code:", press(lock, "99"))
    print("2. right code:", press(lock, "1234"))
    assert machine.relocked.wait(5), "the door did not lock again by itself"
    print("3. relocked by its state timeout")
    machine.relocked.clear()

    # A lock_now call while locked is postponed: it is answered once the door
    # has opened (the state changed) and it locks it at once.
    pending = gevent.spawn(lock.call, "lock_now")
    print("4. right code again:", press(lock, "1234"))
    print("5. the postponed lock_now answered:", pending.get(timeout=5))
    assert machine.relocked.wait(5)
    print("6. diagram:")
    print(CodeLock.to_mermaid(), end="")
    assert lock.stop()
    system.shutdown()
    print("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
