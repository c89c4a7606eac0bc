"""The sub-commands of ``streamrec`` (parsers and handlers); the demo lives in
:mod:`streamrec_cli.demo`, the evaluation's command in :mod:`streamrec_cli.evaluate`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "ml-latest-small"

Sub = Any  # argparse's private _SubParsersAction


# -- demo ------------------------------------------------------------------------------------------
def add_demo(sub: Sub) -> None:
    from streamrec_cli import demo

    p = sub.add_parser("demo", help="the whole stack on this machine, with a live replay and the web page")
    p.add_argument("--dataset", type=Path, default=Path(os.environ.get("STREAMREC_DEMO_DATASET", DEFAULT_DATASET)),
                   help="MovieLens (ratings.csv+movies.csv) or MovieTweetings (ratings.dat+movies.dat) folder")
    p.add_argument("--rate", type=float, default=float(os.environ.get("STREAMREC_DEMO_RATE", "200")),
                   help="live replay pace in events per second (default 200)")
    p.add_argument("--bootstrap-fraction", type=float, default=float(os.environ.get("STREAMREC_DEMO_BOOTSTRAP", "0.05")),
                   help="share of the ratings (oldest first) loaded by the backfill before the live replay")
    p.add_argument("--port", type=int, default=int(os.environ.get("STREAMREC_DEMO_PORT", "8080")), help="web port")
    p.add_argument("--kafka-port", type=int, default=int(os.environ.get("STREAMREC_DEMO_KAFKA_PORT", "9092")))
    p.add_argument("--engine", choices=("flink", "beam"), default=None,
                   help="streaming engine: the Flink job on a local cluster, or the Beam pipeline on Prism "
                        "(default: STREAMREC_DEMO_ENGINE, else beam; make demo passes ENGINE=flink)")
    p.add_argument("--store", default=None,
                   help="store URL (default: STREAMREC_STORE, Aerospike if STREAMREC_AEROSPIKE_HOSTS, "
                        "else SQLite in the demo folder)")
    p.add_argument("--demo-dir", type=Path, default=REPO / "var" / "demo", help="where the demo keeps its data and pids")
    p.add_argument("--replay-limit", type=int, default=None, help="replay at most this many ratings live")
    p.add_argument("--exit-after-replay", action="store_true",
                   help="stop everything once the live replay is done (tests, CI) instead of waiting for Ctrl-C")
    p.set_defaults(handler=demo.run_demo)


def add_demo_stop(sub: Sub) -> None:
    from streamrec_cli import demo

    p = sub.add_parser("demo-stop", help="stop a running demo and everything it started")
    p.add_argument("--demo-dir", type=Path, default=REPO / "var" / "demo")
    p.set_defaults(handler=demo.run_demo_stop)


# -- serve -----------------------------------------------------------------------------------------
def add_serve(sub: Sub) -> None:
    p = sub.add_parser("serve", help="run the aiohttp feed service")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--store", default=None, help="store URL (default from STREAMREC_STORE)")
    p.add_argument("--kafka", default=None, help="Kafka bootstrap (default from STREAMREC_KAFKA_BOOTSTRAP)")
    p.add_argument("--demo-dir", type=Path, default=None,
                   help="also serve the demo page's helpers (/demo/token, /demo/stats) from this demo folder")
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from serving.app import create_app
    from serving.runtime import settle_collector_on_startup
    from serving.settings import ServingConfig

    overrides: dict[str, object] = {}
    for name, value in (("host", args.host), ("port", args.port), ("store_url", args.store), ("kafka_bootstrap", args.kafka)):
        if value is not None:
            overrides[name] = value
    config = ServingConfig.from_env(**overrides)
    app = create_app(config)
    if args.demo_dir is not None:
        from streamrec_cli import demo_routes

        demo_routes.install(app, args.demo_dir, config.jwt_key)
    settle_collector_on_startup(app, config.gc_threshold)  # last: after the demo's helpers too
    print(f"streamrec serving on http://{config.host}:{config.port}/", flush=True)
    web.run_app(app, host=config.host, port=config.port, print=None, access_log=None)
    return 0


# -- token -----------------------------------------------------------------------------------------
def add_token(sub: Sub) -> None:
    p = sub.add_parser("token", help="print a bearer token for a profile")
    p.add_argument("user", help="the profile (user) id, e.g. 1")
    p.add_argument("--service", action="store_true", help="a service token that may act for any profile")
    p.add_argument("--ttl", type=int, default=24 * 3600, help="seconds until it expires")
    p.add_argument("--name", default=None, help="display name shown in row titles")
    p.add_argument("--max-maturity", default=None, help="a kids profile: G or PG")
    p.set_defaults(handler=token)


def token(args: argparse.Namespace) -> int:
    from serving import auth

    scopes = (auth.SERVICE_SCOPE,) if args.service else ()
    print(auth.mint_token(args.user, auth.key_from_env(REPO), scopes=scopes, ttl_seconds=args.ttl,
                          name=args.name, max_maturity=args.max_maturity))
    return 0


# -- replay ----------------------------------------------------------------------------------------
def add_replay(sub: Sub) -> None:
    p = sub.add_parser("replay", help="replay a rating log into Kafka as live watch events")
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    p.add_argument("--kafka", default=None, help="Kafka bootstrap (default from STREAMREC_KAFKA_BOOTSTRAP)")
    p.add_argument("--rate", type=float, default=200.0, help="events per second")
    p.add_argument("--from-fraction", type=float, default=0.0, help="skip this oldest share of the ratings")
    p.add_argument("--limit", type=int, default=None, help="replay at most this many ratings")
    p.add_argument("--catalog", action="store_true", help="publish the catalog first")
    p.add_argument("--stats", type=Path, default=REPO / "var" / "replay-stats.json")
    p.set_defaults(handler=replay)


def replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]

    from streamrec.config import Settings
    from streamrec.kafka import EventProducer
    from streamrec.ratings import (
        load_catalog,
        load_ratings,
        split_history,
        with_added_at,
    )
    from streamrec_cli.publisher import ReplayStats, publish_catalog, replay_live

    bootstrap = args.kafka or Settings.from_env().kafka_bootstrap
    history, live = split_history(load_ratings(args.dataset), args.from_fraction)
    catalog = list(with_added_at(load_catalog(args.dataset), history))
    if args.catalog:
        print(f"catalog: {publish_catalog(bootstrap, catalog)} titles published")
    live = live[: args.limit] if args.limit is not None else live
    stats = ReplayStats(replay_total=len(live))
    args.stats.parent.mkdir(parents=True, exist_ok=True)
    with EventProducer(bootstrap, client_id="streamrec-replay") as producer, tqdm(total=len(live), unit="rating") as bar:
        replay_live(producer, live, start=0, events_per_s=args.rate, stats=stats, stats_path=args.stats,
                    durations={c.video_id: c.duration_sec or 0.0 for c in catalog if c.duration_sec},
                    on_progress=lambda sessions, _events: bar.update(sessions),
                    releases={c.video_id: c for c in catalog if c.added_at is None} if args.catalog else None)
    return 0


# -- pass-through to the components that own them ------------------------------------------------------
def run_pipeline(argv: list[str]) -> int:
    from pipelines.main import run

    run(argv)
    return 0


def backfill_argv(argv: list[str]) -> list[str]:
    """``--dataset D [--fraction F | --limit N]`` in product words -> the pipeline's backfill options;
    anything else passes through (``--store``, ``--runner``…). DirectRunner unless told otherwise."""
    parser = argparse.ArgumentParser(prog="streamrec backfill", add_help=False)
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--fraction", type=float, default=None, help="the oldest share of the ratings")
    parser.add_argument("--limit", type=int, default=None, help="the oldest N ratings")
    known, rest = parser.parse_known_args(argv)
    out = list(rest)
    if known.dataset is not None:
        out += ["--history", str(known.dataset)]
        limit = known.limit
        if known.fraction is not None:
            from streamrec.ratings import load_ratings, split_history

            history, _ = split_history(load_ratings(known.dataset), known.fraction)
            limit = len(history)
        if limit is not None:
            out += ["--history_limit", str(limit)]
    if not any(a == "--runner" or a.startswith("--runner=") for a in out):
        out += ["--runner", "DirectRunner"]
    return out


def run_backfill(argv: list[str]) -> int:
    from pipelines.main import run

    if "-h" in argv or "--help" in argv:
        print("streamrec backfill --dataset DIR [--fraction F | --limit N] --store URL [pipeline options]\n"
              "  loads the oldest ratings of a MovieLens/MovieTweetings folder into the store through the\n"
              "  pipeline's batch job (DirectRunner unless --runner is given). Pipeline options:\n")

    run(backfill_argv(argv))
    return 0


def run_eval(argv: list[str]) -> int:
    from streamrec_cli.evaluate import main  # imported late: numpy, matplotlib

    return main(argv)


def fail(message: str) -> int:
    print(f"streamrec: {message}", file=sys.stderr)
    return 2
