"""The nearline top-picks refresh ranks with the viewer's variant, as the feed does."""

from __future__ import annotations

import time

import pytest

from streamrec import nearline
from streamrec.events.model import CatalogItem
from streamrec.experiments.config import assign, parse_experiment
from streamrec.experiments.storage import RunningExperiments, put_experiment
from streamrec.model import (
    HistoryEntry,
    RankedList,
    ScoredItem,
    UserState,
    trending_key,
)
from streamrec.store.base import Store

EXPERIMENT = parse_experiment({"id": "x", "salt": "n", "start": 0,
                               "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]})


def viewer_in(variant: str) -> str:
    return next(u for u in (f"v{i}" for i in range(1000)) if assign(EXPERIMENT, u) == variant)


def test_refresh_uses_the_viewers_variant(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nearline, "EXPERIMENTS", RunningExperiments(ttl_s=0.0))
    store.upsert_items([CatalogItem(v, v.title(), genres=("Drama",)) for v in ("seed", "next", "hot")])
    # "next" follows "seed" (similarity 0.3); "hot" only trends: the blend (trending 0.05) ranks
    # "next" first, "fresh" (trending 0.4) ranks "hot" first.
    store.add_cowatch({("seed", "next"): 3})
    store.add_item_counts({"seed": 100, "next": 1})
    store.put_lists([RankedList(trending_key("1h", "global"), [ScoredItem("hot", 10.0)], updated_at=0)])
    firsts = {}
    for variant in ("blend", "fresh"):
        user = UserState(viewer_in(variant), history=[HistoryEntry("seed", int(time.time() * 1000))])
        before = nearline.refresh_top_picks(store, user, None, 5)
        put_experiment(store, EXPERIMENT)
        firsts[variant] = (before[0].video_id, nearline.refresh_top_picks(store, user, None, 5)[0].video_id)
        store.put_lists([RankedList("experiments", [], updated_at=0)])  # no experiment again
    assert firsts == {"blend": ("next", "next"), "fresh": ("next", "hot")}
