"""The feed response cache: per (user, region, request shape), short TTL, keyed to state version.

An entry is served only while it is younger than the TTL *and* was built from the user's current
state version, so a watch (which bumps the version) is never hidden by the cache. The last feed
built for each (user, region) is kept regardless of age, as the degraded answer when the store
cannot be read.
"""

from __future__ import annotations

import functools
import gzip
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamrec.events.model import CatalogItem


@dataclass(slots=True)
class CachedFeed:
    """A built feed; nothing in it changes once made, except that its gzip form is added when
    first asked for (:meth:`gzipped`)."""

    version: int
    built_at: float  # monotonic seconds
    body: bytes  # the serialized response, ready to send
    feed: dict[str, Any]  # the same feed as data, re-shaped for degraded answers
    # What re-filtering the feed for another request needs (degraded answers): the catalog
    # entries of its titles and the user's disliked titles when it was built.
    titles: Mapping[str, CatalogItem] = field(default_factory=dict)
    disliked: frozenset[str] = frozenset()
    gzip_body: bytes | None = None

    def gzipped(self) -> bytes:
        """``body`` gzip-compressed, made once per entry: a feed is ~24 KB of JSON and ~3 KB
        gzipped, so every repeat sends an eighth of the bytes (the viewer's network, and the
        server's socket writes: a fifth of a cache hit's CPU sent the 24 KB). ~150 µs, once."""
        if self.gzip_body is None:
            self.gzip_body = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self.gzip_body


@functools.lru_cache(maxsize=256)  # clients send a handful of distinct values, on every request
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header value allows gzip (RFC 9110 12.5.3): listed as
    ``gzip`` (or ``x-gzip``) or covered by ``*``, and not with ``q=0``."""
    allowed: dict[str, bool] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0  # an unreadable weight allows nothing
        allowed[coding.strip()] = quality > 0
    for coding in ("gzip", "x-gzip", "*"):
        if coding in allowed:
            return allowed[coding]
    return False


class FeedCache:
    """Bounded LRU; not thread-safe (used from the event loop only)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s and max_entries must be positive")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._fresh: OrderedDict[tuple[Any, ...], CachedFeed] = OrderedDict()
        self._last: OrderedDict[tuple[str, str], CachedFeed] = OrderedDict()

    def get(self, key: tuple[Any, ...], version: int, now: float) -> tuple[CachedFeed | None, str]:
        """The entry if fresh for ``version``; with the lookup's result: hit, miss or stale."""
        entry = self._fresh.get(key)
        if entry is None:
            return None, "miss"
        if entry.version != version or now - entry.built_at > self.ttl_s:
            return None, "stale"  # kept: still the degraded answer for this request until replaced
        self._fresh.move_to_end(key)
        return entry, "hit"

    def put(self, key: tuple[Any, ...], user_region: tuple[str, str], entry: CachedFeed) -> None:
        for table, k in ((self._fresh, key), (self._last, user_region)):
            table[k] = entry  # type: ignore[index]
            table.move_to_end(k)  # type: ignore[arg-type]
            if len(table) > self.max_entries:
                table.popitem(last=False)

    def peek(self, key: tuple[Any, ...]) -> CachedFeed | None:
        """The entry for exactly this request, whatever its age or version (degraded answers)."""
        return self._fresh.get(key)

    def last(self, user_region: tuple[str, str]) -> CachedFeed | None:
        """The newest feed ever built for this user and region, however old."""
        return self._last.get(user_region)

    def __len__(self) -> int:
        return len(self._fresh)
