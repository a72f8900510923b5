"""Values that compare equal to what the runtime produces, for the tests' asserts."""

from __future__ import annotations

from joerl.message import ExceptionReason


class Raised:
    """Equal to the :class:`~joerl.message.ExceptionReason` of ``type_(message)``
    raised on another node or in another OS process (whatever its traceback,
    which must be one and name it)."""

    def __init__(self, type_: str, message: str) -> None:
        self.type = type_
        self.message = message

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ExceptionReason)
            and (other.type, other.message) == (self.type, self.message)
            and other.traceback.startswith("Traceback (most recent call last):")
            and other.traceback.rstrip().endswith(f"{self.type}: {self.message}")
        )

    def __hash__(self) -> int:
        return hash((self.type, self.message))

    def __repr__(self) -> str:
        return f"Raised({self.type!r}, {self.message!r})"
