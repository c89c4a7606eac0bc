"""Trending and decay helpers: top-N from counts (ties by id), per genre, and exponential decay.

Pure functions, no I/O. The pipelines count watches per (region, item) in sliding event-time
windows and call :func:`top_n` to cut each window to its trending list and :func:`top_per_genre`
for its genre lists; the feed's rows and its cold-start fallback read those lists. The
evaluation's streamrec adapter keeps a decayed trending list in :class:`DecayedCounts`.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping

from streamrec.model import ScoredItem


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


class DecayedCounts:
    """Exponentially decayed counts of many titles, cheap to keep and to rank.

    Every count decays by the same factor, so each is kept at a common reference time instead of
    its own: a watch at ``ts`` adds ``amount * 2 ** ((ts - ref) / half_life)``, and the counts at
    ``now`` are the kept values times ``2 ** (-(now - ref) / half_life)``. Adding costs one
    ``exp`` per watch and reading one multiplication per title (:func:`decayed_add` per title
    cost an ``exp`` each time). Same values as :func:`decayed_add`, in any order of arrival;
    the reference moves forward before the kept values could overflow.
    """

    _REBASE_AT = 600.0  # natural-log exponent past which the reference moves (exp(600) ~ 1e260)

    def __init__(self, half_life_ms: float) -> None:
        if half_life_ms <= 0:
            raise ValueError(f"half_life_ms: must be > 0, got {half_life_ms}")
        self.rate = math.log(2.0) / half_life_ms
        self.ref_ms: int | None = None
        self.kept: dict[str, float] = {}

    def add(self, video_id: str, amount: float, ts: int) -> None:
        if self.ref_ms is None:
            self.ref_ms = ts
        exponent = self.rate * (ts - self.ref_ms)
        if exponent > self._REBASE_AT:
            self._rebase(ts)
            exponent = 0.0
        self.kept[video_id] = self.kept.get(video_id, 0.0) + amount * math.exp(exponent)

    def _rebase(self, ref_ms: int) -> None:
        assert self.ref_ms is not None
        factor = math.exp(-self.rate * (ref_ms - self.ref_ms))
        self.kept = {v: c * factor for v, c in self.kept.items()}
        self.ref_ms = ref_ms

    def at(self, now_ms: int) -> dict[str, float]:
        """Every count decayed to ``now_ms``."""
        if self.ref_ms is None:
            return {}
        factor = math.exp(-self.rate * (now_ms - self.ref_ms))
        return {v: c * factor for v, c in self.kept.items()}

    def forget_below(self, threshold: float, now_ms: int) -> None:
        """Drop titles whose count at ``now_ms`` is below ``threshold`` (keeps the table small)."""
        if self.ref_ms is None:
            return
        floor = threshold * math.exp(self.rate * (now_ms - self.ref_ms))
        self.kept = {v: c for v, c in self.kept.items() if c >= floor}
