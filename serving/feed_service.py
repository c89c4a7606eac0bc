"""Serving one feed: response cache, per-request store deadline, degraded answers.

The order of a request: read the user (its state version validates the cache) -> a fresh cached
response is sent as it is -> otherwise the rest of the reads and the assembly. Every store read of
the request shares one deadline; when it passes or the store fails, the answer comes from the last
feed built for this (user, region) or from the in-memory trending snapshot, marked
``"degraded": true``. The feed endpoint never answers 5xx because of a backend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from serving.cache import CachedFeed
from serving.feed import FeedQuery, nearline_picks_served, read_feed_inputs
from serving.keys import CONFIG, FEED_CACHE, METRICS, SHARED, STORE, TRENDING
from serving.rows import compose_feed, experiment_labels, reshape, shown_titles
from streamrec.model import UserState
from streamrec.store.base import StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedAnswer:
    body: bytes
    feed: dict[str, Any]
    degraded: bool
    cache: str  # hit, miss, stale, or "none" when degraded
    entry: CachedFeed | None = None  # the cached feed a hit answers with (its gzip form is kept there)


DEGRADED_FALSE = b'"degraded":false'


def dumps(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (msgspec's C encoder: the standard library's took ~0.15 ms of a feed)."""
    return _ENCODER.encode(document)


_ENCODER = msgspec.json.Encoder()


class Admission:
    """Load shedding: at most ``limit`` requests at once in a stage; the rest are turned away.

    Under overload a request that waits for the store or the CPU only misses its deadline after
    having spent both, so the service would do all the work and still answer degraded. Turning
    the excess away at once keeps the admitted ones inside their deadline (and the cache filling).
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError(f"limit: must be positive, got {limit}")
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


READS = web.AppKey("feed_reads_admission", Admission)
ASSEMBLIES = web.AppKey("feed_assemblies_admission", Admission)


async def serve_feed(app: web.Application, query: FeedQuery) -> FeedAnswer:
    config, cache, metrics, store = app[CONFIG], app[FEED_CACHE], app[METRICS], app[STORE]
    app[TRENDING].track(query.region)
    key = query.cache_key()
    reads, assemblies = app[READS], app[ASSEMBLIES]
    if not reads.try_enter():
        return degraded(app, query, "overload")
    assembling = False
    # One deadline for every store read of the request (asyncio.timeout_at), taken where a read
    # can first wait: a hit on a store whose reads run on the loop takes none (the running loop's
    # clock costs a getpid() system call per look-up on Python 3.11, ~1 % of a hit under wrk).
    deadline: float | None = None
    try:
        try:
            # A hit needs the version alone (both backends read it without decoding the state).
            versions = store.user_versions_now([query.user_id])
            if versions is None:
                deadline = asyncio.get_running_loop().time() + config.store_deadline_s
                async with asyncio.timeout_at(deadline):
                    versions = await store.get_user_versions([query.user_id])
            entry, result = cache.get(key, versions.get(query.user_id, 0), time.monotonic())
            metrics.feed_cache_of(result).inc()
            if entry is not None:
                return FeedAnswer(entry.body, entry.feed, False, result, entry)
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + config.store_deadline_s
            async with asyncio.timeout_at(deadline):
                if not assemblies.try_enter():
                    return degraded(app, query, "overload")
                assembling = True
                user = (await store.get_users([query.user_id])).get(query.user_id) or UserState(query.user_id)
                rank_live = not nearline_picks_served(user, query, int(config.clock() * 1000),
                                                      int(config.picks_max_age_s * 1000))
                inputs = await read_feed_inputs(store, app[SHARED], user, query, config.trending_window,
                                                query.ranking, rank_live=rank_live)
        except TimeoutError:
            return degraded(app, query, "deadline")
        except StoreError as e:
            log.warning("feed for %s degraded: %s", query.user_id, e)
            return degraded(app, query, "store_error")
        finally:
            reads.leave()
        feed = compose_feed(inputs, query, window=config.trending_window,
                            thumbnail_template=config.thumbnail_template)
    except Exception:  # a bug in assembly must still not cost the viewer the page
        log.exception("feed assembly failed for %s", query.user_id)
        return degraded(app, query, "assembly_error")
    finally:
        if assembling:
            assemblies.leave()
    body = dumps(feed)
    cache.put(key, (query.user_id, query.region),
              CachedFeed(user.version, time.monotonic(), body, feed, shown_titles(feed, *inputs.item_sources()),
                         frozenset(user.disliked)))
    metrics.feed_top_picks_of("live" if inputs.rank_live else "nearline").inc()
    for row in feed["rows"]:
        metrics.feed_row_items_of(row["type"]).observe(len(row["items"]))
    return FeedAnswer(body, feed, False, result)


def degraded(app: web.Application, query: FeedQuery, cause: str) -> FeedAnswer:
    """The last feed built for this user and region, else trending from memory.

    Either way every title passes this request's title filter: the very same request's answer was
    filtered when built (the cache key holds the maturity cap and region); the last feed for the
    user and region is filtered again (``reshape``); the trending snapshot filters its row.
    """
    config, metrics, cache = app[CONFIG], app[METRICS], app[FEED_CACHE]
    same = cache.peek(query.cache_key())
    if same is not None and DEGRADED_FALSE in same.body:
        # The very answer built before for this request: flag it, skip re-serializing (overload
        # is exactly when the CPU for that is missing).
        metrics.degraded.labels("cache", cause).inc()
        return FeedAnswer(same.body.replace(DEGRADED_FALSE, b'"degraded":true', 1), same.feed, True, "none")
    last = cache.last((query.user_id, query.region))
    if last is not None:
        # Built for another request shape, perhaps another token: filtered again for this one.
        feed, source = reshape(last.feed, query, last.titles, last.disliked), "cache"
    else:
        row = app[TRENDING].row(query, config.thumbnail_template)
        wanted = "trending_now" in query.rows
        feed = {"user_id": query.user_id, "region": query.region, "generated_at": int(time.time()),
                "rows": [row] if row is not None and wanted else [], **experiment_labels(query)}
        source = "trending"
    feed["degraded"] = True
    metrics.degraded.labels(source, cause).inc()
    return FeedAnswer(dumps(feed), feed, True, "none")
