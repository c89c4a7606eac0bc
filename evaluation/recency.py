"""Tuned recency-weighted popularity: decayed watch counts whose half-life is chosen prequentially.

One decayed counter per half-life of ``HALF_LIVES_H`` (1 h to 30 days, and ∞ = all-time counts):
a watch at time t adds 2^-((now - t) / h) to its title's count under half-life h. At every request
the method serves the half-life with the best HR@k on the groups seen so far, measured inside the
method as its own test-then-learn: before a group (one user, one timestamp) is learned, every
half-life's top k for that user (watched titles excluded) is checked against the group's titles
the user had not watched. The choice never looks at an event before it has been learned from,
so it is as prequential as the replay around it. Ties between half-lives go to the longer one;
ties between titles go to the all-time count, then to the title learned earlier.

A decayed counter is kept at a reference time t0: c_j = Σ 2^((t - t0) / h); the order of the
titles is the same at any ``now``, so nothing decays per request, and t0 moves forward (every
count rescaled) before the exponent could overflow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from evaluation.baselines import _grown, _Streaming, top_k
from evaluation.methods import EvalContext
from streamrec.events.model import UserEvent

HOUR_MS = 3_600_000
HALF_LIVES_H: tuple[float, ...] = (1.0, 6.0, 24.0, 72.0, 168.0, 720.0, math.inf)
_MAX_EXPONENT = 200.0  # log2 of the largest weight before t0 moves (float64 holds 2^1023)


class TrendingTuned(_Streaming):
    """Decayed-count popularity served with the half-life that has hit best so far (see module doc)."""

    name = "trending_tuned"

    def __init__(self, context: EvalContext, half_lives_h: Sequence[float] = HALF_LIVES_H, k: int = 10) -> None:
        super().__init__(context)
        if not half_lives_h or any(h <= 0 for h in half_lives_h):
            raise ValueError(f"half-lives must be positive, got {list(half_lives_h)}")
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        self.half_lives_h = tuple(half_lives_h)
        self.k = k
        self.decayed = np.zeros((len(self.half_lives_h), self.items.counts.shape[0]))
        self.reference_ms = [0] * len(self.half_lives_h)
        self.hits = np.zeros(len(self.half_lives_h), dtype=np.int64)
        self._pending: tuple[str, int, list[np.ndarray]] | None = None  # the last request's lists

    @property
    def chosen(self) -> int:
        """Position in the grid of the half-life served now (ties: the longer half-life)."""
        best = self.hits.max()
        return int(np.flatnonzero(self.hits == best)[-1])

    def _lists(self, exclude: np.ndarray, k: int) -> list[np.ndarray]:
        n = len(self.items)
        tiebreak = self.items.counts[:n]
        return [top_k(row[:n], k, exclude, tiebreak=tiebreak) for row in self.decayed]

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        lists = self._lists(self._exclude(user, exclude), max(k, self.k))
        self._pending = (user, now_ms, lists)
        return self.items.titles(lists[self.chosen][:k])

    def learn(self, events: Sequence[UserEvent]) -> None:
        if not events:
            return
        user, now_ms = events[0].user_id, events[0].timestamp
        watched = self.watched.get(user, [])
        known = {self.items.position[e.video_id] for e in events if e.video_id in self.items.position}
        targets = {index for index in known if index not in watched}
        if targets:  # titles never watched by anyone yet are misses for every half-life alike
            pending = self._pending
            if pending is not None and pending[0] == user and pending[1] == now_ms:
                lists = pending[2]
            else:  # not asked (warm-up, or another caller): test now, before learning
                lists = self._lists(np.asarray(watched, dtype=np.int64), self.k)
            for position, served in enumerate(lists):
                self.hits[position] += len(targets & set(served[: self.k].tolist()))
        self._pending = None
        for _, index, ts in self._learn_titles(events):
            self._add(index, ts)

    def _add(self, index: int, ts: int) -> None:
        self.decayed = _grown_rows(self.decayed, index + 1)
        for position, half_life in enumerate(self.half_lives_h):
            if math.isinf(half_life):
                self.decayed[position, index] += 1.0
                continue
            exponent = (ts - self.reference_ms[position]) / (half_life * HOUR_MS)
            if exponent > _MAX_EXPONENT:
                self.decayed[position] *= 2.0 ** -exponent
                self.reference_ms[position] = ts
                exponent = 0.0
            self.decayed[position, index] += 2.0 ** exponent


def _grown_rows(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with at least ``size`` columns, zero-filled (rows are the half-lives)."""
    if array.shape[1] >= size:
        return array
    grown = np.zeros((array.shape[0], _grown(np.zeros(array.shape[1]), size).shape[0]))
    grown[:, : array.shape[1]] = array
    return grown
