"""The in-memory trending snapshot (the degraded answer): which regions it keeps."""

from __future__ import annotations

from serving.clients import TRACKED_REGIONS, TrendingSnapshot
from serving.feed import GLOBAL
from streamrec.store import open_store
from streamrec.store.aio import AsyncStore


def test_junk_regions_do_not_take_the_slots_for_good():
    # Issue 11: the first 64 regions anyone asked for kept the snapshot's slots forever.
    snapshot = TrendingSnapshot("1h")
    for n in range(3 * TRACKED_REGIONS):
        snapshot.track(f"junk{n}")
    snapshot.track("US")
    assert "US" in snapshot.regions and GLOBAL in snapshot.regions
    assert len(snapshot.regions) <= TRACKED_REGIONS


async def test_a_refresh_keeps_only_regions_the_store_has_lists_for(feed_world):
    store = AsyncStore(open_store(feed_world.store_url))
    try:
        snapshot = TrendingSnapshot("1h")
        for region in ("US", "nowhere1", "nowhere2"):
            snapshot.track(region)
        await snapshot.refresh(store, ("1h", "24h"))
    finally:
        await store.close()
    assert set(snapshot.regions) == {GLOBAL, "US"}
