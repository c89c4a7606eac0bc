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


def test_the_degraded_trending_row_is_topped_up_like_a_fresh_one():
    """The snapshot's "Trending Now" row (a degraded feed) shows what a fresh feed would: the
    region's short list first, then the global list's other titles (``serving.ranked_lists.regional``)."""
    from serving.feed import FeedQuery
    from streamrec.model import RankedList, ScoredItem, trending_key
    from tests.fixtures.serving import CATALOG

    snapshot = TrendingSnapshot("1h")
    us, everywhere = trending_key("1h", "US"), trending_key("1h", GLOBAL)
    snapshot.lists = {us: RankedList(us, [ScoredItem("m3", 2.0)], 0),
                      everywhere: RankedList(everywhere, [ScoredItem(v, 1.0) for v in ("m1", "m3", "m4", "m6")], 0)}
    snapshot.items = {item.video_id: item for item in CATALOG}
    row = snapshot.row(FeedQuery("viewer", "US", limit=3), "/posters/{video_id}.svg")
    assert row is not None and row["title"] == "Trending Now in US"
    assert [i["video_id"] for i in row["items"]] == ["m3", "m1", "m4"]
