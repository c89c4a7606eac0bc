"""Experiments in the service: the feed ranks by the viewer's variant and says which, every
impression carries the labels, the results route answers service tokens only."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from serving.feed import FeedInputs, FeedQuery
from serving.rows import compose_feed
from streamrec import recommend
from streamrec.config import TOPIC_IMPRESSIONS
from streamrec.events.codec import default_codec
from streamrec.events.model import Impression
from streamrec.experiments.attribution import window_of
from streamrec.experiments.config import HOLDOUT, assign, parse_experiment
from streamrec.experiments.storage import counts_lists, put_experiment
from streamrec.model import ScoredItem, UserState
from streamrec.recommend.variants import VARIANTS
from streamrec.store import open_store
from tests.fixtures.kafka import read_records
from tests.fixtures.serving import CATALOG, service_token, token

NOW_S = int(time.time())
DOC: dict[str, Any] = {"id": "fresh-vs-blend", "salt": "t", "start": NOW_S - 3600,
                       "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}


def set_experiment(store_url: str, doc: dict[str, Any] = DOC) -> None:
    store = open_store(store_url)
    try:
        put_experiment(store, parse_experiment(doc))
    finally:
        store.close()


def test_top_picks_follow_the_variants_ranking() -> None:
    # The same inputs, two rankings: "fresh" weighs trending more, so the trending title comes
    # before the precomputed pick only there.
    items = {i.video_id: i for i in CATALOG}
    pick, hot = sorted(items)[:2]
    user = UserState("u", top_picks=[ScoredItem(pick, 0.3)])
    ranking = recommend.RankingInputs(items=items, trending=[ScoredItem(hot, 1.0)])
    picked = {}
    for variant in ("blend", "fresh"):
        query = FeedQuery("u", "global", 10, rows=("top_picks",), experiment="x", variant=variant)
        feed = compose_feed(FeedInputs(user, ranking=ranking, config=VARIANTS[variant]), query,
                            window="1h", thumbnail_template="{video_id}")
        assert (feed["experiment"], feed["variant"]) == ("x", variant)
        picked[variant] = [i["video_id"] for i in feed["rows"][0]["items"]]
    assert picked["blend"][0] == pick and picked["fresh"][0] == hot


async def test_the_feed_and_its_impressions_carry_the_viewers_variant(feed_world, serve, kafka_broker):
    set_experiment(feed_world.store_url)
    expected = assign(parse_experiment(DOC), "u1")
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        response = await client.get("/v1/users/u1/feed?region=US", headers=token("u1"))
        feed = await response.json()
        request_id = response.headers["X-Request-Id"]
        assert (feed["experiment"], feed["variant"]) == ("fresh-vs-blend", expected)
        for _ in range(100):
            if 'streamrec_impressions_total{outcome="sent"}' in await (await client.get("/metrics")).text():
                break
            await asyncio.sleep(0.1)
    codec = default_codec()
    records = await asyncio.to_thread(read_records, kafka_broker.bootstrap, TOPIC_IMPRESSIONS)
    mine = [i for i in (codec.decode(r.value or b"") for r in records)
            if isinstance(i, Impression) and i.request_id == request_id]
    assert mine and all((i.experiment, i.variant) == ("fresh-vs-blend", expected) for i in mine)


async def test_without_a_running_experiment_the_feed_has_no_labels(feed_world, serve):
    set_experiment(feed_world.store_url, {**DOC, "start": NOW_S + 3600})
    async with serve(feed_world.store_url) as client:
        feed = await (await client.get("/v1/users/u1/feed?region=US", headers=token("u1"))).json()
    assert "experiment" not in feed and "variant" not in feed


async def test_results_need_a_service_token_and_name_bad_input(feed_world, serve):
    set_experiment(feed_world.store_url, {**DOC, "holdout": 0.1})
    day = window_of(NOW_S * 1000)
    store = open_store(feed_world.store_url)
    try:
        totals = {("fresh-vs-blend", day, "blend", "impressions", "top_picks", 0): 200,
                  ("fresh-vs-blend", day, "blend", "plays", "top_picks", 0): 20,
                  ("fresh-vs-blend", day, "fresh", "impressions", "top_picks", 0): 210,
                  ("fresh-vs-blend", day, "fresh", "plays", "top_picks", 0): 30,
                  ("fresh-vs-blend", day, HOLDOUT, "viewers", "all", 0): 3}
        store.put_lists(counts_lists(totals, {k[:4] for k in totals}, NOW_S * 1000))  # type: ignore[arg-type]
    finally:
        store.close()
    async with serve(feed_world.store_url) as client:
        assert (await client.get("/v1/experiments/fresh-vs-blend")).status == 401
        forbidden = await client.get("/v1/experiments/fresh-vs-blend", headers=token("u1"))
        assert forbidden.status == 403 and (await forbidden.json())["errors"][0]["field"] == "Authorization"
        answer = await client.get("/v1/experiments/fresh-vs-blend", headers=service_token())
        assert answer.status == 200, await answer.text()
        results = await answer.json()
        by_arm = {v["variant"]: v for v in results["variants"]}
        assert set(by_arm) == {"blend", "fresh", HOLDOUT}
        assert by_arm["fresh"]["plays"] == 30 and by_arm["blend"]["play_rate"]["value"] == 0.1
        assert results["comparisons"][0]["variant"] == "fresh"
        missing = await client.get("/v1/experiments/nope", headers=service_token())
        assert missing.status == 404 and (await missing.json())["errors"][0]["field"] == "experiment_id"
        bad = await client.get("/v1/experiments/no%20spaces", headers=service_token())
        assert bad.status == 400 and (await bad.json())["errors"][0]["field"] == "experiment_id"
        extra = await client.get("/v1/experiments/fresh-vs-blend?x=1", headers=service_token())
        assert extra.status == 400


async def test_the_variant_from_held_records_is_the_read_one_and_a_new_experiment_comes_within_the_ttl(feed_world,
                                                                                                   monkeypatch):
    from serving import shared_reads
    from serving.experiments import held_experiments, viewer_variant
    from serving.shared_reads import SharedReads
    from streamrec.store.aio import AsyncStore

    clock = [1000.0]  # moved only here: a busy machine cannot let the TTL pass between two steps
    monkeypatch.setattr(shared_reads.time, "monotonic", lambda: clock[0])
    store = AsyncStore(open_store(feed_world.store_url))
    shared = SharedReads(lists_ttl_s=2.0)
    try:
        assert held_experiments(shared) is None  # nothing read yet
        assert await viewer_variant(store, shared, "u1", 1.0) == (None, None)
        assert held_experiments(shared) == []  # the empty index is held: no store read per feed
        set_experiment(feed_world.store_url)
        clock[0] += 1.9
        assert await viewer_variant(store, shared, "u1", 1.0) == (None, None)  # within the TTL
        clock[0] += 0.2
        read = await viewer_variant(store, shared, "u1", 1.0)  # read again after the TTL
        assert read == ("fresh-vs-blend", assign(parse_experiment(DOC), "u1"))
        held = held_experiments(shared)
        assert held is not None and [e.id for e in held] == ["fresh-vs-blend"]
        assert await viewer_variant(store, shared, "u1", 1.0) == read  # from the held records
    finally:
        await store.close()
