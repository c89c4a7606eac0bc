"""Fill a store the way the pipelines would: events through ``streamrec.recommend``, writes through
the store contract. Used by the serving tests (small hand-made worlds) and ``bench_serving``
(the shared MovieLens data). Not a pipeline: no windows, no Kafka, one pass in memory.

    seed_store(store, catalog, events, regions=("US", "GB"))

1. every user's events through ``apply_events`` -> co-watch increments and item counts;
2. item vectors from the stored co-watch neighbours (``item_vector``);
3. the events again, now with item vectors, for the user vectors -> ``put_users``;
4. ranked lists with the pipeline's own rules (``streamrec.recommend``): trending per region and
   globally (``top_n`` of watch counts), each genre's popular titles per region and globally
   (``top_per_genre``), and new releases per region (a ``ReleasePool`` per list, on the clock of
   the newest event, as ``pipelines.new_releases`` keeps it). Catalog items need ``added_at``
   to be new releases (``streamrec.ratings.with_added_at`` gives a rating log's);
5. each user's top picks by the pipelines' nearline refresh (``streamrec.nearline.refresh``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

from pipelines.flink.core import refreshed
from streamrec import recommend
from streamrec.events.model import CatalogItem, UserEvent
from streamrec.model import (
    RANKED_LIST_LIMIT,
    RankedList,
    UserState,
    genre_key,
    new_releases_key,
    trending_key,
)
from streamrec.nearline import refresh
from streamrec.recommend.releases import (
    DAY_MS,
    DEFAULT_LIST_SIZE,
    DEFAULT_MAX_AGE_DAYS,
    release_regions,
)
from streamrec.store.base import Store

GLOBAL = "global"
TOP_PICKS_K = 50  # the pipelines' --top_picks_k
SETTLE_MS, MAX_DELAY_MS = 5_000, 60_000  # ... --settle_s and --max_delay_s


def seed_store(store: Store, catalog: Iterable[CatalogItem], events: Iterable[UserEvent], *,
               windows: Sequence[str] = ("1h", "24h"), top_picks: bool = True) -> dict[str, int]:
    """Writes catalog, co-watch, item counts, vectors, user states and ranked lists; returns sizes."""
    items = {item.video_id: item for item in catalog}
    store.upsert_items(items.values())
    by_user: dict[str, list[UserEvent]] = defaultdict(list)
    for event in events:
        by_user[event.user_id].append(event)

    cowatch: dict[tuple[str, str], int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    watched_by_region: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for user_id, user_events in by_user.items():
        update = recommend.apply_events(UserState(user_id), user_events)
        for pair, n in update.cowatch.items():
            cowatch[pair] += n
        for video_id, n in update.item_counts.items():
            counts[video_id] += n
        regions = {e.region for e in user_events if e.region}
        for video_id in update.watched:
            for region in regions | {GLOBAL}:
                watched_by_region[region][video_id] += 1
    store.add_cowatch(cowatch)
    store.add_item_counts(counts)

    watched_ids = list(counts)
    neighbours = store.get_neighbours(watched_ids, 200) if watched_ids else {}
    vectors = {v: recommend.item_vector(v, [(n, float(c)) for n, c in neighbours.get(v, [])]) for v in watched_ids}
    store.put_item_vectors(vectors)

    states = []
    for user_id, user_events in by_user.items():
        state = recommend.apply_events(UserState(user_id), user_events, item_vectors=vectors).state
        states.append(state)

    now_ms = time.time_ns() // 1_000_000
    lists: list[RankedList] = []
    genres = {v: item.genres for v, item in items.items()}
    for region, region_counts in watched_by_region.items():
        ranked = recommend.top_n(region_counts, RANKED_LIST_LIMIT)
        lists += [RankedList(trending_key(w, region), ranked, now_ms, now_ms) for w in windows]
        lists += [RankedList(genre_key(g, region), top, now_ms, now_ms)
                  for g, top in recommend.top_per_genre(region_counts, genres, RANKED_LIST_LIMIT).items()]
    clock_ms = max((e.timestamp for user_events in by_user.values() for e in user_events), default=now_ms)
    lists += _new_releases(items.values(), watched_by_region, clock_ms, now_ms)
    store.put_lists(lists)
    if top_picks:  # after the lists: the refresh reads the region's trending
        last_region = {u: next((e.region for e in reversed(es) if e.region), None) for u, es in by_user.items()}
        states = [_with_top_picks(store, s, last_region[s.user_id]) for s in states]
    store.put_users(states)
    return {"items": len(items), "users": len(states), "cowatch_pairs": len(cowatch), "lists": len(lists)}


def _new_releases(items: Iterable[CatalogItem], watched_by_region: dict[str, dict[str, int]], clock_ms: int,
                  now_ms: int, max_age_days: float = DEFAULT_MAX_AGE_DAYS) -> list[RankedList]:
    max_age = int(max_age_days * DAY_MS)
    pools: dict[str, recommend.ReleasePool] = defaultdict(recommend.ReleasePool)
    for item in items:
        for region in release_regions(item):
            pools[region].add(item.video_id, item.added_at, max_age)
    for region, pool in pools.items():
        pool.advance(clock_ms, max_age)
        pool.watched(watched_by_region.get(region, {}))
    return [RankedList(new_releases_key(region), pool.ranked(DEFAULT_LIST_SIZE), now_ms) for region, pool in pools.items()]


def _with_top_picks(store: Store, user: UserState, region: str | None) -> UserState:
    """The pipelines' nearline refresh after the user's last burst (``streamrec.nearline.refresh``,
    the served ranking with the store's model), stamped as the pipelines stamp it
    (``pipelines.flink.core.refreshed``: due ``settle_s`` after the burst's newest event)."""
    picks = refresh(store, user, region, TOP_PICKS_K).picks
    return refreshed(user, picks, user.updated_at, SETTLE_MS, MAX_DELAY_MS)
