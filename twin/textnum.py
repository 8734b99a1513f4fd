"""Numbers as text in the files we write."""

from __future__ import annotations

__all__ = ["shortest"]


def shortest(v: float) -> str:
    """The shortest decimal text that reads back as exactly ``v`` (``5`` rather than ``5.0``)."""
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s
