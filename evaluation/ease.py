"""Nightly EASE (Steck 2019, "Embarrassingly Shallow Autoencoders") as a prequential baseline.

At every UTC day boundary of event time the model is retrained on everything learned before it,
over the ``max_items`` most watched titles so far: with the binary user x title matrix X and
G = X^T X, P = (G + l2 I)^-1 and B = I - P / diag(P) (column-wise), B_jj = 0. A user is scored
with their *current* history h (including titles watched since the last retrain): score = h B,
i.e. score_j = -(sum_{i in h} P_ij) / P_jj for j not in h.

Retraining from scratch daily costs one N x N inverse per day (~1.7 s for N = 2,500 here), too
much for ml-latest-small's 3,700 days with events. Because a day changes G only in the rows of
that day's users (G' = G + sum_u (b_u b_u^T - a_u a_u^T), a_u and b_u the user's old and new
binary rows), P is updated exactly with the Woodbury identity, and the update is kept as low-rank
factors P = P0 - Z K Z^T (never written into P0 until the rank exceeds ``max_rank``), so a quiet
day costs a few column gathers. A day touching very many users (rank > N) and every ``refresh``
growth of the log rebuild from scratch, which also re-picks the title set.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np

from evaluation.baselines import _Streaming, top_k
from evaluation.methods import EvalContext
from streamrec.events.model import UserEvent

_CACHE_MAX_USERS = 4096  # bounds memory: one N-vector per cached user


@dataclass(slots=True)
class _UserSums:
    """Sums over one user's model rows, valid for one P0 (``version``)."""

    version: int
    done: int  # history entries already looked at
    member: np.ndarray  # bool per model title: in the user's history
    rows: np.ndarray
    p0_sum: np.ndarray  # sum of P0 over rows
    z_cols: int  # Z columns summed so far
    z_sum: np.ndarray  # sum of Z[rows, :z_cols]


