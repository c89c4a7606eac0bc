"""Ranking metrics for one held-out title per scored event, as pure functions.

A scored event is summarised by the 1-based rank of the title about to be watched in the served
list, or 0 when it is not in it. With a single relevant title the ideal DCG is 1, so
NDCG@k = 1/log2(rank + 1); MRR is the mean of 1/rank with misses counting 0 (MRR@k, since lists
are k long); HR@k is the share of events whose title is in the list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def rank_of(target: str, served: Sequence[str]) -> int:
    """1-based position of ``target`` in ``served``; 0 when absent."""
    for position, item in enumerate(served, start=1):
        if item == target:
            return position
    return 0


def hit_rate(ranks: Sequence[int] | np.ndarray) -> float:
    r = np.asarray(ranks, dtype=np.int64)
    return float(np.mean(r > 0)) if r.size else math.nan


def ndcg(ranks: Sequence[int] | np.ndarray) -> float:
    r = np.asarray(ranks, dtype=np.float64)
    if not r.size:
        return math.nan
    gains = np.zeros_like(r)
    hit = r > 0
    gains[hit] = 1.0 / np.log2(r[hit] + 1.0)
    return float(gains.mean())


def mrr(ranks: Sequence[int] | np.ndarray) -> float:
    r = np.asarray(ranks, dtype=np.float64)
    if not r.size:
        return math.nan
    recip = np.zeros_like(r)
    hit = r > 0
    recip[hit] = 1.0 / r[hit]
    return float(recip.mean())


def coverage(served: set[str], catalog_size: int) -> float:
    """Share of the log's distinct titles that appeared in at least one served list."""
    if catalog_size <= 0:
        raise ValueError("catalog_size must be positive")
    return len(served) / catalog_size


def rolling_hit_rate(ranks: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean of hits over the last ``window`` scored events (shorter at the start)."""
    if window <= 0:
        raise ValueError("window must be positive")
    hits = (np.asarray(ranks) > 0).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(hits)])
    ends = np.arange(1, hits.size + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)
