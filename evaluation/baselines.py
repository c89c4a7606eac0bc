"""Streaming baselines for the prequential replay: popular, trending, item-kNN, random.

Each is a ``Method`` (see ``methods.py``) over dense numpy arrays indexed by the order in which
titles were first learned. Ties are always broken the same way, so brute-force versions (in the
tests) can check them: higher score first, then higher all-time count where the method says so,
then the title learned earlier. Nightly EASE lives in ``ease.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from evaluation.methods import DAY_MS, EvalContext
from streamrec.events.model import UserEvent


def _best_positions(values: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` largest ``values``, ties taken in position order (unsorted)."""
    if count >= values.size:
        return np.arange(values.size)
    threshold = np.partition(values, values.size - count)[values.size - count]
    above = np.flatnonzero(values > threshold)
    tied = np.flatnonzero(values == threshold)[: count - above.size]
    return np.concatenate([above, tied])


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``k`` best ``scores`` outside ``exclude``: by score, then ``tiebreak``, then index.

    Linear in the number of titles even when most scores tie (trending's zeros, a cold user's kNN):
    only the titles tied at the k-th score are ranked again by ``tiebreak``.
    """
    s = np.array(scores, dtype=np.float64)
    if exclude.size:
        s[exclude] = -np.inf
    n = s.size
    kk = min(k, n - int(np.count_nonzero(np.isneginf(s))))
    if kk <= 0:
        return np.empty(0, dtype=np.int64)
    threshold = np.partition(s, n - kk)[n - kk]
    above = np.flatnonzero(s > threshold)
    tied = np.flatnonzero(s == threshold)
    need = kk - above.size
    if tied.size > need:
        tied = tied[_best_positions(tiebreak[tied], need)] if tiebreak is not None else tied[:need]
    candidates = np.concatenate([above, tied])
    keys: tuple[np.ndarray, ...] = (candidates, -s[candidates])
    if tiebreak is not None:
        keys = (candidates, -tiebreak[candidates], -s[candidates])
    return candidates[np.lexsort(keys)]


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with its first axis at least ``size`` (and square if 2-D), zero-filled."""
    if array.shape[0] >= size:
        return array
    new_size = max(size, int(array.shape[0] * 1.5) + 16)
    shape = (new_size, new_size) if array.ndim == 2 else (new_size,)
    grown = np.zeros(shape, dtype=array.dtype)
    if array.ndim == 2:
        grown[: array.shape[0], : array.shape[1]] = array
    else:
        grown[: array.shape[0]] = array
    return grown


class ItemIndex:
    """Title id <-> dense index, in the order titles were first learned; all-time watch counts."""

    def __init__(self, capacity: int = 1024) -> None:
        self.ids: list[str] = []
        self.position: dict[str, int] = {}
        self.counts = np.zeros(max(capacity, 16), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, item: str) -> int:
        index = self.position.get(item)
        if index is None:
            index = len(self.ids)
            self.ids.append(item)
            self.position[item] = index
            self.counts = _grown(self.counts, index + 1)
        return index

    def indices(self, items: Iterable[str]) -> np.ndarray:
        """Indices of the known titles among ``items`` (unknown ones are skipped)."""
        found = [self.position[i] for i in items if i in self.position]
        return np.asarray(found, dtype=np.int64)

    def titles(self, indices: Iterable[int]) -> list[str]:
        return [self.ids[int(i)] for i in indices]


class _Streaming:
    """Shared bookkeeping: the title index and each user's watched titles as indices."""

    name = "base"

    def __init__(self, context: EvalContext) -> None:
        hint = len(context.catalog) or 1024
        self.items = ItemIndex(hint)
        self.watched: dict[str, list[int]] = {}
        self._watched_arrays: dict[str, np.ndarray] = {}  # the same lists as arrays, extended lazily

    def _exclude(self, user: str, exclude: AbstractSet[str]) -> np.ndarray:
        own = self.watched.get(user, [])
        if len(own) != len(exclude):  # a caller's own exclusions: look them up
            return self.items.indices(exclude)
        # the usual case: the replay's history is what we learned; heavy users have 2,000+ titles
        array = self._watched_arrays.get(user, np.empty(0, dtype=np.int64))
        if array.size < len(own):
            array = np.concatenate([array, np.asarray(own[array.size:], dtype=np.int64)])
            self._watched_arrays[user] = array
        return array

    def _learn_titles(self, events: Sequence[UserEvent]) -> list[tuple[str, int, int]]:
        """Index the events' titles, count them; returns (user, index, timestamp) per new watch."""
        learned = []
        for event in events:
            if event.video_id is None:
                continue
            index = self.items.add(event.video_id)
            self.items.counts[index] += 1
            self.watched.setdefault(event.user_id, []).append(index)
            learned.append((event.user_id, index, event.timestamp))
        return learned

    def learn(self, events: Sequence[UserEvent]) -> None:
        self._learn_titles(events)

    def on_day_boundary(self, day_start_ms: int) -> None:
        return None