class EaseNightly(_Streaming):
    """EASE retrained at each day boundary over the top ``max_items`` titles; see the module doc."""

    name = "ease_nightly"

    def __init__(
        self,
        context: EvalContext,
        l2: float = 200.0,
        max_items: int = 2500,
        refresh: float = 0.2,
        refresh_min_events: int = 5000,
        max_rank: int = 128,
    ) -> None:
        super().__init__(context)
        if l2 <= 0:
            raise ValueError(f"l2 must be positive, got {l2}")
        if max_items <= 0:
            raise ValueError(f"max_items must be positive, got {max_items}")
        self.l2, self.max_items, self.max_rank = l2, max_items, max_rank
        self.refresh, self.refresh_min_events = refresh, refresh_min_events
        self.model_items = np.empty(0, dtype=np.int64)  # global index of each model title
        self.local = np.empty(0, dtype=np.int64)  # global index -> model position, -1 if outside
        self.p0: np.ndarray | None = None
        self.z = np.empty((0, 0))
        self.kernel = np.empty((0, 0))
        self.diag = np.empty(0)
        self.p0_version = 0
        self.events_total = 0
        self.events_at_pick = 0
        self.pending: dict[str, int] = {}  # user -> titles learned since the last retrain
        self.cache: dict[str, _UserSums] = {}
        self.retrains = {"full": 0, "low_rank": 0, "consolidate": 0}

    # -- learning -------------------------------------------------------------------------------
    def learn(self, events: Sequence[UserEvent]) -> None:
        for user, _, _ in self._learn_titles(events):
            self.pending[user] = self.pending.get(user, 0) + 1
            self.events_total += 1

    def on_day_boundary(self, day_start_ms: int) -> None:
        if not self.pending:
            return
        grown = self.events_total - self.events_at_pick
        updates = self._row_updates() if self.p0 is not None else []
        if (
            self.p0 is None
            or grown > max(self.refresh * self.events_at_pick, self.refresh_min_events)
            or 2 * len(updates) > self.model_items.size
        ):
            self._rebuild()
        elif updates:
            self._low_rank_update(updates)
        self.pending.clear()

    def _model_rows(self, history: Sequence[int]) -> np.ndarray:
        known = np.asarray(history, dtype=np.int64)
        known = known[known < self.local.size]
        rows = self.local[known]
        return np.unique(rows[rows >= 0])

    def _row_updates(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(old rows, new rows, P0 sum over old, P0 sum over new) per user whose model row changed."""
        assert self.p0 is not None
        updates = []
        for user, added in self.pending.items():
            history = self.watched[user]
            old = self._model_rows(history[: len(history) - added])
            sums = self._history_sum(user)
            new, new_sum = sums.rows, sums.p0_sum
            if new.size != old.size:
                added_rows = np.setdiff1d(new, old, assume_unique=True)
                updates.append((old, new, new_sum - self.p0[added_rows].sum(axis=0), new_sum))
        return updates

    def _rebuild(self) -> None:
        n = len(self.items)
        counts = self.items.counts[:n]
        self.model_items = top_k(counts, min(self.max_items, n), np.empty(0, dtype=np.int64))
        self.local = np.full(n, -1, dtype=np.int64)
        self.local[self.model_items] = np.arange(self.model_items.size)
        size = self.model_items.size
        gram = np.zeros((size, size))
        for history in self.watched.values():
            rows = self._model_rows(history)
            if rows.size:
                gram[np.ix_(rows, rows)] += 1.0
        gram[np.diag_indices(size)] += self.l2
        self.p0 = np.linalg.inv(gram)
        self.z, self.kernel = np.empty((size, 0)), np.empty((0, 0))
        self.diag = np.diag(self.p0).copy()
        self.p0_version += 1
        self.cache.clear()
        self.events_at_pick = self.events_total
        self.retrains["full"] += 1

    def _low_rank_update(self, updates: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        columns: list[np.ndarray] = []  # U's columns as model rows (binary user rows)
        p0u: list[np.ndarray] = []  # P0 U, column by column (P0 is symmetric: row sums)
        signs: list[float] = []
        for old, new, old_sum, new_sum in updates:
            columns.append(new)
            p0u.append(new_sum)
            signs.append(1.0)
            if old.size:
                columns.append(old)
                p0u.append(old_sum)
                signs.append(-1.0)
        pu = np.stack(p0u, axis=1)
        if self.z.shape[1]:  # P U with P = P0 - Z K Z^T
            zu = np.stack([self.z[rows].sum(axis=0) for rows in columns], axis=1)
            pu -= self.z @ (self.kernel @ zu)
        utpu = np.stack([pu[rows].sum(axis=0) for rows in columns], axis=0)
        inner = np.diag(signs) + utpu  # C^-1 + U^T P U with C = diag(signs) = C^-1
        inner_inv = np.linalg.inv(inner)
        self.diag -= np.einsum("ij,jk,ik->i", pu, inner_inv, pu)
        r0 = self.z.shape[1]
        self.z = np.hstack([self.z, pu])
        kernel = np.zeros((r0 + pu.shape[1],) * 2)
        kernel[:r0, :r0] = self.kernel
        kernel[r0:, r0:] = inner_inv
        self.kernel = kernel
        self.retrains["low_rank"] += 1
        if self.z.shape[1] > self.max_rank:
            assert self.p0 is not None
            self.p0 -= (self.z @ self.kernel) @ self.z.T
            self.z, self.kernel = np.empty((self.p0.shape[0], 0)), np.empty((0, 0))
            self.p0_version += 1
            self.cache.clear()
            self.retrains["consolidate"] += 1

    # -- scoring --------------------------------------------------------------------------------
    def _history_sum(self, user: str) -> _UserSums:
        """The user's model rows and P0 / Z sums over them, kept between calls.

        A user's history only grows, P0 changes only at a rebuild or consolidation (which clear
        the cache) and Z only gains columns, so the sums are extended instead of re-summed: heavy
        users have 2,000+ titles and are scored thousands of times.
        """
        assert self.p0 is not None
        history = self.watched.get(user, [])
        sums = self.cache.get(user)
        if sums is None or sums.version != self.p0_version:
            size = self.p0.shape[0]
            sums = _UserSums(self.p0_version, 0, np.zeros(size, dtype=bool), np.empty(0, dtype=np.int64),
                             np.zeros(size), 0, np.zeros(0))
            if len(self.cache) >= _CACHE_MAX_USERS:
                self.cache.clear()
            self.cache[user] = sums
        if sums.done < len(history):
            rows = self._model_rows(history[sums.done:])
            fresh = rows[~sums.member[rows]]
            if fresh.size:
                sums.member[fresh] = True
                sums.rows = np.concatenate([sums.rows, fresh])
                sums.p0_sum += self.p0[fresh].sum(axis=0)
                if sums.z_cols:
                    sums.z_sum += self.z[fresh, : sums.z_cols].sum(axis=0)
            sums.done = len(history)
        if sums.z_cols < self.z.shape[1]:
            sums.z_sum = np.concatenate([sums.z_sum, self.z[sums.rows, sums.z_cols:].sum(axis=0)])
            sums.z_cols = self.z.shape[1]
        return sums

    def scores(self, user: str) -> np.ndarray:
        """Score of every title learned so far; -inf outside the model's title set."""
        n = len(self.items)
        result = np.full(n, -np.inf)
        if self.p0 is None:
            return result
        sums = self._history_sum(user)
        total = sums.p0_sum
        if sums.z_cols:
            total = total - self.z @ (self.kernel @ sums.z_sum)
        result[self.model_items] = -total / self.diag
        return result

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        n = len(self.items)
        if self.p0 is None:
            best = top_k(self.items.counts[:n], k, self._exclude(user, exclude))
        else:
            best = top_k(self.scores(user), k, self._exclude(user, exclude), tiebreak=self.items.counts[:n])
        return self.items.titles(best)
