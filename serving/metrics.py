"""Prometheus metrics of the feed service, in a registry of the app's own.

One registry per app (not the process-wide default) so that several apps in one test process do
not collide, and ``/metrics`` shows exactly this service.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Feed latencies live in the low milliseconds; the buckets resolve 0.5 ms .. 1 s.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
ROW_SIZE_BUCKETS = (0, 1, 2, 5, 10, 20, 30, 50)


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