class Popular(_Streaming):
    """Most watched so far."""

    name = "popular"

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        n = len(self.items)
        best = top_k(self.items.counts[:n], k, self._exclude(user, exclude))
        return self.items.titles(best)


class Trending(_Streaming):
    """Most watched in the trailing window (now - window, now] of event time; ties by all-time count."""

    name = "trending"

    def __init__(self, context: EvalContext, window_days: float = 7.0) -> None:
        super().__init__(context)
        if window_days <= 0:
            raise ValueError(f"window_days must be positive, got {window_days}")
        self.window_ms = int(window_days * DAY_MS)
        self.recent: deque[tuple[int, int]] = deque()
        self.window_counts = np.zeros_like(self.items.counts)

    def learn(self, events: Sequence[UserEvent]) -> None:
        for _, index, ts in self._learn_titles(events):
            self.window_counts = _grown(self.window_counts, index + 1)
            self.window_counts[index] += 1
            self.recent.append((ts, index))

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        while self.recent and self.recent[0][0] <= now_ms - self.window_ms:
            self.window_counts[self.recent.popleft()[1]] -= 1
        n = len(self.items)
        best = top_k(self.window_counts[:n], k, self._exclude(user, exclude), tiebreak=self.items.counts[:n])
        return self.items.titles(best)


class RandomTitles(_Streaming):
    """Uniformly random titles among those learned so far (seeded)."""

    name = "random"

    def __init__(self, context: EvalContext) -> None:
        super().__init__(context)
        self.rng = np.random.default_rng(context.seed)

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        n = len(self.items)
        blocked = np.zeros(n, dtype=bool)
        blocked[self._exclude(user, exclude)] = True
        room = n - int(blocked.sum())
        if room <= k:
            return self.items.titles(np.flatnonzero(~blocked))
        picks: list[int] = []
        while len(picks) < k:
            draws = self.rng.integers(0, n, size=4 * k)
            for i in draws[~blocked[draws]].tolist():
                if i not in picks and len(picks) < k:
                    picks.append(i)
        return self.items.titles(picks)


class ItemKNNStream(_Streaming):
    """Streaming item-kNN: co-watch counts with each user's last ``window`` titles.

    Learning a user's group of titles J adds 1 to co[j, i] and co[i, j] for every i in the user's
    last ``window`` titles and for every other title of J (simultaneous watches co-occur). A user
    is scored as sum_i w_i * co[i, j] / sqrt(n_i * n_j) over the last ``window`` titles i, with
    n the all-time watch counts (cosine normalisation) and w_i = decay ** (groups since i was
    watched), so the latest titles weigh most. Ties, including users with no window, fall back
    to the all-time count.
    """

    name = "itemknn_stream"

    def __init__(self, context: EvalContext, window: int = 50, decay: float = 0.9) -> None:
        super().__init__(context)
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.window, self.decay = window, decay
        size = self.items.counts.shape[0]
        self.cowatch = np.zeros((size, size), dtype=np.float32)  # exact for counts < 2**24
        self.recent: dict[str, deque[tuple[int, int]]] = {}  # user -> (title, group number)
        self.groups_seen: dict[str, int] = {}

    def learn(self, events: Sequence[UserEvent]) -> None:
        by_user: dict[str, list[int]] = {}
        for user, index, _ in self._learn_titles(events):
            by_user.setdefault(user, []).append(index)
        self.cowatch = _grown(self.cowatch, len(self.items))
        for user, new in by_user.items():
            recent = self.recent.setdefault(user, deque())
            window = np.asarray([i for i, _ in recent], dtype=np.int64)
            group = np.asarray(new, dtype=np.int64)
            if window.size:
                self.cowatch[np.ix_(group, window)] += 1.0
                self.cowatch[np.ix_(window, group)] += 1.0
            if group.size > 1:
                self.cowatch[np.ix_(group, group)] += 1.0
                self.cowatch[group, group] -= 1.0
            number = self.groups_seen.get(user, 0)
            self.groups_seen[user] = number + 1
            recent.extend((i, number) for i in new)
            while len(recent) > self.window:
                recent.popleft()

    def scores(self, user: str) -> np.ndarray:
        """The user's score for every title learned so far (before exclusion)."""
        n = len(self.items)
        recent = self.recent.get(user)
        if not recent:
            return np.zeros(n)
        latest = self.groups_seen[user] - 1
        window = np.asarray([i for i, _ in recent], dtype=np.int64)
        weights = np.asarray([self.decay ** (latest - g) for _, g in recent])
        counts = self.items.counts[:n]
        weights = weights / np.sqrt(counts[window])
        raw = weights.astype(np.float32) @ self.cowatch[window, :n]
        return raw.astype(np.float64) / np.sqrt(np.maximum(counts, 1.0))

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        n = len(self.items)
        best = top_k(self.scores(user), k, self._exclude(user, exclude), tiebreak=self.items.counts[:n])
        return self.items.titles(best)

