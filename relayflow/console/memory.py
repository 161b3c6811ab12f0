"""Bounded memory for what the console keeps between requests (sign-in failures, pages' caches)."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["REMEMBERED", "remember"]

T = TypeVar("T")

REMEMBERED = 10_000
"""Most entries a cache of the console keeps (the oldest go first)."""


def remember(cache: dict[str, T], key: str, value: T) -> None:
    """Keep ``value`` in ``cache``, forgetting the oldest entry when it is full."""
    if len(cache) >= REMEMBERED:
        cache.pop(next(iter(cache)))
    cache[key] = value
