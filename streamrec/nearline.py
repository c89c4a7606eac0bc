"""The nearline top-picks refresh: the feed's own ranking (:func:`streamrec.recommend.top_picks`)
over a few batched store reads. Both engines call it after a burst of a user's taste changes
(Beam's ``UpdateUserState`` timer, the Flink job's ``RefreshPlan``), so the precomputed picks
are what the feed itself would rank, with the viewer's experiment variant (``streamrec.experiments``)
as the feed has it."""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field

from streamrec.events.model import CatalogItem
from streamrec.experiments.storage import RunningExperiments
from streamrec.model import ScoredItem, UserState, trending_key
from streamrec.recommend.learned import (
    MODEL_KEY,
    Example,
    candidate_features,
    examples_for,
    learned_top_picks,
    model_from_list,
    without_own_increments,
    without_watches,
)
from streamrec.recommend.ranking import (
    RankingInputs,
    candidate_titles,
    seed_titles,
    top_picks,
)
from streamrec.recommend.variants import ranking_config
from streamrec.store.base import Store
from streamrec.store.cache import ReadThrough

TRENDING_WINDOW = "1h"  # the trending list the refresh offers as a source
NEIGHBOURS = 50  # co-watch neighbours read per seed title
#: The experiments, read at most every 10 s per process (a refresh is per user, they change rarely).
EXPERIMENTS = RunningExperiments(ttl_s=10.0)
#: Titles' metadata, read at most every 60 s per process: decoding ~400 catalog entries was half
#: of a refresh's cost (profiled in the Flink demo: 5 of 11 ms), and a title's metadata rarely changes.
#: One cache per store object (a worker has one; tests open many).
ITEMS: weakref.WeakKeyDictionary[Store, ReadThrough[CatalogItem | None]] = weakref.WeakKeyDictionary()


def cached_items(store: Store, ids: list[str]) -> dict[str, CatalogItem]:
    cache = ITEMS.get(store)
    if cache is None:
        cache = ITEMS[store] = ReadThrough(ttl_s=60.0, max_entries=200_000)
    held = cache.get(ids, store.get_items, lambda _: None)
    return {v: item for v, item in held.items() if item is not None}


def refresh_top_picks(store: Store, user: UserState, region: str | None, k: int) -> list[ScoredItem]:
    """Top picks for ``user`` in ``region`` (``None``: every region); see :func:`refresh`."""
    return refresh(store, user, region, k).picks


@dataclass(frozen=True, slots=True)
class Refresh:
    """A refresh's new top picks, and the ranker's examples from the watches since the last one."""

    picks: list[ScoredItem]
    examples: list[Example] = field(default_factory=list)


def watched_since_refresh(user: UserState) -> list[str]:
    """The titles the user watched (newest first) since the last refresh's due time."""
    return [h.video_id for h in user.history if h.ts > user.top_picks_at]


def refresh(store: Store, user: UserState, region: str | None, k: int) -> Refresh:
    """Top picks for ``user`` in ``region`` (``None``: every region): neighbours of the seeds and
    the region's 1 h trending (and the learned ranker's model, in the same read), then the
    candidates' items, vectors and counts, then the ranking (the viewer's variant's, when an
    experiment runs).

    The same reads give the learned ranker its examples (``streamrec.recommend.learned``): the
    titles watched since the last refresh, against the candidates of the user as they were before
    them (history without them, their own co-watch and count increments taken back out)."""
    config = ranking_config(EXPERIMENTS.variant(store, user.user_id, int(time.time() * 1000)))
    watched = watched_since_refresh(user)
    before = without_watches(user, watched)
    seeds = list(dict.fromkeys(seed_titles(user, config) + seed_titles(before, config)))
    lists = store.get_lists([trending_key(TRENDING_WINDOW, region or "global"), MODEL_KEY])
    model = model_from_list(lists.pop(MODEL_KEY, None))
    inputs = RankingInputs(neighbours=store.get_neighbours(seeds, max(NEIGHBOURS, config.neighbours_per_seed)),
                           trending=next(iter(lists.values())).items if lists else (), region=region)
    ids = list(dict.fromkeys(candidate_titles(user, inputs, config) + candidate_titles(before, inputs, config)))
    if config.weights.get("vector", 0.0) > 0:
        found = store.get_items_with_vectors(ids)
        items = {v: item for v, (item, _) in found.items() if item is not None}
        vectors = {v: vec for v, (_, vec) in found.items() if vec is not None}
    else:  # no vector source: read no vectors; titles' metadata from the worker's short-lived cache
        items, vectors = cached_items(store, ids), {}
    inputs = inputs.with_items(items=items, item_vectors=vectors, item_counts=store.get_item_counts(ids + seeds))
    now_ms = user.updated_at or None
    if config.learned:
        picks = learned_top_picks(user, inputs, model, k, now_ms, config)
    else:
        picks = top_picks(user, inputs, k=k, config=config)
    examples: list[Example] = []
    if watched:
        inputs_before = without_own_increments(before, inputs, watched)
        candidates = candidate_features(before, inputs_before, now_ms, config)
        examples = examples_for(candidates, watched, model)
    return Refresh(picks, examples)
