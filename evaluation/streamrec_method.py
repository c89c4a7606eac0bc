"""streamrec under prequential test: the served top-picks row, through ``streamrec.recommend``.

The adapter plays both sides of the product in-process, with no Kafka and no store server:

- ``learn`` is the pipeline's user-state step: every rating goes through
  :func:`streamrec.recommend.state.apply_events`'s rules (the very state machine the Beam pipeline
  runs, here on a :class:`~streamrec.recommend.live.LiveUser` kept per user), and its side effects are written to in-memory tables shaped like the store's: directed co-watch
  rows kept to the store's top ``COWATCH_NEIGHBOURS_LIMIT`` per title (trimmed when a row reaches
  twice that, an amortised form of the store's trim-after-write), item counts, raw item vectors
  (incremented as :func:`streamrec.recommend.vectors.item_vector_increments` says) and a trending
  list of decayed watch counts (half-life 7 days), rewritten hourly like the pipeline's windows.
- ``recommend`` is the feed's top-picks row: the same two batched reads the feed makes
  (neighbours of the seed titles; metadata, counts and vectors of the candidates), then
  :func:`streamrec.recommend.ranking.top_picks` with its filters and diversity re-rank.

Ratings above 5 (MovieTweetings rates 0-10) are halved to the event model's 1-5 stars.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

import numpy as np

from evaluation.methods import EvalContext, Method
from streamrec.events.model import CatalogItem, UserEvent
from streamrec.model import COWATCH_NEIGHBOURS_LIMIT, SEEN_LIMIT, ScoredItem, UserState
from streamrec.recommend import (
    RankingConfig,
    RankingInputs,
    StateConfig,
    candidate_titles,
    item_basis,
    item_vector_increments,
    seed_titles,
    top_n,
    top_picks,
)
from streamrec.recommend.learned import (
    Candidates,
    RankerModel,
    RankerTrainer,
    candidate_features,
    examples_for,
    initial_weights,
    learned_top_picks,
)
from streamrec.recommend.live import LiveUser
from streamrec.recommend.state import UserUpdate
from streamrec.recommend.trending import DecayedCounts
from streamrec.recommend.variants import SERVED, VARIANTS

_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)
TRENDING_HALF_LIFE_MS = 7 * 24 * 3600 * 1000
TRENDING_SIZE = 100
TRENDING_EVERY_MS = 3600 * 1000  # the list is rewritten hourly, like the pipeline's sliding windows
TRENDING_FORGET = 0.05  # decayed counts below this are dropped


class StreamrecMethod:
    """The product's top picks, learning online from every event (see the module docstring)."""

    name = "streamrec"

    def __init__(self, context: EvalContext, state_config: StateConfig | None = None,
                 ranking_config: RankingConfig | None = None, use_vectors: bool = True) -> None:
        # The rating log names the catalog: a title it rates is a known title even when the data
        # set ships no metadata for it (the product never shows a title its catalog lacks).
        self.catalog: dict[str, CatalogItem] = dict(context.catalog)
        self.state_config = state_config or StateConfig()
        # The ranking served outside experiments (the learned ranker), unless a variant is asked for.
        self.ranking_config = ranking_config or VARIANTS[SERVED]
        self.use_vectors = use_vectors and self.ranking_config.weights.get("vector", 0.0) > 0
        self.users: dict[str, UserState] = {}
        self.live: dict[str, LiveUser] = {}  # per user, the state machine owning users[user]
        self.cowatch: dict[str, dict[str, int]] = {}  # item -> neighbour -> count
        self.ranked: dict[str, list[tuple[int, str]]] = {}  # item -> [(-count, neighbour)], ascending
        # item -> (k, its top k as the store returns them), kept until the item's row changes
        self.rows: dict[str, tuple[int, list[tuple[str, int]]]] = {}
        self.counts: dict[str, int] = {}
        self.raw_vectors: dict[str, np.ndarray] = {}
        self.trend_scores = DecayedCounts(TRENDING_HALF_LIFE_MS)
        self.trending: list[ScoredItem] = []
        self.trending_due = 0
        # The learned ranker (``ranking_config.learned``): the model, and per user the candidates
        # of the last list served, learned from once the user's next events arrive.
        self.trainer = RankerTrainer(RankerModel(initial_weights(self.ranking_config)))
        self.served: dict[str, Candidates] = {}

    # -- the pipeline side ---------------------------------------------------------------------
    def learn(self, events: Sequence[UserEvent]) -> None:
        if not events:
            return
        for e in events:
            if e.video_id and e.video_id not in self.catalog:
                self.catalog[e.video_id] = CatalogItem(e.video_id, e.video_id)
        user_id = events[0].user_id
        state = self.users.get(user_id) or UserState(user_id)
        if self.ranking_config.learned:
            self._learn_ranker(state, events)
        vectors = ({e.video_id: self._vector(e.video_id) for e in events if e.video_id}
                   if self.use_vectors else None)
        update = self._apply(user_id, events, vectors)
        self.users[user_id] = update.state
        self._write_cowatch(update.cowatch)
        for video_id, n in update.item_counts.items():
            self.counts[video_id] = self.counts.get(video_id, 0) + n
        now = events[0].timestamp
        if now >= self.trending_due:
            self._refresh_trending(now)
        for video_id in update.watched:
            self.trend_scores.add(video_id, 1.0, now)

    def _apply(self, user_id: str, events: Sequence[UserEvent], vectors: Mapping[str, np.ndarray] | None) -> UserUpdate:
        """The state machine on the user's events (:func:`streamrec.recommend.state.apply_events`),
        on a :class:`~streamrec.recommend.live.LiveUser` kept per user: its state changes in place,
        never copied nor re-indexed per batch (nothing else holds a user's state between batches)."""
        live = self.live.get(user_id)
        if live is None:
            live = self.live[user_id] = LiveUser(self.users.get(user_id) or UserState(user_id))
        return live.apply_events(events, item_vectors=vectors, config=self.state_config)

    def _learn_ranker(self, state: UserState, events: Sequence[UserEvent]) -> None:
        """The watched titles against the candidates of the state before them (test-then-learn:
        the model has not seen these events when it ranked them)."""
        candidates = self.served.pop(state.user_id, None)
        now = events[0].timestamp
        watched = [e.video_id for e in events if e.video_id]
        if candidates is None:
            inputs = self._inputs(state)
            if not self._could_learn(state, inputs, watched):
                return
            candidates = candidate_features(state, inputs, now, self.ranking_config)
        self.trainer.add(examples_for(candidates, watched, self.trainer.model, self.trainer.config))

    def _could_learn(self, state: UserState, inputs: RankingInputs, watched: Sequence[str]) -> bool:
        """Whether a source names a watched title (else there is no example: ``examples_for``
        gives none), checked on the titles alone, before any feature is computed."""
        return not set(watched).isdisjoint(candidate_titles(state, inputs, self.ranking_config))

    def _refresh_trending(self, now: int) -> None:
        """The pipeline's periodic trending write: decayed counts brought to ``now``, top N."""
        self.trending = top_n(self.trend_scores.at(now), TRENDING_SIZE)
        # Forget titles whose decayed count no longer matters, so the refresh stays cheap.
        self.trend_scores.forget_below(TRENDING_FORGET, now)
        self.trending_due = (now // TRENDING_EVERY_MS + 1) * TRENDING_EVERY_MS

    def on_day_boundary(self, day_start_ms: int) -> None:
        """Nothing nightly: every table is kept up to date as events arrive."""

    def _write_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        limit = COWATCH_NEIGHBOURS_LIMIT
        for (item, neighbour), n in increments.items():
            row = self.cowatch.get(item)
            if row is None:
                row = self.cowatch[item] = {}
                self.ranked[item] = []
            ranked = self.ranked[item]
            self.rows.pop(item, None)
            old = row.get(neighbour)
            new = row[neighbour] = (old or 0) + n
            if old is None:
                bisect.insort(ranked, (-new, neighbour))
            else:  # the pair moves up its row: only the entries above it are searched
                at = bisect.bisect_left(ranked, (-old, neighbour))
                del ranked[at]
                ranked.insert(bisect.bisect_left(ranked, (-new, neighbour), 0, at), (-new, neighbour))
            if len(ranked) >= 2 * limit:
                for _, dropped in ranked[limit:]:
                    del row[dropped]
                del ranked[limit:]
        if self.use_vectors:  # the pipeline's ItemVectors rule, the same function
            for item, delta in item_vector_increments(increments).items():
                raw = self.raw_vectors.get(item)
                if raw is None:
                    raw = self.raw_vectors[item] = item_basis(item).copy()
                raw += delta

    def _vector(self, video_id: str) -> np.ndarray:
        raw = self.raw_vectors.get(video_id)
        return raw if raw is not None else item_basis(video_id)

    # -- the feed side -------------------------------------------------------------------------
    def _neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        out = {}
        for video_id in video_ids:
            held = self.rows.get(video_id)
            if held is not None and held[0] == k:
                out[video_id] = held[1]
                continue
            ranked = self.ranked.get(video_id)
            if ranked:
                top = ranked[:k]
                row = out[video_id] = list(zip(map(_SECOND, top), map(operator.neg, map(_FIRST, top))))
                self.rows[video_id] = (k, row)
        return out

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        state = self.users.get(user) or UserState(user)
        config = self.ranking_config
        inputs = self._inputs(state)
        # The state keeps the newest SEEN_LIMIT titles; the replay knows them all, so ask for a
        # few more and drop what the bounded state forgot.
        margin = 10 if len(state.seen) >= SEEN_LIMIT else 0
        if config.learned:
            candidates = candidate_features(state, inputs, now_ms, config)
            self.served[user] = candidates
            picks = learned_top_picks(state, inputs, self.trainer.model, k + margin, now_ms, config, candidates)
        else:
            picks = top_picks(state, inputs, k=k + margin, config=config)
        return [p.video_id for p in picks if p.video_id not in exclude][:k]

    def _inputs(self, state: UserState) -> RankingInputs:
        """In-process, the whole tables stand in for the feed's batched reads of the candidates."""
        config = self.ranking_config
        seeds = seed_titles(state, config)
        return RankingInputs(neighbours=self._neighbours(seeds, config.neighbours_per_seed),
                             trending=self.trending, items=self.catalog, item_counts=self.counts,
                             item_vectors=self.raw_vectors if self.use_vectors else {})


def create(context: EvalContext) -> Method:
    """The factory the replay looks for (``evaluation.methods``)."""
    return StreamrecMethod(context)
