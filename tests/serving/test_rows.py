"""The rows the pipeline keeps besides trending: new releases (a region's own titles merged with
those available everywhere) and genre rows (the region's list, else the global one)."""

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


async def test_a_genre_row_reads_the_regions_list_first_and_says_why_it_is_there(feed_world, serve):
    store = open_store(feed_world.store_url)
    now_ms = int(time.time() * 1000)
    try:  # a GB-only Action list (what the pipeline writes for GB) beside the global one
        store.put_lists([RankedList(genre_key("Action", "GB"), [ScoredItem("m12", 9.0), ScoredItem("m9", 1.0)],
                                    now_ms, now_ms)])
        global_action = [s.video_id for s in store.get_lists([genre_key("Action")])[genre_key("Action")].items]
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        gb = rows_by_type(await get_feed(client, user="u1", query="?region=GB", headers=token("u1")))
        everywhere = rows_by_type(await get_feed(client, user="u1", headers=token("u1")))
    assert gb["genre:Action"]["title"] == "Popular in Action"  # from the history, not a stated preference
    assert ids(gb["genre:Action"]) == ["m12", "m9"]
    # The global page reads the global list (less what u1 watched, disliked or is watching).
    assert ids(everywhere["genre:Action"]) == [v for v in global_action if v not in {"m1", "m2", "m8", "m10"}][:10]
    assert all("Action" in TITLES[v].genres for v in ids(everywhere["genre:Action"]))
