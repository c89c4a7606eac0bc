"""Nightly ALS (implicit-feedback matrix factorisation, the ``implicit`` library) as a prequential baseline.

Every watch is a positive of confidence ``alpha`` (``implicit`` 0.7's convention: a watched title
weighs ``alpha``, an unwatched one 1) in a binary user x title matrix. The model is retrained at
each UTC day boundary of event time on everything learned before it:

- a *full* fit (``iterations`` ALS sweeps from a seeded random start) whenever the log has grown by
  ``refresh`` (20%) since the last full fit (and by at least ``refresh_min_events``);
- on every other day a *warm* update that continues ALS on the rows the day changed: the factors
  of each user with new watches are solved exactly against the current title factors, then the
  factors of each title with new watchers (new titles included) against the user factors.
  A full sweep per day costs ~0.1 s on 100k watches and ml-latest-small has 3,700 days with
  scored events; the warm update costs a few milliseconds. On movietweetings-100k (149 days) a
  full fit every day (``refresh=0``) scored HR@10 0.0941 in 173 s, the warm updates 0.0969 in 32 s.

Retraining is lazy: the day's model is built at the day's first ``recommend`` from the watches
learned before the boundary (days without a request are folded into the next one's update), so
the warm-up costs one full fit. A user is
scored with their *current* history (titles watched since the retrain included), folded in
exactly as ``AlternatingLeastSquares.recalculate_user`` does: x = (YᵀY + λI + (α-1) Y_hᵀY_h)⁻¹ α Y_hᵀ1.
Titles first learned after the boundary are outside the model until the next day.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]
from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from evaluation.baselines import _Streaming, top_k
from evaluation.methods import EvalContext
from streamrec.events.model import UserEvent

_CACHE_MAX_USERS = 4096


@dataclass(slots=True)
class _FoldIn:
    """One user's sums over their model titles, valid for one model ``version``."""

    version: int
    done: int  # history entries already summed
    gram: np.ndarray  # Y_hᵀ Y_h
    total: np.ndarray  # Y_hᵀ 1


