"""FeedCache, a pure structure: fresh only for the same state version and within the TTL."""

from __future__ import annotations

import pytest

from serving.cache import CachedFeed, FeedCache


def entry(version: int, built_at: float, body: bytes = b"{}") -> CachedFeed:
    return CachedFeed(version, built_at, body, {"rows": []})


def test_hit_only_for_the_same_version_within_the_ttl():
    cache = FeedCache(ttl_s=10, max_entries=10)
    assert cache.get(("u1",), 3, now=0.0) == (None, "miss")
    cache.put(("u1",), ("u1", "US"), entry(3, built_at=0.0))
    assert cache.get(("u1",), 3, now=9.9)[1] == "hit"
    assert cache.get(("u1",), 4, now=1.0) == (None, "stale")  # a watch bumped the version
    assert cache.get(("u1",), 3, now=10.1) == (None, "stale")  # too old
    assert cache.peek(("u1",)) is not None and cache.last(("u1", "US")) is not None  # kept for degrading


def test_bounded_least_recently_used():
    cache = FeedCache(ttl_s=10, max_entries=2)
    for n in range(3):
        cache.put((f"u{n}",), (f"u{n}", "US"), entry(1, 0.0))
    assert len(cache) == 2
    assert cache.get(("u0",), 1, 0.0) == (None, "miss") and cache.last(("u0", "US")) is None
    assert cache.get(("u2",), 1, 0.0)[1] == "hit"


def test_last_is_per_user_and_region_across_request_shapes():
    cache = FeedCache(ttl_s=10, max_entries=10)
    cache.put(("u1", 20), ("u1", "US"), entry(1, 0.0, b"a"))
    cache.put(("u1", 5), ("u1", "US"), entry(2, 1.0, b"b"))
    last = cache.last(("u1", "US"))
    assert last is not None and last.body == b"b"
    assert cache.last(("u1", "GB")) is None


def test_rejects_nonsense_bounds():
    with pytest.raises(ValueError):
        FeedCache(ttl_s=0, max_entries=10)
