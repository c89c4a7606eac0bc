"""The serving process's garbage collector, settled once the app has started.

Profiled under wrk (``make bench-serving``'s data, uncached feeds with nearline picks, 8
connections, a collector callback timing every pass): with CPython's default thresholds
(700, 10, 10) the collector took 9-13 % of the server's CPU, and its full passes over the ~160,000
objects the process holds (the held catalog entries, lists and co-watch, the feed cache, and the
~70,000 made at import and startup) stopped the loop for ~100 ms each, about every 1.5 s: the p99
under wrk was 82-95 ms. A feed makes and frees a few thousand objects, so the default first
threshold runs a young pass inside nearly every assembly, and promotes what merely outlives it.

So, as the app starts serving: what exists then lives as long as the process (modules, the app,
its routes and clients) and leaves the collector's sight (``gc.freeze``), and the first threshold is
raised (``ServingConfig.gc_threshold``, 10,000 by default). Reference counting still frees nearly
everything at once; the collector remains for cycles, which still start a pass once 10,000 more
objects are alive than at the last one, so memory stays bounded. Measured beside the defaults,
the same tree, back to back: 504/528 -> 423/425 µs of server CPU per feed, collector 9-13 % -> 0 %,
p99 82-95 -> 9-13 ms (ranked feeds: collector 5.6 -> 1.5 %, p99 71 -> 38 ms; cache hits: unchanged,
they make almost nothing).
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
