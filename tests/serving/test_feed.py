"""GET /v1/users/{id}/feed against the real app and a real SQLite store seeded through the state machine."""

from __future__ import annotations

import asyncio
import gzip
import math
import time
import uuid
from typing import Any

import pytest

from serving.feed_service import READS
from serving.keys import SHARED, STORE
from streamrec import recommend
from streamrec.events.model import EventType, UserEvent
from streamrec.model import ScoredItem
from streamrec.recommend import learned
from streamrec.store import open_store
from tests.fixtures.serving import CATALOG, service_token, token

TITLES = {item.video_id: item for item in CATALOG}


def rows_by_type(feed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["type"] if row["type"] != "genre" else f"genre:{row['genre']}": row for row in feed["rows"]}


def ids(row: dict[str, Any]) -> list[str]:
    return [item["video_id"] for item in row["items"]]


async def get_feed(client: Any, user: str = "u1", query: str = "", headers: dict[str, str] | None = None,
                   status: int = 200) -> dict[str, Any]:
    response = await client.get(f"/v1/users/{user}/feed{query}", headers=headers or token(user))
    assert response.status == status, await response.text()
    return await response.json()


async def test_feed_has_every_row_in_the_seed_shape(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, headers=token("u1", name="Ann"))
    assert feed["user_id"] == "u1" and feed["degraded"] is False
    assert abs(feed["generated_at"] - time.time()) < 60
    rows = rows_by_type(feed)
    assert [r["type"] for r in feed["rows"]][:5] == [
        "continue_watching", "top_picks", "because_you_watched", "trending_now", "new_releases"]
    cw = rows["continue_watching"]
    assert cw["title"] == "Continue Watching for Ann"
    assert cw["items"] == [{"video_id": "m8", "title": "Theta", "genres": ["Drama"], "year": 2017, "type": "movie",
                            "maturity": "PG-13", "thumbnail": "/posters/m8.svg",
                            "progress_sec": 450, "duration_sec": 5400}]
    picks = rows["top_picks"]["items"]
    assert picks and all(0.0 <= p["match_score"] <= 1.0 for p in picks)
    byw = rows["because_you_watched"]
    assert byw["seed_video_id"] == "m8" and byw["title"] == "Because You Watched Theta"
    assert rows["trending_now"]["title"] == "Trending Now"
    assert any(key.startswith("genre:") for key in rows)
    for row in feed["rows"]:
        for item in row["items"]:
            assert item["title"] == TITLES[item["video_id"]].title
            assert item["thumbnail"] == f"/posters/{item['video_id']}.svg"


async def test_top_picks_are_what_recommend_ranks_for_the_stored_state(feed_world, serve):
    """The row is the served ranking (the learned ranker, at the stored model, here none yet: its
    first version) over the same store reads, not a second ranking."""
    store = open_store(feed_world.store_url)
    try:
        user = store.get_user("u1")
        assert user is not None
        seeds = recommend.seed_titles(user)
        inputs = recommend.RankingInputs(neighbours=store.get_neighbours(seeds, 50))
        lists = store.get_lists(["trending:1h:global", "new_releases:global"])
        items = store.get_items([i.video_id for i in CATALOG])
        genres = recommend.user_genres(user, items, 3)
        inputs = inputs.with_items(trending=lists["trending:1h:global"].items,
                                   new_releases=lists["new_releases:global"].items,
                                   genre_lists={g: v.items for g in genres
                                                for k, v in store.get_lists([f"genre:{g}"]).items()})
        candidates = recommend.candidate_titles(user, inputs)
        inputs = inputs.with_items(items=items, item_counts=store.get_item_counts(candidates + seeds),
                                   item_vectors=store.get_item_vectors(candidates))
        expected = learned.learned_top_picks(user, inputs, learned.RankerModel(), 20, user.updated_at)
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client)
    picks = rows_by_type(feed)["top_picks"]["items"]
    assert [p["video_id"] for p in picks] == [s.video_id for s in expected if s.score >= 0.05]
    assert [p["match_score"] for p in picks] == [round(s.score, 4) for s in expected if s.score >= 0.05]


async def test_filters_watched_disliked_and_in_progress(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client)
    rows = rows_by_type(feed)
    for kind, row in rows.items():
        shown = set(ids(row))
        assert "m10" not in shown, f"disliked title in {kind}"
        if kind != "continue_watching":
            assert not shown & {"m1", "m2"}, f"watched title in {kind}"
    assert "m8" not in ids(rows["top_picks"])  # continue watching is not repeated in top picks


