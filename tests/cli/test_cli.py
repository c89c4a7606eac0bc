"""The streamrec command's own parts: argument translation, the demo helper routes, the paced
replay into the real Kafka broker, and stopping what a demo left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from serving import auth
from streamrec.config import TOPIC_EVENTS
from streamrec.events.codec import default_codec
from streamrec.kafka import EventProducer
from streamrec.ratings import Rating, region_for, session_events
from streamrec_cli import demo_routes
from streamrec_cli.commands import backfill_argv
from streamrec_cli.main import main
from streamrec_cli.publisher import ReplayStats, replay_live
from streamrec_cli.stack import (
    MAX_RESTARTS,
    Stack,
    StepPrinter,
    pid_alive,
    stop_leftovers,
)
from tests.fixtures.kafka import read_records

KEY = "k" * 40


def test_backfill_options_in_product_words(movielens_dir: Path) -> None:
    argv = backfill_argv(["--dataset", str(movielens_dir), "--fraction", "0.1", "--store", "sqlite:///x.db"])
    assert argv[:2] == ["--store", "sqlite:///x.db"]
    limit = int(argv[argv.index("--history_limit") + 1])
    assert 10_000 < limit < 10_200  # a tenth of ml-latest-small's 100,836 ratings
    assert argv[argv.index("--history") + 1] == str(movielens_dir)
    assert argv[-2:] == ["--runner", "DirectRunner"]
    assert backfill_argv(["--limit", "5", "--runner", "PrismRunner"]) == ["--runner", "PrismRunner"]


def test_token_command_prints_a_token_for_the_user(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_JWT_KEY", KEY)
    assert main(["token", "318-fan", "--service"]) == 0
    principal = auth.verify_token(capsys.readouterr().out.strip(), KEY)
    assert principal.user_id == "318-fan" and principal.is_service


async def test_demo_routes_mint_tokens_and_serve_stats_without_auth(tmp_path: Path) -> None:
    @web.middleware
    async def deny_all(request: web.Request, handler):  # type: ignore[no-untyped-def]
        raise web.HTTPUnauthorized()  # stands for the service's auth middleware

    app = web.Application(middlewares=[deny_all])
    demo_routes.install(app, tmp_path, KEY)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/demo/token", params={"user_id": "42"})
        assert response.status == 200
        body = await response.json()
        assert auth.verify_token(body["token"], KEY).user_id == "42"
        assert body["region"] == region_for("42")
        assert (await client.get("/demo/token", params={"user_id": ""})).status == 400
        assert (await client.get("/demo/stats")).status == 200
        assert (await (await client.get("/demo/stats")).json()) == {"running": False}
        (tmp_path / "stats.json").write_text(json.dumps({"events_per_s": 12.5}))
        assert (await (await client.get("/demo/stats")).json()) == {"events_per_s": 12.5}
        assert (await client.get("/v1/anything")).status == 401  # everything else still guarded


def test_replay_is_paced_keyed_by_user_and_in_order(kafka_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = f"replay-test-{time.time_ns()}"
    ratings = [Rating(f"{run}-{i % 5}", str(100 + i), 4.0 if i % 2 else 2.0, 1_000_000 + i) for i in range(40)]
    stats = ReplayStats(replay_total=len(ratings))
    began = time.monotonic()
    with EventProducer(kafka_broker.bootstrap) as producer:
        reached = replay_live(producer, ratings, start=10, events_per_s=200.0, stats=stats,
                              stats_path=tmp_path / "stats.json", durations={})
    took = time.monotonic() - began
    assert reached == len(ratings)
    assert stats.replayed_sessions == 30
    assert stats.replayed_events == sum(len(session_events(r, start_ms=0)) for r in ratings[10:])
    assert took >= stats.replayed_events / 200.0 - 0.3  # paced, not as fast as possible
    written = json.loads((tmp_path / "stats.json").read_text())
    assert written["replayed_events"] == stats.replayed_events
    codec = default_codec()
    mine = [codec.decode_event(r.value or b"") for r in read_records(kafka_broker.bootstrap, TOPIC_EVENTS, timeout_s=10)
            if r.key is not None and r.key.decode().startswith(run)]
    assert len(mine) == stats.replayed_events
    for user in {e.user_id for e in mine}:
        theirs = [e for e in mine if e.user_id == user]
        assert [e.timestamp for e in theirs] == sorted(e.timestamp for e in theirs)
        assert {e.region for e in theirs} == {region_for(user)}
    assert {e.video_id for e in mine} == {str(100 + i) for i in range(10, 40)}


def _wait_for_exec(pid: int, marker: str, timeout_s: float = 30.0) -> None:
    """Wait (bounded) until the child's /proc cmdline shows its exec'd command: Popen returns once
    the exec has begun, and for a moment the cmdline is still empty (~half of reads right after
    Popen here), which stop_leftovers rightly takes for "not the demo's process"."""
    deadline = time.monotonic() + timeout_s
    while marker not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
        assert time.monotonic() < deadline, f"pid {pid} never showed {marker!r} in its command line"
        time.sleep(0.01)


def test_stop_leftovers_stops_only_what_the_demo_started(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "streamrec_cli.main"],
                            start_new_session=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        _wait_for_exec(ours.pid, "streamrec_cli.main")
        _wait_for_exec(stranger.pid, "time.sleep(60)")
        (tmp_path / "pids" / "2-pipeline.json").write_text(
            json.dumps({"name": "pipeline", "pid": ours.pid, "marker": "streamrec_cli.main"}))
        # A recycled pid: the file names a process that is not the demo's.
        (tmp_path / "pids" / "3-service.json").write_text(
            json.dumps({"name": "service", "pid": stranger.pid, "marker": "streamrec_cli.main"}))
        assert stop_leftovers(tmp_path) == ["pipeline"]
        ours.wait(timeout=10)
        assert not pid_alive(ours.pid)
        assert stranger.poll() is None
        assert not list((tmp_path / "pids").iterdir())
    finally:
        stranger.kill()
        ours.kill()
        stranger.wait()


def test_a_crashed_pipeline_is_restarted_a_few_times_then_reported(tmp_path: Path) -> None:
    (tmp_path / "pids").mkdir()
    (tmp_path / "logs").mkdir()
    stack = Stack(tmp_path, printer=StepPrinter(total=1))
    # A part that exits at once with an error, as a crashing pipeline does.
    args = ["token", ""]
    stack.restartable["streaming pipeline"] = (args, {})
    process = stack.spawn("streaming pipeline", args, {})
    process.wait(timeout=60)
    for attempt in range(1, MAX_RESTARTS + 1):
        stack.check_alive()
        assert stack.restarts["streaming pipeline"] == attempt
        restarted = stack.children["streaming pipeline"][0]
        assert restarted.pid != process.pid
        assert json.loads((tmp_path / "pids" / "1-streaming-pipeline.json").read_text())["pid"] == restarted.pid
        process = restarted
        process.wait(timeout=60)
    with pytest.raises(RuntimeError, match=r"the streaming pipeline stopped \(exit code 1\)"):
        stack.check_alive()
    assert len(stack.started) == 1
