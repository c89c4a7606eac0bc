"""The serving process's garbage collector, settled once the app has started.

Profiled under wrk (``make bench-serving``'s data, uncached feeds with nearline picks, a
collector callback timing every pass): with CPython's default thresholds (700, 10, 10) the
collector's passes took 4-6 % of the server's CPU one request at a time and 10-13 % under 8
connections, and its full passes over the ~160,000 objects the process holds (the held catalog
entries, lists and co-watch, the feed cache, and the ~70,000 made at import and startup) stopped
the loop for ~100-130 ms each: the p99 under 8 connections was 81-115 ms. A feed makes and frees a
few thousand objects, so the default first threshold runs a young pass inside nearly every
assembly, and promotes what merely outlives it.

So, as the app starts serving: what exists then lives as long as the process (modules, the app,
its routes and clients) and leaves the collector's sight (``gc.freeze``), and the first threshold is
raised (``ServingConfig.gc_threshold``, 10,000 by default). Reference counting still frees nearly
everything at once; the collector remains for cycles, which still start a pass once 10,000 more
objects are alive than at the last one, so memory stays bounded. Measured beside the defaults,
the same tree, runs interleaved: no collector pass at all in 5-10 s runs; p99 81-115 -> 12-14 ms
under 8 connections and 16-25 -> 3-15 ms one request at a time; ranked feeds' p99 71 -> 38 ms. What
it does **not** give is less CPU per feed: medians of five interleaved runs, one request at a time,
1,138 µs with the defaults against 1,205 µs settled (spreads 1,010-1,202 and 1,056-1,448, on a
machine shared with other work): the collector's few percent do not show as a saving there. Its
gain is the tail. (A first comparison under 8 connections seemed to show 504/528 -> 423/425 µs
per answer, but it counted the admission control's shed answers too, ~60 % of them; per full
answer it showed no difference either.) Cache hits make almost nothing and are unchanged.
"""

from __future__ import annotations

import gc

from aiohttp import web


def settle_collector(threshold: tuple[int, int, int]) -> None:
    """Everything alive now frozen out of the collector's passes; ``threshold`` set."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)


def settle_collector_on_startup(app: web.Application, threshold: tuple[int, int, int]) -> None:
    """:func:`settle_collector` once ``app`` has started (its store, clients and snapshots made):
    for the serving process's entry points, not for apps made in tests."""
    async def settle(_app: web.Application) -> None:
        settle_collector(threshold)

    app.on_startup.append(settle)