async def test_region_filter_removes_titles_not_licensed_there(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        us = await get_feed(client, query="?region=US")
        gb = await get_feed(client, query="?region=GB")
    shown_us = {v for row in us["rows"] for v in ids(row)}
    shown_gb = {v for row in gb["rows"] for v in ids(row)}
    assert "m12" not in shown_us and "m12" in shown_gb  # m12 is GB-only
    assert "m5" in shown_us and "m5" not in shown_gb  # m5 is US-only
    assert rows_by_type(us)["trending_now"]["title"] == "Trending Now in US"


async def test_kids_profile_sees_nothing_above_its_rating(feed_world, serve):
    allowed = {"G", "PG"}
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, headers=token("u1", max_maturity="PG"))
    shown = [v for row in feed["rows"] for v in ids(row)]
    assert shown, "a kids profile still gets a page"
    assert all(TITLES[v].maturity_rating in allowed for v in shown)
    assert "continue_watching" not in rows_by_type(feed)  # m8 is PG-13: the row has nothing left


async def test_fields_ids_limit_and_rows(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, query="?fields=ids&limit=2&rows=top_picks,trending_now")
    assert [r["type"] for r in feed["rows"]] == ["top_picks", "trending_now"]
    for row in feed["rows"]:
        assert 1 <= len(row["items"]) <= 2
        for item in row["items"]:
            assert set(item) <= {"video_id", "match_score"}
            assert "video_id" in item


async def test_new_user_gets_cold_start_rows_only(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, user="nobody")
    kinds = [r["type"] for r in feed["rows"]]
    assert kinds == ["trending_now", "new_releases"]  # nothing personal to show: those rows are left out


async def test_stated_preferences_give_a_genre_row_and_picks(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, user="u2")
    rows = rows_by_type(feed)
    assert rows["genre:Comedy"]["title"] == "Because You Like Comedy"  # a stated preference
    assert all("Comedy" in TITLES[v].genres for v in ids(rows["genre:Comedy"]))
    top = ids(rows["top_picks"])
    assert top and "Comedy" in TITLES[top[0]].genres


