"""Keep the smallest stream: the one place where srnsz chooses between finished encodings of the same data."""

from __future__ import annotations

from collections.abc import Sequence


def smallest(streams: Sequence[bytes]) -> bytes:
    """The shortest of ``streams`` (finished containers of the same data); the first on ties, so callers list
    the encoding they prefer first (the one the user asked for)."""
    return min(streams, key=len)
