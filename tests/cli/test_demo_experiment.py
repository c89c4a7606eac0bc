"""The demo's experiment: the page gets the running experiment and a service token that reads its
results; a sample of replayed viewers open their home page on the real service first."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from serving import auth
from serving.app import create_app
from serving.keys import CONFIG
from serving.settings import ServingConfig
from streamrec.experiments.config import parse_experiment
from streamrec.experiments.storage import put_experiment
from streamrec.ratings import Rating
from streamrec.store import open_store
from streamrec_cli import demo_routes
from streamrec_cli.demo_steps import DEMO_EXPERIMENT_ID, ensure_demo_experiment
from streamrec_cli.main import main as cli_main
from streamrec_cli.publisher import FeedVisits, ReplayStats
from tests.fixtures.serving import JWT_KEY, free_port

EXPERIMENT = {"id": "fresh-vs-blend", "start": 0,
              "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}


async def test_the_page_reads_the_running_experiment_with_a_service_token(feed_world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(feed_world.store_url)
    put_experiment(store, parse_experiment(EXPERIMENT))
    store.close()
    app = create_app(ServingConfig(store_url=feed_world.store_url, kafka_bootstrap=f"127.0.0.1:{free_port()}",
                                   jwt_key=JWT_KEY, impressions=False, static_dir=tmp_path / "none"))
    demo_routes.install(app, tmp_path, JWT_KEY)
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/demo/experiment")).json()
        assert body["id"] == "fresh-vs-blend" and auth.verify_token(body["token"], JWT_KEY).is_service
        results = await client.get("/v1/experiments/fresh-vs-blend", headers={"Authorization": f"Bearer {body['token']}"})
        assert results.status == 200


def test_the_demo_experiment_is_stored_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert ensure_demo_experiment(url) == DEMO_EXPERIMENT_ID
    store = open_store(url)
    first = store.get_lists([f"experiment:{DEMO_EXPERIMENT_ID}"])
    store.close()
    time.sleep(0.01)
    ensure_demo_experiment(url)  # a resumed demo keeps its experiment (and its start)
    store = open_store(url)
    assert store.get_lists([f"experiment:{DEMO_EXPERIMENT_ID}"]) == first
    store.close()


def test_feed_visits_sample_a_share_within_a_budget() -> None:
    visits = FeedVisits("http://127.0.0.1:1", "t", share=0.25, per_tick=1000)
    ratings = [Rating(str(u), str(v), 4.0, 0) for u in range(40) for v in range(50)]
    share = sum(visits.wanted(r) for r in ratings) / len(ratings)
    assert 0.22 < share < 0.28
    visits = FeedVisits("http://127.0.0.1:1", "t", share=1.0, per_tick=2)
    stats = ReplayStats()
    for r in ratings[:5]:
        if visits.wanted(r):
            visits.visit(r.user_id, stats)
    assert stats.feed_visit_errors == 2  # nothing listens there: counted, the replay goes on
    visits.tick()
    assert visits.wanted(ratings[0])


async def test_a_visit_opens_the_real_feed(feed_world, serve) -> None:  # type: ignore[no-untyped-def]
    async with serve(feed_world.store_url) as client:
        key = client.server.app[CONFIG].jwt_key
        token = auth.mint_token("replay", key, scopes=(auth.SERVICE_SCOPE,))
        visits = FeedVisits(str(client.make_url("/")), token, share=1.0)
        stats = ReplayStats()
        await asyncio.to_thread(visits.visit, "u1", stats)
    assert (stats.feed_visits, stats.feed_visit_errors) == (1, 0)


def test_experiment_command_sets_lists_and_reads_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    spec = tmp_path / "experiment.json"
    spec.write_text(json.dumps({**EXPERIMENT, "variants": [{"name": "blend", "share": 0.5},
                                                           {"name": "fressh", "share": 0.5}]}))
    assert cli_main(["experiment", "set", str(spec), "--store", url]) == 2
    assert "variants[1].name: no variant 'fressh'" in capsys.readouterr().err
    spec.write_text(json.dumps(EXPERIMENT))
    assert cli_main(["experiment", "set", str(spec), "--store", url]) == 0
    capsys.readouterr()
    assert cli_main(["experiment", "list", "--store", url]) == 0
    assert json.loads(capsys.readouterr().out)["running_now"] is True
    assert cli_main(["experiment", "results", "fresh-vs-blend", "--store", url]) == 0
    assert [v["variant"] for v in json.loads(capsys.readouterr().out)["variants"]] == ["blend", "fresh"]
    assert cli_main(["experiment", "results", "nope", "--store", url]) == 2
