"""Trending and decay helpers: top-N from counts (ties by id), per genre, and exponential decay.

Pure functions, no I/O. The pipelines count watches per (region, item) in sliding event-time
windows and call :func:`top_n` to cut each window to its trending list and :func:`top_per_genre`
for its genre lists; the feed's rows and its cold-start fallback read those lists. The
evaluation's streamrec adapter keeps a decayed trending list with :func:`decayed_add`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping

from streamrec.store.base import ScoredItem


def top_n(counts: Mapping[str, float], n: int) -> list[ScoredItem]:
    """The ``n`` highest counts, best first; equal counts ordered by ``video_id`` ascending.

    Raises ``ValueError`` if ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    best = heapq.nsmallest(n, counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [ScoredItem(video_id, float(score)) for video_id, score in best]


def top_per_genre(counts: Mapping[str, float], genres: Mapping[str, Iterable[str]], n: int) -> dict[str, list[ScoredItem]]:
    """Per genre, the ``n`` highest counts among titles of that genre (a title counts for each of
    its genres; titles without genres for none), ordered as :func:`top_n`."""
    by_genre: dict[str, dict[str, float]] = {}
    for video_id, count in counts.items():
        for genre in genres.get(video_id, ()):
            by_genre.setdefault(genre, {})[video_id] = count
    return {genre: top_n(genre_counts, n) for genre, genre_counts in by_genre.items()}


def decay_factor(age_ms: float, half_life_ms: float) -> float:
    """``0.5 ** (age / half_life)``: 1.0 for age <= 0 (future timestamps are not boosted)."""
    if half_life_ms <= 0:
        raise ValueError(f"half_life_ms: must be > 0, got {half_life_ms}")
    if age_ms <= 0:
        return 1.0
    return math.exp(-math.log(2.0) * age_ms / half_life_ms)


def decayed_add(score: float, score_ts: int, amount: float, ts: int, half_life_ms: float) -> tuple[float, int]:
    """Add ``amount`` observed at ``ts`` to a decayed ``score`` last brought up to date at
    ``score_ts``; returns ``(new_score, new_ts)`` with ``new_ts = max(score_ts, ts)``.

    A late observation (``ts < score_ts``) is decayed to the score's time instead of moving the
    score back, so the result does not depend on arrival order.
    """
    if ts >= score_ts:
        return score * decay_factor(ts - score_ts, half_life_ms) + amount, ts
    return score + amount * decay_factor(score_ts - ts, half_life_ms), score_ts
