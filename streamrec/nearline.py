"""The nearline top-picks refresh: the feed's own ranking (:func:`streamrec.recommend.top_picks`)
over a few batched store reads. Both engines call it after a burst of a user's taste changes
(Beam's ``UpdateUserState`` timer, the Flink job's ``RefreshPlan``), so the precomputed picks
are what the feed itself would rank, with the viewer's experiment variant (``streamrec.experiments``)
as the feed has it."""

from __future__ import annotations

import time

from streamrec.experiments.storage import RunningExperiments
from streamrec.model import ScoredItem, UserState, trending_key
from streamrec.recommend.ranking import (
    RankingInputs,
    candidate_titles,
    seed_titles,
    top_picks,
)
from streamrec.recommend.variants import ranking_config
from streamrec.store.base import Store

TRENDING_WINDOW = "1h"  # the trending list the refresh offers as a source
NEIGHBOURS = 50  # co-watch neighbours read per seed title
#: The experiments, read at most every 10 s per process (a refresh is per user, they change rarely).
EXPERIMENTS = RunningExperiments(ttl_s=10.0)


def refresh_top_picks(store: Store, user: UserState, region: str | None, k: int) -> list[ScoredItem]:
    """Top picks for ``user`` in ``region`` (``None``: every region): neighbours of the seeds and
    the region's 1 h trending, then the candidates' items, vectors and counts, then the ranking
    (the viewer's variant's, when an experiment runs)."""
    config = ranking_config(EXPERIMENTS.variant(store, user.user_id, int(time.time() * 1000)))
    seeds = seed_titles(user, config)
    trending = store.get_lists([trending_key(TRENDING_WINDOW, region or "global")])
    inputs = RankingInputs(neighbours=store.get_neighbours(seeds, max(NEIGHBOURS, config.neighbours_per_seed)),
                           trending=next(iter(trending.values())).items if trending else (), region=region)
    ids = candidate_titles(user, inputs, config)
    found = store.get_items_with_vectors(ids)
    inputs = inputs.with_items(items={v: item for v, (item, _) in found.items() if item is not None},
                               item_vectors={v: vec for v, (_, vec) in found.items() if vec is not None},
                               item_counts=store.get_item_counts(ids + seeds))
    return top_picks(user, inputs, k=k, config=config)
