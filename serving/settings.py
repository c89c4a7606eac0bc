"""The feed service's configuration: one typed, validated object, read from the environment.

Every timeout, bound and limit the service applies is a field here, so tests and the benchmark
change behaviour by building a different :class:`ServingConfig`, never by patching code.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from serving import auth
from streamrec.config import Settings

STATIC_DIR = Path(__file__).with_name("static")


@dataclass(frozen=True, slots=True)
class ServingConfig:
    store_url: str
    kafka_bootstrap: str
    jwt_key: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    store_deadline_s: float = 0.050  # per feed request, all store reads together
    max_feed_reads: int = 64  # feed requests reading the store at once; beyond: degraded at once
    max_feed_assemblies: int = 4  # feeds being assembled at once (CPU-bound); beyond: degraded
    kafka_ack_timeout_s: float = 5.0  # POST /v1/events waits this long for the broker's acks
    # More librdkafka settings for the producer (e.g. {"message.max.bytes": 2_000_000}).
    kafka_producer_config: dict[str, str | int] = field(default_factory=dict)
    retry_after_s: int = 5  # told to clients when Kafka is unavailable
    # Feed responses, invalidated at once by the user's state version; the TTL bounds how stale
    # the parts that are not the user's own (trending, others' co-watch) may get.
    cache_ttl_s: float = 30.0
    # The nearline refresh's top picks are served as they are while no title was watched since
    # and they are at most this old (serving.feed.nearline_picks_served); else ranked per request.
    picks_max_age_s: float = 3600.0
    cache_max_entries: int = 50_000
    catalog_ttl_s: float = 60.0  # catalog entries held in memory (a catalog change shows within it)
    lists_ttl_s: float = 2.0  # ranked lists held in memory (they change once per trending window)
    similar_ttl_s: float = 30.0  # "more like this" answers (the same for everyone; co-watch moves slowly)
    cowatch_ttl_s: float = 5.0  # titles' co-watch neighbours and watch counts held in memory (serving.shared_reads)
    max_body_bytes: int = 1 << 20  # POST/PUT bodies; 413 above
    max_batch_events: int = 500
    # Per non-service token: events at once, and per second after that (429 + Retry-After past it).
    events_burst: int = 1000
    events_rate_per_s: float = 20.0
    default_limit: int = 20  # items per row
    max_limit: int = 50
    default_region: str = "global"
    trending_window: str = "1h"  # the window the feed's trending row reads
    trending_windows: tuple[str, ...] = ("1h", "24h")  # what GET /v1/trending accepts
    trending_refresh_s: float = 5.0  # in-memory trending snapshot, for degraded answers
    thumbnail_template: str = "/posters/{video_id}.svg"
    impressions: bool = True  # produce impressions to Kafka after each feed
    impressions_queue: int = 10_000  # pending impression batches; beyond it they are dropped
    static_dir: Path = STATIC_DIR
    # The clock event times are checked against ("at most 300 s in the future"), in Unix seconds;
    # /openapi.json states the latest time it takes by the same clock. A contract test freezes it.
    clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    # The collector's thresholds once the process serves (serving.runtime: the first raised from
    # CPython's 700; what exists at startup is frozen out of its passes).
    gc_threshold: tuple[int, int, int] = (10_000, 10, 10)

    def __post_init__(self) -> None:
        auth.check_key(self.jwt_key)
        positive = {
            "store_deadline_s": self.store_deadline_s,
            "kafka_ack_timeout_s": self.kafka_ack_timeout_s,
            "cache_ttl_s": self.cache_ttl_s,
            "picks_max_age_s": self.picks_max_age_s,
            "catalog_ttl_s": self.catalog_ttl_s,
            "lists_ttl_s": self.lists_ttl_s,
            "similar_ttl_s": self.similar_ttl_s,
            "cowatch_ttl_s": self.cowatch_ttl_s,
            "trending_refresh_s": self.trending_refresh_s,
            "max_body_bytes": self.max_body_bytes,
            "max_feed_reads": self.max_feed_reads,
            "max_feed_assemblies": self.max_feed_assemblies,
            "max_batch_events": self.max_batch_events,
            "events_burst": self.events_burst,
            "events_rate_per_s": self.events_rate_per_s,
            "default_limit": self.default_limit,
            "max_limit": self.max_limit,
            "retry_after_s": self.retry_after_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name}: must be positive, got {value}")
        if self.events_burst < self.max_batch_events:
            raise ValueError(f"events_burst: {self.events_burst} is below max_batch_events {self.max_batch_events} "
                             "(a full batch could never be posted)")
        if self.default_limit > self.max_limit:
            raise ValueError(f"default_limit: {self.default_limit} exceeds max_limit {self.max_limit}")
        if self.trending_window not in self.trending_windows:
            raise ValueError(f"trending_window: {self.trending_window!r} is not in {self.trending_windows}")
        if "{video_id}" not in self.thumbnail_template:
            raise ValueError("thumbnail_template: must contain {video_id}")
        if not 0 <= self.port < 65536:
            raise ValueError(f"port: out of range: {self.port}")
        if not _is_gc_threshold(self.gc_threshold):
            raise ValueError(f"gc_threshold: three positive counts expected, got {self.gc_threshold}")

    @classmethod
    def from_env(cls, **overrides: object) -> ServingConfig:
        """Shared settings (store URL, Kafka) plus ``STREAMREC_SERVING_*`` variables."""
        shared = Settings.from_env()
        env = os.environ
        config = cls(
            store_url=shared.store_url,
            kafka_bootstrap=shared.kafka_bootstrap,
            jwt_key=auth.key_from_env(),
            host=env.get("STREAMREC_SERVING_HOST", "127.0.0.1"),
            port=int(env.get("STREAMREC_SERVING_PORT", "8080")),
            store_deadline_s=float(env.get("STREAMREC_SERVING_STORE_DEADLINE_MS", "50")) / 1000,
            cache_ttl_s=float(env.get("STREAMREC_SERVING_CACHE_TTL_S", "30")),
            picks_max_age_s=float(env.get("STREAMREC_SERVING_PICKS_MAX_AGE_S", "3600")),
            thumbnail_template=env.get("STREAMREC_THUMBNAIL_TEMPLATE", "/posters/{video_id}.svg"),
            impressions=env.get("STREAMREC_SERVING_IMPRESSIONS", "1") not in ("0", "false", "no"),
            gc_threshold=gc_threshold_from(env.get("STREAMREC_SERVING_GC_THRESHOLD", "10000,10,10")),
        )
        return replace(config, **overrides) if overrides else config  # type: ignore[arg-type]


def gc_threshold_from(text: str) -> tuple[int, int, int]:
    """``STREAMREC_SERVING_GC_THRESHOLD``: three comma-separated positive counts, e.g. ``10000,10,10``."""
    try:
        counts = tuple(int(p) for p in text.split(","))
    except ValueError:
        counts = ()
    if not _is_gc_threshold(counts):
        raise ValueError(f"STREAMREC_SERVING_GC_THRESHOLD: three comma-separated positive counts expected "
                         f"(e.g. 10000,10,10), got {text!r}")
    return counts  # type: ignore[return-value]  # three ints, checked above


def _is_gc_threshold(counts: tuple[int, ...]) -> bool:
    """Three positive counts (``gc.set_threshold``'s; 0 would turn the collector off)."""
    return len(counts) == 3 and all(n >= 1 for n in counts)
