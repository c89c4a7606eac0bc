"""The demo's data steps: catalog through Kafka, backfill, the banner, the live replay."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm  # type: ignore[import-untyped]

from streamrec.events.model import CatalogItem
from streamrec.kafka import EventProducer
from streamrec.ratings import (
    Rating,
    load_catalog,
    load_ratings,
    region_for,
    split_history,
    with_added_at,
)
from streamrec.store import open_store
from streamrec_cli.publisher import (
    FeedVisits,
    LagProbe,
    ReplayStats,
    publish_catalog,
    replay_live,
    write_stats,
)

if TYPE_CHECKING:
    from streamrec_cli.demo import DemoState
    from streamrec_cli.stack import Stack

SAMPLE_USER = "1"  # MovieLens and MovieTweetings both have a user 1
CATALOG_WAIT_S = 300.0
#: The experiment the demo runs: the hand-tuned blend against the learned ranker (docs/ranking.md),
#: half the viewers each, from the first run of this demo folder (docs/experiments.md).
DEMO_EXPERIMENT_ID = "learned-vs-blend"
FEED_VISIT_SHARE = 0.25  # replayed sessions whose viewer opens the home page first


def ensure_demo_experiment(store_url: str) -> str:
    """Store the demo's experiment unless this demo folder has it already (a resumed demo keeps
    its start time, so its results keep adding up); returns its id."""
    from streamrec.experiments.config import parse_experiment
    from streamrec.experiments.storage import get_experiments, put_experiment

    store = open_store(store_url)
    try:
        if not any(e.id == DEMO_EXPERIMENT_ID for e in get_experiments(store)):
            put_experiment(store, parse_experiment({
                "id": DEMO_EXPERIMENT_ID, "salt": DEMO_EXPERIMENT_ID, "start": time.time(), "control": "blend",
                "variants": [{"name": "blend", "share": 0.5}, {"name": "learned", "share": 0.5}]}))
    finally:
        store.close()
    return DEMO_EXPERIMENT_ID


def split_ratings(dataset: Path, backfilled: int, limit: int | None) -> tuple[Sequence[Rating], Sequence[Rating]]:
    """The backfilled part (the oldest ``backfilled`` ratings, as recorded in the demo's state, so
    a later run with another ``--bootstrap-fraction`` resumes where it was) and the live part
    (at most ``limit`` ratings)."""
    ratings = load_ratings(dataset)
    history, live = ratings[:backfilled], ratings[backfilled:]
    return history, (live[:limit] if limit is not None else live)


def featured_viewer(history: Sequence[Rating], live: Sequence[Rating]) -> str:
    """The viewer with the most backfilled history (rich rows from the first second)."""
    counts = Counter(r.user_id for r in (history or live[:1000]))
    return counts.most_common(1)[0][0] if counts else SAMPLE_USER


def bootstrap_state(
    stack: Stack,
    state: DemoState,
    state_path: Path,
    dataset: Path,
    bootstrap: str,
    store_url: str,
    bootstrap_fraction: float,
    env: dict[str, str],
) -> list[CatalogItem]:
    """Catalog through the topic (awaited in the store: proof the pipeline runs), then the backfill once."""
    from streamrec_cli.components import run_backfill

    printer = stack.printer
    printer.begin("catalog → streamrec.catalog.v1 → pipeline → store")
    ratings = load_ratings(dataset)
    backfilled = (ratings[:state.backfilled_ratings] if state.backfilled_ratings >= 0
                  else split_history(ratings, bootstrap_fraction)[0])
    # Titles first rated in the backfilled part were added then; the others go live during the
    # replay (streamrec_cli.publisher publishes them again with added_at when they do).
    catalog = list(with_added_at(load_catalog(dataset), backfilled))
    publish_catalog(bootstrap, catalog)
    probe_ids = [catalog[0].video_id, catalog[-1].video_id]
    store = open_store(store_url)
    try:
        deadline = time.monotonic() + CATALOG_WAIT_S
        while len(store.get_items(probe_ids)) < len(probe_ids):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the catalog did not reach the store in {CATALOG_WAIT_S:.0f} s: "
                    f"see {stack.demo_dir / 'logs' / 'pipeline.log'}"
                )
            time.sleep(0.25)
    finally:
        store.close()
    state.catalog_items = len(catalog)
    state.save(state_path)
    printer.end(f"{len(catalog)} titles in the store")

    printer.begin(f"backfill of the oldest {bootstrap_fraction:.0%} of the ratings")
    if state.backfilled_ratings >= 0:
        printer.end(f"already done ({state.backfilled_ratings} ratings), resuming")
    else:
        print(flush=True)
        loaded = run_backfill(dataset, bootstrap_fraction, store_url, env, stack.demo_dir / "logs" / "backfill.log")
        state.backfilled_ratings = loaded
        state.replay_cursor = 0
        state.save(state_path)
        printer.end(f"{loaded} ratings loaded")
    return catalog


def first_feed(base_url: str, user_id: str, timeout_s: float = 60.0) -> tuple[str, dict[str, Any]]:
    """A token for ``user_id`` and their first feed with at least one row."""
    with urllib.request.urlopen(f"{base_url}/demo/token?user_id={user_id}", timeout=5) as response:
        token = json.loads(response.read())["token"]
    url = f"{base_url}/v1/users/{user_id}/feed?region={region_for(user_id)}"
    deadline = time.monotonic() + timeout_s
    while True:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                feed = json.loads(response.read())
            if feed.get("rows"):
                return token, feed
        except (urllib.error.URLError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no feed with rows for user {user_id} within {timeout_s:.0f} s")
        time.sleep(0.25)


def print_banner(base_url: str, began: float, featured: str, flink_ui: str | None = None) -> float:
    """The page, the docs, a token and a curl line, all for the viewer with the most history (a
    newcomer's first feed is then every row, not trending alone)."""
    token, feed = first_feed(base_url, featured)
    took = time.monotonic() - began
    rows = ", ".join(f"{row['type']} ({len(row.get('items', []))})" for row in feed["rows"])
    region = region_for(featured)
    print(
        f"\nstreamrec is up: first feed {took:.1f} s after start (viewer {featured}, the most history: {rows})\n"
        f"  the page     {base_url}/?user={featured}   (any other viewer: {base_url}/?user=ID)\n"
        f"  API docs     {base_url}/docs   (OpenAPI: {base_url}/openapi.json)\n"
        + (f"  Flink web UI {flink_ui}   (the streaming job, its checkpoints)\n" if flink_ui else "")
        + f"  token for viewer {featured}:\n    {token}\n"
        f"  try:\n    curl -s -H 'Authorization: Bearer {token}' '{base_url}/v1/users/{featured}/feed?region={region}'\n"
        "  stop: Ctrl-C here, or `make demo-stop` from another terminal\n",
        flush=True,
    )
    return took


def replay_forever(
    stack: Stack,
    state: DemoState,
    state_path: Path,
    live: Sequence[Rating],
    catalog: list[CatalogItem],
    bootstrap: str,
    store_url: str,
    rate: float,
    exit_after_replay: bool,
    base_url: str | None = None,
) -> None:
    """Replay from the saved cursor with a progress bar; then keep serving until stopped. With
    ``base_url``, a sample of the replayed viewers open their home page first (their impressions
    and plays measure the demo's experiment)."""
    stats_path = stack.demo_dir / "stats.json"
    stats = ReplayStats(replay_total=len(live), replayed_sessions=state.replay_cursor)
    write_stats(stats_path, stats)
    durations = {c.video_id: c.duration_sec for c in catalog if c.duration_sec}
    visits = None
    if base_url is not None:
        from serving import auth

        experiment = ensure_demo_experiment(store_url)
        token = auth.mint_token("demo-replay", auth.key_from_env(Path(__file__).resolve().parents[1]),
                                scopes=(auth.SERVICE_SCOPE,), ttl_seconds=auth.MAX_TTL_SECONDS)
        visits = FeedVisits(base_url, token, share=FEED_VISIT_SHARE)
        print(f"experiment {experiment}: {FEED_VISIT_SHARE:.0%} of the replayed viewers open their home page first; "
              f"results: {base_url}/v1/experiments/{experiment} (service token: streamrec token ops --service)",
              flush=True)
    store = open_store(store_url)
    probe = LagProbe(store, stats).start()
    last_save = time.monotonic()

    def progress(sessions: int, _events: int) -> None:
        nonlocal last_save
        bar.update(sessions)
        state.replay_cursor += sessions
        if time.monotonic() - last_save > 2.0:
            state.save(state_path)
            last_save = time.monotonic()
            stack.check_alive()
        if stats.pipeline_lag_ms is not None:
            bar.set_postfix_str(f"{stats.events_per_s:.0f} ev/s, lag {stats.pipeline_lag_ms:.0f} ms", refresh=False)

    left = max(0, len(live) - state.replay_cursor)
    stack.printer.line(f"live replay: {left} of {len(live)} ratings to go, at {rate:g} events/s")
    try:
        with (
            EventProducer(bootstrap, client_id="streamrec-demo-replay") as producer,
            tqdm(total=len(live), initial=state.replay_cursor, unit="rating", desc="live replay", smoothing=0.1) as bar,
        ):
            replay_live(producer, live, start=state.replay_cursor, events_per_s=rate, stats=stats,
                        stats_path=stats_path, durations=durations, on_progress=progress, probe=probe,
                        releases={c.video_id: c for c in catalog if c.added_at is None}, visits=visits)
        state.save(state_path)
        if exit_after_replay:
            time.sleep(2.0)  # let the lag probe see the last events arrive
            return
        print("live replay finished; the stack keeps running for the page. Ctrl-C or `make demo-stop` to stop.", flush=True)
        while True:  # keep the live panel current (the lag probe may still report); watch the parts
            write_stats(stats_path, stats)
            stack.check_alive()
            time.sleep(1.0)
    finally:
        stats.running = False
        write_stats(stats_path, stats)
        state.save(state_path)
        probe.stop()
        store.close()
