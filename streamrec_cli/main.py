"""The ``streamrec`` command: one entry point over every part of the system.

    streamrec demo [--dataset PATH] [--rate EVENTS_PER_S] [--port 8080] [--kafka-port 9092] [--store URL]
    streamrec demo-stop                       stop what a running demo started (pid files in var/demo/)
    streamrec serve [--port 8080]             the aiohttp feed service (serving.create_app)
    streamrec pipeline [pipeline options]     the streaming pipeline (pipelines.main.run)
    streamrec backfill [backfill options]     the batch backfill (pipelines.main)
    streamrec eval --dataset PATH             the prequential evaluation (streamrec_cli.evaluate)
    streamrec token USER [--service]          a bearer token for a profile (or a service token)
    streamrec replay --dataset PATH           a rating log replayed into Kafka as live watch events
    streamrec experiment set FILE | list | results ID   A/B tests of ranking variants (docs/experiments.md)

This is the roof of the house: it imports everything, nothing imports it. Imports are done inside
each command so ``streamrec token`` does not load Beam.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from streamrec_cli import commands
from streamrec_cli.experiment import add_experiment


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamrec", description="streamrec: a streaming-first recommendation engine")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_demo(sub)
    commands.add_demo_stop(sub)
    commands.add_serve(sub)
    commands.add_token(sub)
    commands.add_replay(sub)
    add_experiment(sub)
    # These hand their arguments as they are to the component that owns them.
    for name, help_text in (
        ("pipeline", "run the streaming pipeline (options: streamrec pipeline --help)"),
        ("backfill", "bootstrap the store from a rating history (options: streamrec backfill --help)"),
        ("eval", "prequential evaluation on a rating log (options: streamrec eval --help)"),
    ):
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


PASS_THROUGH: dict[str, Callable[[list[str]], int]] = {
    "pipeline": commands.run_pipeline,
    "backfill": commands.run_backfill,
    "eval": commands.run_eval,
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Pass-through commands keep every argument, even ``--help``, for their owner's parser.
    if args_list and args_list[0] in PASS_THROUGH:
        return PASS_THROUGH[args_list[0]](args_list[1:])
    args = build_parser().parse_args(args_list)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