async def test_cache_serves_repeats_and_a_state_change_invalidates_it(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        first = await get_feed(client)
        again = await get_feed(client)
        assert again == first
        metrics = await (await client.get("/metrics")).text()
        assert 'streamrec_feed_cache_total{result="hit"} 1.0' in metrics
        # The pipeline writes a new state (a new title in progress): the version changes.
        store = open_store(feed_world.store_url)
        try:
            user = store.get_user("u1")
            assert user is not None
            event = UserEvent(str(uuid.uuid4()), EventType.HEARTBEAT, "u1", user.updated_at + 1000, video_id="m3",
                              position_sec=60.0, duration_sec=5400.0)
            store.put_users([recommend.apply_event(user, event).state])
        finally:
            store.close()
        fresh = await get_feed(client)
    assert ids(rows_by_type(fresh)["continue_watching"])[0] == "m3"


async def test_a_repeat_is_sent_gzipped_to_clients_that_take_gzip(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        built = await client.get("/v1/users/u1/feed", headers={**token("u1"), "Accept-Encoding": "gzip"})
        plain = await client.get("/v1/users/u1/feed", headers={**token("u1"), "Accept-Encoding": "identity"})
        hit = await client.get("/v1/users/u1/feed", headers={**token("u1"), "Accept-Encoding": "gzip, br"},
                               auto_decompress=False)
        first, repeat, raw = await built.read(), await plain.read(), await hit.read()
    assert "Content-Encoding" not in built.headers and "Content-Encoding" not in plain.headers
    assert hit.headers["Content-Encoding"] == "gzip" and hit.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(raw) == first == repeat and len(raw) < len(first) / 3
    assert int(hit.headers["Content-Length"]) == len(raw)


async def test_another_profile_cannot_read_the_feed(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        denied = await get_feed(client, user="u1", headers=token("u2"), status=403)
        assert denied["error"] == "forbidden"
        served = await get_feed(client, user="u1", headers=service_token())
        assert served["user_id"] == "u1"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=51", "limit"),
        ("?limit=ten", "limit"),
        ("?rows=top_picks,nonsense", "rows"),
        ("?fields=everything", "fields"),
        ("?region=U%20S", "region"),
        ("?colour=red", "colour"),
        ("?limit=2&limit=3", "limit"),
    ],
)
async def test_invalid_query_parameters_name_the_field(feed_world, serve, query, field):
    async with serve(feed_world.store_url) as client:
        body = await get_feed(client, query=query, status=400)
    assert body["error"] == "invalid_parameter"
    assert body["errors"][0]["field"] == field and body["errors"][0]["reason"]


async def test_invalid_user_id_in_the_path(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        response = await client.get("/v1/users/-bad%20id/feed", headers=service_token())
        assert response.status == 400
        assert (await response.json())["errors"][0]["field"] == "user_id"


async def test_store_down_answers_the_last_feed_degraded(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        healthy = await get_feed(client, query="?region=US")
        client.app[STORE].store.close()  # the backend goes away under the running service
        degraded = await get_feed(client, query="?region=US&limit=1")
        metrics = await (await client.get("/metrics")).text()
    assert degraded["degraded"] is True
    assert [r["type"] for r in degraded["rows"]] == [r["type"] for r in healthy["rows"]]
    assert all(len(r["items"]) == 1 for r in degraded["rows"])
    assert ids(degraded["rows"][0]) == ids(healthy["rows"][0])[:1]
    assert 'streamrec_feed_degraded_total{cause="store_error",source="cache"} 1.0' in metrics


async def test_store_down_repeats_the_same_request_flagged_degraded(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        healthy = await get_feed(client, query="?limit=3")
        client.app[STORE].store.close()
        degraded = await get_feed(client, query="?limit=3")
    assert degraded == {**healthy, "degraded": True}


async def test_store_down_without_a_cached_feed_answers_trending_from_memory(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        trending = await (await client.get("/v1/trending?limit=50", headers=token("u1"))).json()
        client.app[STORE].store.close()
        feed = await get_feed(client, user="u1")
    assert feed["degraded"] is True
    assert [r["type"] for r in feed["rows"]] == ["trending_now"]
    assert ids(feed["rows"][0]) == [i["video_id"] for i in trending["items"]][:20]


async def test_store_deadline_gives_a_degraded_feed_not_an_error(feed_world, serve):
    # A deadline no store read can meet: every request degrades, none fails.
    async with serve(feed_world.store_url, store_deadline_s=1e-6) as client:
        feed = await get_feed(client)
    assert feed["degraded"] is True


async def test_overload_is_shed_at_once_with_degraded_answers(feed_world, serve):
    # One feed may read the store at a time: of eight arriving together, the rest are turned away
    # (degraded, still 200) instead of queueing past their deadline.
    async with serve(feed_world.store_url, max_feed_reads=1) as client:
        responses = await asyncio.gather(*(client.get("/v1/users/u1/feed", headers=token("u1")) for _ in range(8)))
        feeds = [await r.json() for r in responses]
        metrics = await (await client.get("/metrics")).text()
    assert all(r.status == 200 for r in responses)
    assert any(not f["degraded"] for f in feeds) and any(f["degraded"] for f in feeds)
    assert 'cause="overload"' in metrics


@pytest.mark.parametrize("cause", ["store_error", "overload"])
async def test_a_kids_token_gets_a_filtered_feed_when_the_feed_degrades(feed_world, serve, cause):
    # Issue 11, defect 1: the last feed built for (user, region) was re-served to a kids token
    # unfiltered when the store failed or the request was shed.
    allowed = {"G", "PG"}
    async with serve(feed_world.store_url) as client:
        adult = await get_feed(client, query="?region=US", headers=service_token())
        assert {TITLES[v].maturity_rating for row in adult["rows"] for v in ids(row)} - allowed, "R titles to leak"
        if cause == "store_error":
            client.app[STORE].store.close()
        else:  # every read slot taken by feeds in flight: the next one is shed at once
            client.app[READS].active = client.app[READS].limit
        feeds = [await get_feed(client, query="?region=US", headers=token("u1", max_maturity="PG"))]
        metrics = await (await client.get("/metrics")).text()
    assert f'cause="{cause}"' in metrics
    degraded = [f for f in feeds if f["degraded"]]
    assert degraded
    for feed in degraded:
        shown = [v for row in feed["rows"] for v in ids(row)]
        assert all(TITLES[v].maturity_rating in allowed for v in shown), shown
        for row in feed["rows"]:
            assert all(item.get("maturity") in allowed for item in row["items"])


def test_reshape_refilters_a_stored_feed_for_another_viewer():
    from serving.feed import FeedQuery
    from serving.rows import reshape

    feed = {"user_id": "u1", "region": "US", "degraded": False, "rows": [
        {"type": "trending_now", "title": "Trending", "items": [
            {"video_id": v} for v in ("m1", "m3", "m12", "m7", "gone")]}]}
    kids = FeedQuery("u1", "US", limit=10, max_maturity="PG")
    shaped = reshape(feed, kids, TITLES)
    # m1 is R, m12 is GB-only, "gone" is unknown to the catalog: only m3 and m7 pass.
    assert ids(shaped["rows"][0]) == ["m3", "m7"]
    assert ids(reshape(feed, FeedQuery("u1", "US", limit=1), TITLES)["rows"][0]) == ["m1"]


async def test_explain_shows_the_ranker_its_model_version_and_each_features_part(feed_world, serve):
    """explain=true: each top pick carries the parts of its score; they add up to the score the
    stored model gives it (here a model version 3 written to the store, as the trainer does)."""
    store = open_store(feed_world.store_url)
    try:
        weights = learned.initial_weights() + 0.25
        store.put_lists([learned.model_to_list(learned.RankerModel(weights, version=3, examples=100), 0)])
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        plain = await get_feed(client)
        feed = await get_feed(client, query="?explain=true")
        await get_feed(client, query="?explain=yes", status=400)
    picks = rows_by_type(feed)["top_picks"]["items"]
    assert picks and [p["video_id"] for p in picks] == ids(rows_by_type(plain)["top_picks"])
    assert all("explain" not in p for p in rows_by_type(plain)["top_picks"]["items"])
    for pick in picks:
        explain = pick["explain"]
        assert explain["ranker"] == "learned" and explain["model_version"] == 3
        assert set(explain["contributions"]) <= set(learned.FEATURES)
        raw = sum(explain["contributions"].values())
        assert pick["match_score"] == pytest.approx(1 - math.exp(-max(raw, 0) / 0.3), abs=1e-3)


def _with_stored_picks(store_url: str, picks: list[str], score: float, picks_at_ms: int) -> None:
    """u1's state with nearline top picks as the pipelines' refresh writes them."""
    store = open_store(store_url)
    try:
        user = store.get_user("u1")
        assert user is not None
        user.top_picks = [ScoredItem(v, score) for v in picks]
        user.top_picks_at = picks_at_ms
        store.put_users([user])
    finally:
        store.close()


async def test_current_nearline_picks_are_served_as_they_are_and_a_watch_since_ranks_them_live(feed_world, serve):
    """The refresh's picks, when no title was watched since it was due, are the row (order and
    scores as stored; here a marker score the ranking never gives); one watch after it and the
    row is ranked for the request, without the title just watched."""
    stored = ["m12", "m9", "m5", "m6", "m7"]  # unwatched by u1, in an order of our own
    store = open_store(feed_world.store_url)
    try:
        user = store.get_user("u1")
        assert user is not None
        refreshed_at = user.updated_at + 5_000
    finally:
        store.close()
    _with_stored_picks(feed_world.store_url, stored, 0.4321, refreshed_at)
    query = "?limit=3&rows=top_picks"
    async with serve(feed_world.store_url) as client:
        served = rows_by_type(await get_feed(client, query=query))["top_picks"]["items"]
        assert [p["video_id"] for p in served] == stored[:3]
        assert {p["match_score"] for p in served} == {0.4321}
        explained = rows_by_type(await get_feed(client, query=query + "&explain=true"))["top_picks"]["items"]
        assert all(p["match_score"] != 0.4321 for p in explained)  # explain: always ranked
        store = open_store(feed_world.store_url)
        try:
            user = store.get_user("u1")
            assert user is not None
            event = UserEvent(str(uuid.uuid4()), EventType.COMPLETE, "u1", refreshed_at + 1000, region="US",
                              video_id="m12", position_sec=5400.0, duration_sec=5400.0)
            store.put_users([recommend.apply_event(user, event).state])
        finally:
            store.close()
        ranked = rows_by_type(await get_feed(client, query=query))["top_picks"]["items"]
        metrics = await (await client.get("/metrics")).text()
    assert ranked and "m12" not in [p["video_id"] for p in ranked]
    assert all(p["match_score"] != 0.4321 for p in ranked)
    assert 'streamrec_feed_top_picks_total{source="nearline"} 1.0' in metrics
    assert 'streamrec_feed_top_picks_total{source="live"} 2.0' in metrics


async def test_old_nearline_picks_are_ranked_again(feed_world, serve):
    store = open_store(feed_world.store_url)
    try:
        user = store.get_user("u1")
        assert user is not None
        refreshed_at = user.updated_at + 5_000  # after every watch, but minutes ago
    finally:
        store.close()
    _with_stored_picks(feed_world.store_url, ["m12", "m9", "m5"], 0.4321, refreshed_at)
    async with serve(feed_world.store_url, picks_max_age_s=60.0) as client:
        served = rows_by_type(await get_feed(client, query="?limit=3&rows=top_picks"))["top_picks"]["items"]
    assert served and all(p["match_score"] != 0.4321 for p in served)


async def test_list_rows_shared_between_feeds_keep_each_viewers_own_filters(feed_world, serve):
    """The list rows' filtered views are made once per list and shared by every feed: a kids
    token after an adult one still sees nothing above its rating, and each viewer's own watched
    titles leave only its own rows."""
    async with serve(feed_world.store_url) as client:
        adult = await get_feed(client, query="?region=US")
        kids = await get_feed(client, query="?region=US", headers=token("u1", max_maturity="PG"))
        other = await get_feed(client, user="u2", query="?region=US", headers=token("u2"))
    assert all(TITLES[v].maturity_rating in {"G", "PG"} for row in kids["rows"] for v in ids(row))
    lists = ("trending_now", "new_releases", "genre")
    u1_listed = {v for row in adult["rows"] if row["type"] in lists for v in ids(row)}
    assert u1_listed and not u1_listed & {"m1", "m2"}  # u1 finished both
    assert {"m1", "m2"} <= set(ids(rows_by_type(other)["trending_now"]))  # u2 watched nothing


def test_list_rows_keep_one_slot_per_list_and_follow_its_newest_object() -> None:
    """Each refresh of a ranked list is a new object: its slot is replaced, not added to, so the
    shared row titles stay as many as the lists in use, and always those of the newest object."""
    from serving import feed as feed_module
    from serving.feed import FeedQuery, row_titles

    feed_module._ROW_TITLES.clear()
    query = FeedQuery("u1", "US", limit=2)
    for n in range(50):
        ranked = [ScoredItem(v, 1.0) for v in (["m1", "m2", "m3"] if n % 2 else ["m3", "m9", "m1"])]
        titles = row_titles("trending:1h:US", ranked, TITLES, query)
        assert list(titles) == [s.video_id for s in ranked[:4] if s.video_id in TITLES]
    row_titles("genre:Drama:US", [ScoredItem("m8", 1.0)], TITLES, query)
    assert len(feed_module._ROW_TITLES) == 2


def test_a_list_row_fills_from_below_the_titles_the_viewer_has_watched() -> None:
    """A viewer who has watched a list's top still gets a full row from further down it (the
    demo's most active viewer had 6 of 20 in each genre row when rows looked only 2 x limit deep)."""
    from serving.feed import FeedInputs, FeedQuery
    from serving.rows import compose_feed
    from streamrec.model import RankedList, UserState, trending_key

    order = ["m1", "m2", "m3", "m4", "m6", "m7", "m9"]
    user = UserState("viewer", seen=order[:5])
    lists = {trending_key("1h", "global"): RankedList(trending_key("1h", "global"), [ScoredItem(v, 1.0) for v in order], 0)}
    inputs = FeedInputs(user, lists=lists, ranking=recommend.RankingInputs(items=TITLES))
    feed = compose_feed(inputs, FeedQuery("viewer", "global", limit=2, rows=("trending_now",)), window="1h",
                        thumbnail_template="/posters/{video_id}.svg")
    assert ids(rows_by_type(feed)["trending_now"]) == ["m7", "m9"]


async def test_because_you_watched_is_ranked_once_per_seed_and_filtered_per_viewer(feed_world, serve):
    """u1 and o8 both watched m8 last: the second viewer's row comes from the ranking kept for the
    first (a co-watch change in between shows only after ``similar_ttl_s``, as "more like this"),
    without the titles the second viewer has seen."""
    async with serve(feed_world.store_url, similar_ttl_s=600.0) as client:
        first = rows_by_type(await get_feed(client, query="?region=US"))["because_you_watched"]
        assert first["seed_video_id"] == "m8"
        kept = [ranked for _, _, ranked in client.app[SHARED]._similar.values()]
        assert len(kept) == 1
        kept_ids = [s.video_id for s in kept[0]]
        newcomer = next(v for v in sorted(TITLES) if v not in kept_ids and v not in ("m8", "m10")
                        and TITLES[v].maturity_rating in ("G", "PG", "PG-13", "R") and not TITLES[v].regions)
        store = open_store(feed_world.store_url)
        try:
            store.add_cowatch({("m8", newcomer): 50, (newcomer, "m8"): 50})
        finally:
            store.close()
        o8 = rows_by_type(await get_feed(client, user="o8", query="?region=US", headers=token("o8")))
        byw = o8["because_you_watched"]
        # o5 watches m8 now: a ranking kept from before its watch could reach the store is not
        # its answer (SIMILAR_SETTLE_MS): ranked again, with the new co-watch counts.
        store = open_store(feed_world.store_url)
        try:
            o5 = store.get_user("o5")
            assert o5 is not None
            event = UserEvent(str(uuid.uuid4()), EventType.COMPLETE, "o5", int(time.time() * 1000), region="US",
                              video_id="m8", position_sec=5400.0, duration_sec=5400.0)
            store.put_users([recommend.apply_event(o5, event).state])
        finally:
            store.close()
        just_watched = rows_by_type(await get_feed(client, user="o5", query="?region=US", headers=token("o5")))
    assert just_watched["because_you_watched"]["seed_video_id"] == "m8"
    assert ids(just_watched["because_you_watched"])[0] == newcomer
    assert byw["seed_video_id"] == "m8"
    assert newcomer not in ids(byw)  # the kept ranking
    assert not set(ids(byw)) & {"m10", "m8"}  # o8's own watched titles
    assert ids(byw) == [v for v in kept_ids if v not in ("m10", "m8")][: len(ids(byw))]
    async with serve(feed_world.store_url) as client:  # a fresh service: ranked again
        fresh = rows_by_type(await get_feed(client, user="o8", query="?region=US", headers=token("o8")))
    assert ids(fresh["because_you_watched"])[0] == newcomer


async def test_because_you_watched_reads_the_content_pool_only_when_ranked_from_it(feed_world, monkeypatch):
    """The seed's content pool (its genres' lists, ~300 titles in production) is read only when
    its co-watch neighbours leave the list short; either way the ranking is the one made with
    every catalog entry at hand."""
    from serving import feed as feed_module
    from serving.feed import FeedQuery, content_pool, read_feed_inputs, similar_to
    from serving.shared_reads import SharedReads
    from streamrec.store.aio import AsyncStore
    from tests.fixtures.serving import OTHERS

    pools = 0
    real_pool = feed_module.content_pool

    def counted_pool(genre_lists):  # type: ignore[no-untyped-def]
        nonlocal pools
        pools += 1
        return real_pool(genre_lists)

    monkeypatch.setattr(feed_module, "content_pool", counted_pool)
    store = AsyncStore(open_store(feed_world.store_url))
    sync = open_store(feed_world.store_url)
    everything = sync.get_items(list(TITLES))
    compared = 0
    try:
        for user_id in ["u1", *OTHERS]:
            user = sync.get_user(user_id)
            assert user is not None
            for limit, region in ((1, "global"), (2, "US"), (10, "US"), (20, "global")):
                query = FeedQuery(user_id, region, limit)
                inputs = await read_feed_inputs(store, SharedReads(similar_ttl_s=1e-9), user, query, "1h",
                                                rank_live=False)
                seed = feed_module.because_seed(user)
                assert seed is not None and inputs.similar is not None
                r = inputs.ranking
                reference = similar_to(seed.video_id, r.with_items(items=everything), query, content_pool(
                    r.genre_lists.get(g, ()) for g in everything[seed.video_id].genres))
                assert inputs.similar == reference, (user_id, limit, region)
                compared += 1
    finally:
        sync.close()
        await store.close()
    assert compared == 36 and 0 < pools < compared  # both ways were taken
