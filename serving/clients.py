"""The app's clients, each a ``cleanup_ctx`` generator: connect, ``yield``, close or flush.

aiohttp runs them in order at start-up and unwinds them in reverse at shutdown, and only those
that started; so the impression publisher (which needs the producer) stops before the producer
flushes, and the trending snapshot (which needs the store) stops before the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from serving.feed import FeedQuery, FeedStore, title_filter
from serving.keys import (
    CONFIG,
    IMPRESSIONS,
    METRICS,
    PRODUCER,
    STORE,
    TRENDING,
)
from serving.metrics import ServingMetrics
from serving.ranked_lists import GLOBAL, own_or_global, regional
from serving.rows import item_view, listed, trending_row
from streamrec.config import TOPIC_IMPRESSIONS
from streamrec.events.codec import default_codec
from streamrec.events.model import CatalogItem, Impression
from streamrec.kafka import EventProducer, KafkaPublishError
from streamrec.model import RankedList, trending_key
from streamrec.store import open_store
from streamrec.store.aio import AsyncStore
from streamrec.store.base import StoreError

log = logging.getLogger(__name__)
KAFKA_LOG = logging.getLogger("streamrec.serving.librdkafka")

TRACKED_REGIONS = 64  # regions whose trending the snapshot keeps (bounded: regions come from requests)
IMPRESSION_BATCH = 500


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = AsyncStore(await asyncio.to_thread(open_store, config.store_url))
    app[STORE] = store
    yield
    await store.close()


async def producer_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # librdkafka logs through Python logging (not straight to stderr), each kind of line at most
    # once per 30 s (streamrec.kafka.QuietLog): a broker outage is reported, not spammed.
    producer = EventProducer(config.kafka_bootstrap, client_id="streamrec-serving",
                             delivery_timeout_s=config.kafka_ack_timeout_s,
                             extra_config={**config.kafka_producer_config, "logger": KAFKA_LOG})
    producer.start()
    app[PRODUCER] = producer
    yield
    left = await asyncio.to_thread(producer.close, config.kafka_ack_timeout_s)
    if left:
        log.warning("%d records were still unsent when the producer closed", left)


class ImpressionPublisher:
    """Impressions leave the request path through a bounded queue and are produced in batches.

    A feed never waits for Kafka: when the queue is full (Kafka slow or down) impressions are
    dropped and counted, because a lost impression costs less than a slow page.
    """

    def __init__(self, producer: EventProducer, metrics: ServingMetrics, max_pending: int) -> None:
        self.producer = producer
        self.metrics = metrics
        self.queue: asyncio.Queue[Impression] = asyncio.Queue(max_pending)
        self.codec = default_codec()

    def publish(self, user_id: str, request_id: str, region: str, rows: Sequence[dict[str, object]], *,
                experiment: str | None = None, variant: str | None = None) -> None:
        now_ms = time.time_ns() // 1_000_000
        for row in rows:
            items = row["items"]
            assert isinstance(items, list)
            impression = Impression(
                event_id=str(uuid.uuid4()), user_id=user_id, timestamp=now_ms, request_id=request_id,
                row_type=str(row["type"]), video_ids=tuple(str(i["video_id"]) for i in items), region=region,
                experiment=experiment, variant=variant)
            try:
                self.queue.put_nowait(impression)
            except asyncio.QueueFull:
                self.metrics.impressions.labels("dropped").inc()

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while len(batch) < IMPRESSION_BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            records = [(i.user_id, self.codec.encode(i)) for i in batch]
            try:
                await self.producer.send_many(TOPIC_IMPRESSIONS, records)
                self.metrics.impressions.labels("sent").inc(len(batch))
            except KafkaPublishError as e:
                log.warning("impressions not delivered: %s", e)
                self.metrics.impressions.labels("failed").inc(len(batch))


async def impressions_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    publisher = ImpressionPublisher(app[PRODUCER], app[METRICS], config.impressions_queue)
    app[IMPRESSIONS] = publisher
    task = asyncio.create_task(publisher.run(), name="impressions")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class TrendingSnapshot:
    """Trending per region and its catalog entries, refreshed in the background.

    The degraded answer when the store cannot be read in time: a page of what is popular is
    better than an error page.
    """

    def __init__(self, window: str) -> None:
        self.window = window
        self.lists: dict[str, RankedList] = {}
        self.items: dict[str, CatalogItem] = {}
        # Least recently asked for first; global always kept. Regions come from requests, so a
        # region is kept only while asked for (LRU) and while the store has a list for it (see
        # refresh): junk regions cannot hold the slots.
        self.regions: OrderedDict[str, None] = OrderedDict({GLOBAL: None})
        self.refreshed_at = 0.0

    def track(self, region: str) -> None:
        regions = self.regions
        regions[region] = None
        regions.move_to_end(region)
        while len(regions) > TRACKED_REGIONS:
            oldest = next(iter(regions))
            if oldest == GLOBAL:
                regions.move_to_end(GLOBAL)
                continue
            del regions[oldest]

    def get(self, region: str, window: str | None = None) -> RankedList | None:
        window = window or self.window
        return own_or_global(self.lists, trending_key(window, region), trending_key(window, GLOBAL))

    async def refresh(self, store: FeedStore, windows: Sequence[str]) -> None:
        asked = list(self.regions)
        keys = [trending_key(w, r) for w in windows for r in asked]
        lists = await store.get_lists(keys)
        ids = list(dict.fromkeys(s.video_id for ranked in lists.values() for s in ranked.items))
        items = await store.get_items(ids) if ids else {}
        self.lists, self.items, self.refreshed_at = lists, items, time.time()
        known = {r for r in asked if any(trending_key(w, r) in lists for w in windows)}
        for region in asked:  # no list for it: its answers come from the global list anyway
            if region != GLOBAL and region not in known:
                self.regions.pop(region, None)

    def row(self, query: FeedQuery, thumbnail_template: str) -> dict[str, object] | None:
        """The feed's "Trending Now" row for ``query``, from memory, as a fresh feed shows it: the
        region's list topped up from the global one (:func:`serving.ranked_lists.regional`)."""
        ranked = regional(self.lists, trending_key(self.window, query.region), trending_key(self.window, GLOBAL))
        if ranked is None:
            return None
        allowed = title_filter(query)
        items = listed(ranked.items, lambda v: allowed.allows(v, self.items),
                       lambda v: item_view(self.items[v], v, thumbnail_template, query.ids_only), query.limit)
        return trending_row(query.region, items) if items else None


async def trending_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    snapshot = TrendingSnapshot(config.trending_window)
    app[TRENDING] = snapshot
    store, metrics = app[STORE], app[METRICS]

    async def refresh_once() -> None:
        try:
            async with asyncio.timeout(max(1.0, config.trending_refresh_s)):
                await snapshot.refresh(store, config.trending_windows)
            metrics.trending_snapshot_age.set(snapshot.refreshed_at)
        except (StoreError, TimeoutError) as e:  # a down store is exactly when the old snapshot matters
            log.warning("trending snapshot not refreshed: %s", e)

    async def refresh_forever() -> None:
        while True:
            await asyncio.sleep(config.trending_refresh_s)
            await refresh_once()

    # The fallback is warm before the first request: a store that fails right after start-up
    # must still find a snapshot to answer from.
    await refresh_once()
    task = asyncio.create_task(refresh_forever(), name="trending-snapshot")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
