"""Per-token rate limits on writes: a token bucket per key, bounded in memory.

A profile posts a heartbeat every few seconds; a token posting far faster is a broken or hostile
client, and its events would crowd out everyone else's on the way to Kafka. Each key gets
``burst`` events at once and ``rate_per_s`` more every second; past that the service answers
``429`` with ``Retry-After`` (the seconds until the request would fit).
"""

from __future__ import annotations

import math
from collections import OrderedDict


class RateLimits:
    """Token buckets by key (least recently used evicted past ``max_keys``); event-loop only."""

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000) -> None:
        if rate_per_s <= 0 or burst <= 0 or max_keys <= 0:
            raise ValueError("rate_per_s, burst, max_keys: must be positive")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str, n: int, now: float) -> float:
        """Take ``n`` tokens: 0.0 when taken, else the seconds until they would be there (nothing
        is taken then). More than ``burst`` at once never fits: ``math.inf``."""
        if n > self.burst:
            return math.inf
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
        if tokens >= n:
            self._buckets[key] = (tokens - n, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (n - tokens) / self.rate_per_s
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)
