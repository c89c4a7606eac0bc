"""Prometheus metrics of the feed service, in a registry of the app's own.

One registry per app (not the process-wide default) so that several apps in one test process do
not collide, and ``/metrics`` shows exactly this service.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Feed latencies live in the low milliseconds; the buckets resolve 0.5 ms .. 1 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ROW_SIZE_BUCKETS = (0, 1, 2, 5, 10, 20, 30, 50)


def children(metric: Any) -> Callable[..., Any]:
    """``metric.labels``, each child kept once made: ``labels`` takes a lock and builds its label
    tuple on every call (a few µs of a cached feed's tens), and the label values on the request
    path are few and bounded (routes, methods, statuses, results, row types)."""
    return functools.cache(metric.labels)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_latency = Histogram(
            "streamrec_http_request_duration_seconds",
            "Request latency by route",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.responses = Counter(
            "streamrec_http_responses_total", "Responses by route and status", ["route", "status"], registry=r
        )
        self.feed_row_items = Histogram(
            "streamrec_feed_row_items", "Items per served feed row", ["row_type"], buckets=ROW_SIZE_BUCKETS, registry=r
        )
        self.feed_cache = Counter(
            "streamrec_feed_cache_total", "Feed cache lookups by result (hit, miss, stale)", ["result"], registry=r
        )
        self.feed_top_picks = Counter(
            "streamrec_feed_top_picks_total",
            "Assembled feeds by where their top picks came from (nearline: the refresh's, served as they are; "
            "live: ranked for the request)",
            ["source"],
            registry=r,
        )
        self.degraded = Counter(
            "streamrec_feed_degraded_total",
            "Feeds answered degraded, by source (cache, trending) and cause",
            ["source", "cause"],
            registry=r,
        )
        self.events_accepted = Counter(
            "streamrec_events_accepted_total", "Events acknowledged by Kafka", ["event_type"], registry=r
        )
        self.events_rejected = Counter(
            "streamrec_events_rejected_total",
            "Events refused (invalid, forbidden, too_large, kafka_unavailable)",
            ["reason"],
            registry=r,
        )
        self.impressions = Counter(
            "streamrec_impressions_total", "Impression records by outcome (sent, dropped, failed)", ["outcome"], registry=r
        )
        self.trending_snapshot_age = Gauge(
            "streamrec_trending_snapshot_updated_seconds", "Unix time of the last trending snapshot refresh", registry=r
        )
        # The children the request path labels on every request (see ``children``).
        self.request_latency_of = children(self.request_latency)
        self.responses_of = children(self.responses)
        self.feed_cache_of = children(self.feed_cache)
        self.feed_top_picks_of = children(self.feed_top_picks)
        self.feed_row_items_of = children(self.feed_row_items)