class AlsNightly(_Streaming):
    """ALS retrained at each day boundary (full fit at every 20% growth, warm update otherwise)."""

    name = "als_nightly"

    def __init__(
        self,
        context: EvalContext,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 10.0,
        iterations: int = 15,
        refresh: float = 0.2,
        refresh_min_events: int = 5000,
    ) -> None:
        super().__init__(context)
        if factors <= 0 or iterations <= 0:
            raise ValueError(f"factors and iterations must be positive, got {factors} and {iterations}")
        if regularization < 0 or alpha < 1:
            raise ValueError(f"need regularization >= 0 and alpha >= 1, got {regularization} and {alpha}")
        self.factors, self.regularization, self.alpha, self.iterations = factors, regularization, alpha, iterations
        self.refresh, self.refresh_min_events = refresh, refresh_min_events
        self.seed = context.seed
        self.users: dict[str, int] = {}  # user id -> matrix row, in the order first learned
        self.watches = np.zeros((1024, 2), dtype=np.int64)  # (row, title index) per learned watch
        self.learned = 0
        self.boundary_events = 0  # watches learned before the latest day boundary
        self.fitted_events = 0  # watches in the current model
        self.full_fit_events = 0  # watches at the last full fit
        self.model: AlternatingLeastSquares | None = None
        self.n_users = self.n_items = 0  # the model's users and titles: prefixes of the indices
        self.item_factors = np.empty((0, factors))
        self.base = np.empty((factors, factors))  # YᵀY + λI
        self.version = 0
        self.cache: dict[str, _FoldIn] = {}
        self.fits = {"full": 0, "warm": 0}

    # -- learning -------------------------------------------------------------------------------
    def learn(self, events: Sequence[UserEvent]) -> None:
        for user, index, _ in self._learn_titles(events):
            if self.learned == self.watches.shape[0]:
                self.watches = np.concatenate([self.watches, np.zeros_like(self.watches)])
            self.watches[self.learned] = (self.users.setdefault(user, len(self.users)), index)
            self.learned += 1

    def on_day_boundary(self, day_start_ms: int) -> None:
        self.boundary_events = self.learned

    @staticmethod
    def _matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
        matrix = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=shape)
        matrix.data[:] = 1.0  # a title watched twice is still one positive
        return matrix

    def _retrain(self) -> None:
        """Bring the model up to the latest day boundary (called lazily by ``recommend``)."""
        events = self.boundary_events
        rows, cols = self.watches[:events, 0], self.watches[:events, 1]
        n_users, n_items = int(rows.max()) + 1, int(cols.max()) + 1  # prefixes: indices grow as learned
        grown = events - self.full_fit_events
        # one thread like every other method (and implicit warns when BLAS would run a thread pool)
        with threadpool_limits(limits=1, user_api="blas"):
            if self.model is None or grown > max(self.refresh * self.full_fit_events, self.refresh_min_events):
                self.model = AlternatingLeastSquares(
                    factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                    iterations=self.iterations, num_threads=1, random_state=self.seed)
                self.model.fit(self._matrix(rows, cols, (n_users, n_items)), show_progress=False)
                self.full_fit_events = events
                self.fits["full"] += 1
            else:
                self._warm_update(rows, cols, n_users, n_items)
                self.fits["warm"] += 1
        self.fitted_events, self.n_users, self.n_items = events, n_users, n_items
        self.item_factors = np.asarray(self.model.item_factors, dtype=np.float64)[:n_items]
        self.base = self.item_factors.T @ self.item_factors + self.regularization * np.eye(self.factors)
        self.version += 1
        self.cache.clear()

    def _warm_update(self, rows: np.ndarray, cols: np.ndarray, n_users: int, n_items: int) -> None:
        """One ALS half-sweep each way over the rows the day changed: users with new watches, titles with new watchers."""
        assert self.model is not None
        changed = np.unique(rows[self.fitted_events:])
        mine = np.isin(rows, changed)
        old_titles = mine & (cols < self.n_items)  # titles new since the last fit have no factors yet
        user_rows = np.searchsorted(changed, rows[old_titles])
        self.model.partial_fit_users(changed, self._matrix(user_rows, cols[old_titles], (changed.size, self.n_items)))
        touched = np.unique(cols[self.fitted_events:])  # the titles with new watchers
        theirs = np.isin(cols, touched)
        title_rows = np.searchsorted(touched, cols[theirs])
        self.model.partial_fit_items(touched, self._matrix(title_rows, rows[theirs], (touched.size, n_users)))

    # -- scoring --------------------------------------------------------------------------------
    def user_factor(self, user: str) -> np.ndarray:
        """The user's factors folded in from their current history over the model's titles."""
        history = self.watched.get(user, [])
        fold = self.cache.get(user)
        if fold is None or fold.version != self.version:
            if len(self.cache) >= _CACHE_MAX_USERS:
                self.cache.clear()
            fold = _FoldIn(self.version, 0, np.zeros((self.factors, self.factors)), np.zeros(self.factors))
            self.cache[user] = fold
        if fold.done < len(history):
            fresh = np.asarray(history[fold.done:], dtype=np.int64)
            y = self.item_factors[fresh[fresh < self.n_items]]
            fold.gram += y.T @ y
            fold.total += y.sum(axis=0)
            fold.done = len(history)
        return np.linalg.solve(self.base + (self.alpha - 1.0) * fold.gram, self.alpha * fold.total)

    def scores(self, user: str) -> np.ndarray:
        """Score of every title learned so far; -inf outside the model's titles."""
        result = np.full(len(self.items), -np.inf)
        result[: self.n_items] = self.item_factors @ self.user_factor(user)
        return result

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        if self.boundary_events > self.fitted_events:
            self._retrain()
        n = len(self.items)
        if self.model is None:
            best = top_k(self.items.counts[:n], k, self._exclude(user, exclude))
        else:
            best = top_k(self.scores(user), k, self._exclude(user, exclude), tiebreak=self.items.counts[:n])
        return self.items.titles(best)
