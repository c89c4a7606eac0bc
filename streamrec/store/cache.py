"""A read-through cache of per-title values (genres, item vectors) that a pipeline worker reads
again and again: the titles not held (or held longer than ``ttl_s``) are read in one batched call,
a title the store does not have gets ``default(title)``. Bounded: past ``max_entries`` it starts
over (the values are cheap to read again)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadThrough(Generic[V]):
    def __init__(self, ttl_s: float, max_entries: int) -> None:
        if ttl_s < 0 or max_entries <= 0:
            raise ValueError(f"ttl_s, max_entries: need ttl_s >= 0 and max_entries > 0, got {ttl_s}, {max_entries}")
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._held: dict[str, tuple[V, float]] = {}

    def get(self, keys: Iterable[str], read: Callable[[list[str]], Mapping[str, V]],
            default: Callable[[str], V]) -> dict[str, V]:
        """Every key's value: held ones as they are, the rest from one ``read(missing)`` call."""
        now = time.monotonic()
        found: dict[str, V] = {}
        missing: list[str] = []
        for key in dict.fromkeys(keys):
            held = self._held.get(key)
            if held is not None and now - held[1] < self.ttl_s:
                found[key] = held[0]
            else:
                missing.append(key)
        if missing:
            stored = read(missing)
            if len(self._held) + len(missing) > self.max_entries:
                self._held.clear()
            for key in missing:
                value = stored[key] if key in stored else default(key)
                found[key] = value
                self._held[key] = (value, now)
        return found
