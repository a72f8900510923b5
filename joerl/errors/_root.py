"""The root of the tree."""

from __future__ import annotations


class JoerlError(Exception):
    """Root of every exception joerl raises."""
