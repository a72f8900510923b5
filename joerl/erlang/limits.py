"""The bounds of the External Term Format decoder (pure)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .terms import MAX_ATOM_CHARS

__all__ = ["DEFAULT_LIMITS", "VERSION", "EtfLimits"]

#: The version byte every standalone term starts with.
VERSION = 131
_MiB = 1024 * 1024


@dataclass(frozen=True)
class EtfLimits:
    """Bounds on what a :class:`Decoder` accepts (and the encoder's depth).

    Attributes:
        max_bytes: longest input, in bytes (8 MiB; a compressed term's
            uncompressed size counts).
        max_depth: deepest nesting of tuples, lists and maps (128).
        max_atom_chars: longest atom, in characters (255, Erlang's own limit).
        max_container_len: most elements in one tuple or list, or pairs in one
            map (1 Mi).
        max_big_bytes: largest bignum magnitude, in bytes (2048: 16 Kibit).
    """

    max_bytes: int = 8 * _MiB
    max_depth: int = 128
    max_atom_chars: int = MAX_ATOM_CHARS
    max_container_len: int = 1 << 20
    max_big_bytes: int = 2048

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 1:
                raise ValueError(f"EtfLimits.{f.name} must be a positive int, got {value!r}")
        if self.max_depth > 200:
            raise ValueError(f"EtfLimits.max_depth must be at most 200, got {self.max_depth}")


DEFAULT_LIMITS = EtfLimits()
