"""FeedCache, a pure structure: fresh only for the same state version and within the TTL."""

from __future__ import annotations

import gzip

import pytest

from serving.cache import CachedFeed, FeedCache, accepts_gzip


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


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("x-gzip", True),
        ("*", True),
        ("GZIP", True),
        ("", False),
        ("identity", False),
        ("br, deflate", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # named codings win over the wildcard
        ("br, *;q=0.5", True),
        ("gzip;q=nonsense", False),
    ],
)
def test_accepts_gzip_follows_the_header_and_its_weights(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_gzip_form_is_the_body_and_made_once() -> None:
    cached = entry(1, 0.0, b'{"rows":[]}' * 50)
    compressed = cached.gzipped()
    assert gzip.decompress(compressed) == cached.body and len(compressed) < len(cached.body)
    assert cached.gzipped() is compressed
