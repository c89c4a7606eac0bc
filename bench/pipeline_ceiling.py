"""The pipeline benchmark's plain-loop ceiling: the streaming jobs' updates by a plain Python loop.

``ceiling()`` decodes the same bytes, applies ``apply_event``'s rules in place (``LiveUser``) with
item vectors, accumulates co-watch pairs, item counts, item vectors and trending buckets
(``window_counts``) and writes users, pairs, counts and vectors to the store in batches
(``_flush``); ``Stages`` times each of those steps in a second pass. ``bench/bench_pipeline.py``
reports it as ``ceiling_events_per_s`` beside each engine; ``bench/peers/rules.py`` reuses its
``_flush`` and ``BUCKET_MS``.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from streamrec.events.codec import default_codec
from streamrec.model import UserState
from streamrec.recommend.live import LiveUser
from streamrec.recommend.vectors import item_basis, item_vector_increments
from streamrec.store import open_store

BUCKET_MS = 300_000  # trending: watches counted per 5 minutes (the engines' buckets; windows sum them)


class Stages:
    """Where a plain-loop pass spends its time, stage by stage (a second pass, so the clock reads
    do not slow the measured one)."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()
        self.start()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] += now - self._last
        self._last = now

    def us_per_event(self, events: int) -> dict[str, float]:
        return {stage: round(1e6 * s / events, 2) for stage, s in self.seconds.items()}


def ceiling(payloads: Sequence[bytes], store_url: str, stages: Stages | None = None) -> tuple[float, dict[str, int]]:
    """The same updates as the pipeline, by a plain loop; returns (events/s, item counts).
    ``stages``: time each stage into it (a profiling pass).

    What the harness holds before the loop (the decoded events it produces later, the modules it
    imported) is frozen out of the garbage collector for the loop (``gc.freeze``, as a worker may
    do after start-up): the loop's own objects are collected as usual, but its full collections
    no longer walk the harness's heap (2-4 µs per event of the loop's time, profiled)."""
    codec = default_codec()
    store = open_store(store_url)
    gc.freeze()
    began = time.perf_counter()
    users: dict[str, LiveUser] = {}
    dirty: dict[str, UserState] = {}
    pairs: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    total_counts: dict[str, int] = {}
    vectors: dict[str, np.ndarray] = {}
    buckets: dict[tuple[str, str, int], int] = {}  # watches per (region, title, 5-minute bucket)
    if stages is not None:
        stages.start()
    for i, payload in enumerate(payloads):
        e = codec.decode_event(payload)
        if stages is not None:
            stages.lap("decode")
        live = users.get(e.user_id)
        if live is None:
            live = users[e.user_id] = LiveUser(UserState(user_id=e.user_id), copy=False)
        vec = vectors.get(e.video_id) if e.video_id else None
        if e.video_id and vec is None:
            vec = vectors[e.video_id] = item_basis(e.video_id).copy()
        update = live.apply(e, item_vector=vec)  # apply_event's rules, in place (the pipelines' hot path)
        if stages is not None:
            stages.lap("apply_event rules")
        if not update.applied:
            continue
        dirty[e.user_id] = update.state
        for pair, n in update.cowatch.items():
            pairs[pair] = pairs.get(pair, 0) + n
        for video_id, n in update.item_counts.items():
            counts[video_id] = counts.get(video_id, 0) + n
            total_counts[video_id] = total_counts.get(video_id, 0) + n
        for video_id in update.watched:  # per 5-minute bucket, as both engines count them
            bucket = (e.region or "", video_id, e.timestamp // BUCKET_MS)
            buckets[bucket] = buckets.get(bucket, 0) + 1
        if stages is not None:
            stages.lap("sums (co-watch, counts, trending)")
        if (i + 1) % 500 == 0:
            _flush(store, dirty, pairs, counts, vectors, stages)
    _flush(store, dirty, pairs, counts, vectors, stages)
    window_counts(buckets)
    if stages is not None:
        stages.lap("trending windows")
    elapsed = time.perf_counter() - began
    gc.unfreeze()
    store.close()
    return len(payloads) / elapsed, total_counts


def window_counts(buckets: dict[tuple[str, str, int], int]) -> dict[tuple[str, str, int], int]:
    """Watches per (region, title, window) from the counts per 5-minute bucket: each bucket is in
    12 one-hour windows sliding every 5 minutes (keyed by their last bucket) and 24 one-day windows
    sliding every hour (keyed by minus their last hour). The windows of the watches' bucket are the
    watches' windows (an hour is 12 buckets), so these are the counts 36 increments per watch made."""
    trending: dict[tuple[str, str, int], int] = {}
    get = trending.get
    for (region, video_id, bucket), n in buckets.items():
        hour = bucket // 12
        for window in [*range(bucket - 11, bucket + 1), *range(-hour, 24 - hour)]:
            key = (region, video_id, window)
            trending[key] = get(key, 0) + n
    return trending


def _flush(store, dirty, pairs, counts, vectors, stages) -> None:  # type: ignore[no-untyped-def]
    lap = stages.lap if stages is not None else lambda stage: None
    if dirty:
        store.put_users(list(dirty.values()))
        dirty.clear()
        lap("store: user records")
    if pairs:
        store.add_cowatch(pairs)
        lap("store: co-watch upserts")
        deltas = item_vector_increments(pairs)
        for video_id, delta in deltas.items():
            vector = vectors.get(video_id)
            if vector is None:
                vectors[video_id] = item_basis(video_id) + delta
            else:  # in place: the same float32 sum, without a new array (the store copies it)
                vector += delta
        lap("item vector increments")
        store.put_item_vectors({v: vectors[v] for v in deltas})
        pairs.clear()
        lap("store: item vectors")
    if counts:
        store.add_item_counts(counts)
        counts.clear()
        lap("store: item counts")
