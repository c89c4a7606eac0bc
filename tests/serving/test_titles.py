"""GET /v1/videos/{id}/similar and GET /v1/trending on the real app and store."""

from __future__ import annotations

from typing import Any

import pytest

from serving.keys import STORE
from streamrec import recommend
from streamrec.store import open_store
from tests.fixtures.serving import CATALOG, token

TITLES = {item.video_id: item for item in CATALOG}


async def get(client: Any, path: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
    response = await client.get(path, headers=kwargs.pop("headers", token("u1")), **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


async def test_similar_ranks_cowatched_titles_first(feed_world, serve):
    store = open_store(feed_world.store_url)
    try:
        own = store.get_neighbours(["m1"], 100)["m1"]
        counts = store.get_item_counts(["m1"] + [n for n, _ in own])
    finally:
        store.close()
    strong = sorted((n for n, c in own if c >= 3),
                    key=lambda n: (-recommend.cowatch_similarity(dict(own)[n], counts["m1"], counts[n]), n))
    async with serve(feed_world.store_url) as client:
        body = await get(client, "/v1/videos/m1/similar?limit=10")
    shown = [i["video_id"] for i in body["items"]]
    assert body["video_id"] == "m1" and body["title"] == "Alpha"
    assert strong and shown[: len(strong)] == strong
    assert "m1" not in shown
    assert all(0.0 <= i["score"] <= 1.0 for i in body["items"])
    assert body["items"][0]["title"] == TITLES[shown[0]].title


async def test_a_title_nobody_watched_gets_content_neighbours(feed_world, serve):
    # m11 (Action/Thriller, 2021) has no co-watch at all: its list comes from content similarity.
    async with serve(feed_world.store_url) as client:
        body = await get(client, "/v1/videos/m11/similar?fields=ids")
    shown = [i["video_id"] for i in body["items"]]
    assert shown[:2] == ["m1", "m6"]  # the two other Action/Thriller titles
    assert set(body["items"][0]) == {"video_id", "score"}


async def test_similar_filters_region_and_maturity(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        gb = await get(client, "/v1/videos/m1/similar?region=GB")
        kids = await get(client, "/v1/videos/m1/similar", headers=token("u1", max_maturity="PG"))
    assert "m5" not in [i["video_id"] for i in gb["items"]]
    assert kids["items"] and all(TITLES[i["video_id"]].maturity_rating in ("G", "PG") for i in kids["items"])


async def test_similar_errors(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        unknown = await get(client, "/v1/videos/nope/similar", status=404)
        assert unknown["error"] == "unknown_video" and unknown["errors"][0]["field"] == "video_id"
        bad_limit = await get(client, "/v1/videos/m1/similar?limit=500", status=400)
        assert bad_limit["errors"][0]["field"] == "limit"
        bad_id = await get(client, "/v1/videos/bad%20id/similar", status=400)
        assert bad_id["errors"][0]["field"] == "video_id"
        client.app[STORE].store.close()
        down = await client.get("/v1/videos/m1/similar", headers=token("u1"))
        assert down.status == 503 and down.headers["Retry-After"]


async def test_trending_by_region_with_window_end_and_updated_at(feed_world, serve):
    store = open_store(feed_world.store_url)
    try:
        lists = store.get_lists(["trending:24h:US", "trending:1h:global"])
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        us = await get(client, "/v1/trending?region=US&window=24h&limit=5")
        fallback = await get(client, "/v1/trending?region=FR")
    assert us["region"] == "US" and us["window"] == "24h" and us["list_region"] == "US"
    assert us["window_end"] == lists["trending:24h:US"].window_end / 1000
    assert us["updated_at"] == lists["trending:24h:US"].updated_at / 1000
    expected = [s.video_id for s in lists["trending:24h:US"].items if "GB" not in TITLES[s.video_id].regions][:5]
    assert [i["video_id"] for i in us["items"]] == expected
    assert fallback["list_region"] == "global"  # no list for FR: the global one, filtered for FR
    assert "m5" not in [i["video_id"] for i in fallback["items"]]


@pytest.mark.parametrize(("query", "field"), [("?window=7d", "window"), ("?limit=-1", "limit"), ("?when=now", "when")])
async def test_trending_validates_parameters(feed_world, serve, query, field):
    async with serve(feed_world.store_url) as client:
        body = await get(client, f"/v1/trending{query}", status=400)
    assert body["errors"][0]["field"] == field


async def test_trending_survives_the_store_going_down(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        healthy = await get(client, "/v1/trending")
        remembered = await get(client, "/v1/trending")  # within lists_ttl_s: from memory
        client.app[STORE].store.close()
        still = await get(client, "/v1/trending")
    assert still == remembered == healthy
    # Once the remembered list is too old the store is asked, fails, and the snapshot answers.
    async with serve(feed_world.store_url, lists_ttl_s=1e-6) as client:
        healthy = await get(client, "/v1/trending")
        client.app[STORE].store.close()
        degraded = await get(client, "/v1/trending")
    assert degraded["degraded"] is True and healthy["degraded"] is False
    assert degraded["items"] == healthy["items"]


async def test_similar_is_kept_and_outlives_a_store_failure(feed_world, serve):
    async with serve(feed_world.store_url, similar_ttl_s=1e-6) as client:
        first = await get(client, "/v1/videos/m1/similar?limit=5")
        client.app[STORE].store.close()
        # Past its TTL the answer is recomputed; the store fails; the older answer is served.
        again = await get(client, "/v1/videos/m1/similar?limit=5")
        other = await client.get("/v1/videos/m2/similar", headers=token("u1"))
    assert again == first
    assert other.status == 503
