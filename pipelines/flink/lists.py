"""The Flink job's ranked lists, without Flink: trending, genre rows and new releases.

A region's (or ``global``'s) watches counted per 5-minute bucket
(:class:`pipelines.flink.core.RegionLists`) and cut into the Beam pipeline's sliding windows (:func:`window_lists`); watches and catalog records
routed per region (:func:`route_watches`, :func:`route_catalog`); :class:`ListsWriter` writes them,
newest window wins. Called by ``ListsFn`` (:mod:`pipelines.flink.functions`). Nothing here
imports PyFlink.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence

from pipelines.flink.core import RegionLists, StoreUser, add_counts
from streamrec.events.model import CatalogItem
from streamrec.model import (
    RankedList,
    genre_key,
    new_releases_key,
    trending_key,
)
from streamrec.recommend.releases import DAY_MS, GLOBAL, ReleasePool, release_regions
from streamrec.recommend.trending import top_n, top_per_genre
from streamrec.store import Store
from streamrec.store.cache import ReadThrough

#: Trending windows as the Beam pipeline has them: (label, size, period) in minutes.
WINDOWS: tuple[tuple[str, int, int], ...] = (("1h", 60, 5), ("24h", 1440, 60))
GENRE_WINDOW = "24h"
BUCKET_MS = 300_000  # every window family is aligned to 5 minutes
LIST_N = 100


def window_lists(region: str, lists: RegionLists, genres: Mapping[str, Sequence[str]],
                 now_ms: int) -> list[RankedList]:
    """The newest window of each family (the one the store keeps: newest window wins), as the Beam
    pipeline's sliding windows cut it: ``[start, start + size)`` with ``start`` the newest watch's
    time floored to the period; top ``LIST_N`` by count, and per genre for the ``24h`` family."""
    if lists.newest_ms is None:
        return []
    out = []
    for label, size_min, period_min in WINDOWS:
        size, period = size_min * 60_000, period_min * 60_000
        start = lists.newest_ms // period * period
        counts: dict[str, int] = {}
        for bucket, bucket_counts in lists.buckets.items():
            if start <= bucket * BUCKET_MS < start + size:
                add_counts(counts, bucket_counts)
        end = start + size
        out.append(RankedList(trending_key(label, region), top_n(counts, LIST_N), now_ms, end))
        if label == GENRE_WINDOW:
            for genre, items in sorted(top_per_genre(counts, genres, LIST_N).items()):
                out.append(RankedList(genre_key(genre, region), items, now_ms, end))
    return out


def add_watches(lists: RegionLists, watches: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Count ``(video_id, event time)`` watches in their buckets; drop buckets no window reaches any more.
    Returns the watches per title (the new-releases pool's momentum)."""
    per_title: dict[str, int] = {}
    for video_id, ts in watches:
        bucket = lists.buckets.setdefault(ts // BUCKET_MS, {})
        bucket[video_id] = bucket.get(video_id, 0) + 1
        per_title[video_id] = per_title.get(video_id, 0) + 1
        lists.newest_ms = ts if lists.newest_ms is None else max(lists.newest_ms, ts)
    if lists.newest_ms is not None:
        oldest = (lists.newest_ms - max(size for _, size, _ in WINDOWS) * 60_000) // BUCKET_MS
        for old in [b for b in lists.buckets if b < oldest]:
            del lists.buckets[old]
    return per_title


def route_watches(watches: Iterable[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    """Every watch counts for its region and for ``global``."""
    routed: dict[str, list[tuple[str, int]]] = {}
    for region, video_id, ts in watches:
        for key in {region, GLOBAL}:
            routed.setdefault(key, []).append((video_id, ts))
    return routed


def route_catalog(items: Iterable[CatalogItem]) -> dict[str, dict[str, int | None]]:
    """Catalog records per new-releases list (``streamrec.recommend.releases.release_regions``)."""
    routed: dict[str, dict[str, int | None]] = {}
    for item in items:
        for region in release_regions(item):
            routed.setdefault(region, {})[item.video_id] = item.added_at
    return routed


class ListsWriter(StoreUser):
    """Writes a region's lists: newest window wins against the store (as WriteRankedLists does);
    reads the catalog's genres (cached ``ttl_s``) and recovers a release pool from its stored list."""

    def __init__(self, store_url: str, max_age_days: float = 30.0, n: int = LIST_N, ttl_s: float = 600.0) -> None:
        super().__init__(store_url)
        self.max_age_ms, self.n, self.ttl_s = int(max_age_days * DAY_MS), n, ttl_s
        self._genres: ReadThrough[tuple[str, ...]] = ReadThrough(ttl_s, 200_000)

    def genres(self, video_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Each title's genres from the catalog in the store, read through a per-worker cache."""
        return self._genres.get(video_ids, lambda missing: {
            v: item.genres for v, item in self.call("get_items", lambda store: store.get_items(missing)).items()},
            lambda _: ())

    def pool(self, region: str, lists: RegionLists) -> ReleasePool:
        if lists.pool is None:
            key = new_releases_key(region)
            stored = self.call("get_lists", lambda store: store.get_lists([key])).get(key)
            lists.pool = ReleasePool.from_list(stored.items) if stored else ReleasePool()
        return lists.pool

    def on_watches(self, region: str, lists: RegionLists, watches: Sequence[tuple[str, int]]) -> list[RankedList]:
        per_title = add_watches(lists, watches)
        pool = self.pool(region, lists)
        pool.advance(max(ts for _, ts in watches), self.max_age_ms)
        pool.watched(per_title)
        titles = {v for bucket in lists.buckets.values() for v in bucket}
        now_ms = int(time.time() * 1000)
        return [*window_lists(region, lists, self.genres(titles), now_ms), self.releases(region, pool, now_ms)]

    def on_catalog(self, region: str, lists: RegionLists, added: Mapping[str, int | None]) -> list[RankedList]:
        pool = self.pool(region, lists)
        for video_id, added_at in added.items():
            pool.add(video_id, added_at, self.max_age_ms)
        return [self.releases(region, pool, int(time.time() * 1000))]

    def releases(self, region: str, pool: ReleasePool, now_ms: int) -> RankedList:
        return RankedList(key=new_releases_key(region), items=pool.ranked(self.n), updated_at=now_ms)

    def write(self, lists: Sequence[RankedList]) -> None:
        def put(store: Store) -> None:
            stored = store.get_lists([r.key for r in lists])
            newer = [r for r in lists if r.key not in stored or (r.window_end or 0) >= (stored[r.key].window_end or 0)]
            if newer:
                store.put_lists(newer)
        if lists:
            self.call("put_lists", put)
