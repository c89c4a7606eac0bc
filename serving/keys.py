"""Typed keys of everything the app and its requests carry (``app[STORE]``, ``request[PRINCIPAL]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import TypeAdapter

from serving.auth import Principal
from serving.cache import FeedCache
from serving.metrics import ServingMetrics
from serving.ratelimit import RateLimits
from serving.settings import ServingConfig
from serving.shared_reads import SharedReads, TimedAnswers

if TYPE_CHECKING:
    from serving.clients import ImpressionPublisher, TrendingSnapshot
    from serving.posters import PosterCache
    from streamrec.kafka import EventProducer
    from streamrec.store.aio import AsyncStore

CONFIG = web.AppKey("config", ServingConfig)
METRICS = web.AppKey("metrics", ServingMetrics)
FEED_CACHE = web.AppKey("feed_cache", FeedCache)
SHARED = web.AppKey("shared_reads", SharedReads)
SIMILAR_ANSWERS = web.AppKey("similar_answers", TimedAnswers)
RATE_LIMITS = web.AppKey("event_rate_limits", RateLimits)
STORE: web.AppKey[AsyncStore] = web.AppKey("store")
PRODUCER: web.AppKey[EventProducer] = web.AppKey("producer")
IMPRESSIONS: web.AppKey[ImpressionPublisher] = web.AppKey("impressions")
TRENDING: web.AppKey[TrendingSnapshot] = web.AppKey("trending_snapshot")
POSTERS: web.AppKey[PosterCache] = web.AppKey("posters")
#: serving.bodies.events_body for the configured batch size, built once.
EVENTS_BODY: web.AppKey[TypeAdapter[Any]] = web.AppKey("events_body")

PRINCIPAL = web.RequestKey("principal", Principal)
