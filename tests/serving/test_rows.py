"""The rows the pipeline keeps besides trending: new releases (a region's own titles merged with
those available everywhere) and genre rows (the region's list topped up from the global one)."""

from __future__ import annotations

import time

from streamrec.model import RankedList, ScoredItem, genre_key, new_releases_key
from streamrec.store import open_store
from tests.fixtures.serving import CATALOG, token
from tests.serving.test_feed import get_feed, ids, rows_by_type

TITLES = {item.video_id: item for item in CATALOG}


async def test_new_releases_merge_the_regions_own_titles_with_the_global_list(feed_world, serve):
    store = open_store(feed_world.store_url)
    try:
        lists = store.get_lists([new_releases_key(), new_releases_key("US"), new_releases_key("GB")])
    finally:
        store.close()
    assert [s.video_id for s in lists[new_releases_key("US")].items] == ["m5"]
    assert [s.video_id for s in lists[new_releases_key("GB")].items] == ["m12"]
    async with serve(feed_world.store_url) as client:
        us = rows_by_type(await get_feed(client, user="nobody", query="?region=US&limit=20"))["new_releases"]
        gb = rows_by_type(await get_feed(client, user="nobody", query="?region=GB&limit=20"))["new_releases"]
    # Added one day apart, newest first (m12 yesterday, m11 the day before, ...); each region sees
    # its own restricted title and not the other region's.
    assert ids(gb)[:2] == ["m12", "m11"] and "m5" not in ids(gb)
    assert ids(us)[0] == "m11" and "m5" in ids(us) and "m12" not in ids(us)
    assert ids(us) == [v for v in ["m11", "m10", "m9", "m8", "m7", "m6", "m5", "m4", "m3", "m2", "m1"] if v in ids(us)]


async def test_a_genre_row_reads_the_regions_list_first_topped_up_from_the_global_one(feed_world, serve):
    store = open_store(feed_world.store_url)
    now_ms = int(time.time() * 1000)
    try:  # a short GB-only Action list (what the pipeline writes early in a window) beside the global one
        store.put_lists([RankedList(genre_key("Action", "GB"), [ScoredItem("m12", 9.0), ScoredItem("m9", 1.0)],
                                    now_ms, now_ms)])
        global_action = [s.video_id for s in store.get_lists([genre_key("Action")])[genre_key("Action")].items]
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        gb = rows_by_type(await get_feed(client, user="u1", query="?region=GB", headers=token("u1")))
        everywhere = rows_by_type(await get_feed(client, user="u1", headers=token("u1")))
    assert gb["genre:Action"]["title"] == "Popular in Action"  # from the history, not a stated preference
    # GB's own titles first, in GB's order, then the global list's others that u1 may see in GB
    # (not watched, disliked or in progress, licensed there): a full row, not two titles.
    u1_done = {"m1", "m2", "m8", "m10"}
    more = [v for v in global_action if v not in {"m12", "m9"} | u1_done
            and (not TITLES[v].regions or "GB" in TITLES[v].regions)]
    assert more, "the fixture must leave global titles to top up with"
    assert ids(gb["genre:Action"]) == (["m12", "m9"] + more)[:10]
    # The global page reads the global list (less what u1 watched, disliked or is watching).
    assert ids(everywhere["genre:Action"]) == [v for v in global_action if v not in u1_done][:10]
    assert all("Action" in TITLES[v].genres for v in ids(everywhere["genre:Action"]))


def test_a_short_regional_list_is_topped_up_once_per_pair_of_lists() -> None:
    """``regional``: the region's entries first (their order and scores), then the global list's
    others up to ``RANKED_LIST_LIMIT``; the same object while the two lists are the same, so the
    rows' views made from it are reused."""
    from serving.ranked_lists import regional
    from streamrec.model import RANKED_LIST_LIMIT

    own = RankedList("genre:Drama:US", [ScoredItem("a", 3.0), ScoredItem("b", 1.0)], 5, 7)
    everywhere = RankedList("genre:Drama", [ScoredItem(v, 10.0 - i) for i, v in enumerate("cadbe")], 6, 8)
    lists = {own.key: own, everywhere.key: everywhere}
    merged = regional(lists, own.key, everywhere.key)
    assert merged is not None
    assert [(s.video_id, s.score) for s in merged.items] == [("a", 3.0), ("b", 1.0), ("c", 10.0), ("d", 8.0),
                                                             ("e", 6.0)]
    assert (merged.key, merged.updated_at, merged.window_end) == (own.key, 5, 7)
    assert regional(dict(lists), own.key, everywhere.key) is merged
    assert regional({everywhere.key: everywhere}, own.key, everywhere.key) is everywhere  # no list for the region
    assert regional({own.key: own}, own.key, everywhere.key) is own  # no global list
    full = RankedList(own.key, [ScoredItem(f"t{i}", 1.0) for i in range(RANKED_LIST_LIMIT)], 5)
    assert regional({own.key: full, everywhere.key: everywhere}, own.key, everywhere.key) is full
    nearly = RankedList(own.key, full.items[:-1], 5)
    topped = regional({own.key: nearly, everywhere.key: everywhere}, own.key, everywhere.key)
    assert topped is not None and len(topped.items) == RANKED_LIST_LIMIT and topped.items[-1].video_id == "c"
