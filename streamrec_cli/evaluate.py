"""``streamrec eval``: replay rating logs against streamrec and the baselines, print the table.

    streamrec eval --dataset PATH [--dataset PATH ...] [--format json|markdown] [--out DIR]
                   [--doc docs/quality.md] [--methods popular,trending,...] [--log-format csv|dat|udata]

``--format json`` prints one JSON object per data set on stdout (see ``report.py``); markdown
prints the table. ``--out DIR`` also writes ``<dataset>.md``, ``<dataset>.json`` and the rolling
HR@10 plot ``<dataset>-hr10.png`` there; ``--doc FILE`` writes the quality page for all data sets
(``make eval``). The progress bar goes to stderr. Exit code 1 on bad input; a method that crashes
fails the run with its traceback (a broken method must never look like a finished evaluation).

    streamrec eval --dataset PATH --experiment FILE

replays an experiment offline instead (``evaluation.protocol.run_experiment``): the users split
by the experiment's assignment, each arm ranked by its variant, and the results document of
``GET /v1/experiments/{id}`` printed as JSON (with HR@10 per arm under ``offline``): a variant is
tried on history before it gets traffic (docs/experiments.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from evaluation import streamrec_method
from evaluation.als import AlsNightly
from evaluation.baselines import (
    ItemKNNStream,
    Popular,
    RandomTitles,
    Trending,
)
from evaluation.ease import EaseNightly
from evaluation.methods import EvalContext, MethodFactory
from evaluation.protocol import MethodResult, build_schedule, run_experiment, run_method
from evaluation.recency import TrendingTuned
from evaluation.report import (
    markdown_report,
    plot_rolling_hit_rate,
    quality_page,
    summarise,
)
from streamrec.experiments.config import Experiment, ExperimentError, parse_experiment
from streamrec.ratings import DatasetError, LogFormat, load_log
from streamrec.recommend.variants import ranking_config

METHOD_NAMES = ("streamrec", "popular", "trending", "trending_tuned", "itemknn_stream", "ease_nightly", "als_nightly",
                "random")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamrec eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", action="append", required=True, help="rating file or its folder (repeatable)")
    parser.add_argument("--format", choices=("json", "markdown"), default="markdown", help="stdout format")
    parser.add_argument("--out", type=Path, help="folder for the markdown table, JSON and plot")
    parser.add_argument("--doc", type=Path, help="write the quality page (all data sets) to this file")
    parser.add_argument("--log-format", choices=[f.value for f in LogFormat], help="rating layout (default: detect)")
    parser.add_argument("--methods", default=",".join(METHOD_NAMES), help="comma-separated methods to run")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of events only learned from")
    parser.add_argument("--k", type=int, default=10, help="list length (metrics are named @10 regardless)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trending-days", type=float, default=7.0)
    parser.add_argument("--knn-window", type=int, default=50)
    parser.add_argument("--knn-decay", type=float, default=0.9)
    parser.add_argument("--ease-lambda", type=float, default=200.0)
    parser.add_argument("--ease-items", type=int, default=2500)
    parser.add_argument("--als-factors", type=int, default=64)
    parser.add_argument("--als-regularization", type=float, default=0.01)
    parser.add_argument("--als-alpha", type=float, default=10.0, help="confidence of a watch (an unwatched title: 1)")
    parser.add_argument("--als-iterations", type=int, default=15, help="ALS sweeps of a full fit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--experiment", type=Path, default=None,
                        help="an experiment file (JSON): replay its variants on their users, print its results")
    return parser


def method_factories(args: argparse.Namespace) -> dict[str, MethodFactory]:
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(METHOD_NAMES))
    if unknown:
        raise ValueError(f"--methods: unknown method(s) {', '.join(unknown)}; known: {', '.join(METHOD_NAMES)}")
    factories: dict[str, MethodFactory] = {}
    for name in wanted:
        if name == "streamrec":
            factories[name] = streamrec_method.create
        elif name == "popular":
            factories[name] = Popular
        elif name == "trending":
            factories[name] = partial(Trending, window_days=args.trending_days)
        elif name == "itemknn_stream":
            factories[name] = partial(ItemKNNStream, window=args.knn_window, decay=args.knn_decay)
        elif name == "ease_nightly":
            factories[name] = partial(EaseNightly, l2=args.ease_lambda, max_items=args.ease_items)
        elif name == "trending_tuned":
            factories[name] = TrendingTuned
        elif name == "als_nightly":
            factories[name] = partial(AlsNightly, factors=args.als_factors, regularization=args.als_regularization,
                                      alpha=args.als_alpha, iterations=args.als_iterations)
        elif name == "random":
            factories[name] = RandomTitles
    return factories


def evaluate(
    path: str, args: argparse.Namespace, factories: dict[str, MethodFactory]
) -> tuple[dict[str, Any], list[MethodResult]]:
    """Replay one data set against every method of ``factories``."""
    log = load_log(path, args.log_format)
    schedule = build_schedule(log, args.warmup)
    context = EvalContext(dataset=log.name, catalog=log.catalog, seed=args.seed)
    results = [run_method(schedule, factory, context, k=args.k, progress=not args.no_progress)
               for factory in factories.values()]
    return summarise(log.name, schedule, results, []), results


def evaluate_experiment(path: str, args: argparse.Namespace, experiment: Experiment) -> dict[str, Any]:
    """The experiment's results over one data set's replay (streamrec, each arm its variant)."""
    log = load_log(path, args.log_format)
    schedule = build_schedule(log, args.warmup)
    context = EvalContext(dataset=log.name, catalog=log.catalog, seed=args.seed)

    def factory_for(arm: str) -> MethodFactory:
        return partial(streamrec_method.StreamrecMethod, ranking_config=ranking_config(arm))  # type: ignore[return-value]

    document, _ = run_experiment(schedule, experiment, factory_for, context, k=args.k, progress=not args.no_progress)
    return {"dataset": log.name, **document}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.k <= 0:
        parser.error("--k must be positive")
    if not 0.0 <= args.warmup < 1.0:
        parser.error("--warmup must be in [0, 1)")
    if args.experiment is not None:
        try:
            experiment = parse_experiment(json.loads(args.experiment.read_text()))
        except (OSError, ValueError) as exc:
            problems = exc.errors if isinstance(exc, ExperimentError) else [{"field": "--experiment", "reason": str(exc)}]
            for problem in problems:
                print(f"streamrec eval: {problem['field']}: {problem['reason']}", file=sys.stderr)
            return 1
        for path in args.dataset:
            try:
                print(json.dumps(evaluate_experiment(path, args, experiment)), flush=True)
            except DatasetError as exc:
                print(f"streamrec eval: {exc}", file=sys.stderr)
                return 1
        return 0
    try:
        factories = method_factories(args)
    except ValueError as exc:
        print(f"streamrec eval: {exc}", file=sys.stderr)
        return 1
    sections: list[tuple[dict[str, Any], str | None]] = []
    for path in args.dataset:
        try:
            summary, results = evaluate(path, args, factories)
        except DatasetError as exc:
            print(f"streamrec eval: {exc}", file=sys.stderr)
            return 1
        plot_name = None
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            plot_name = f"{summary['dataset']}-hr10.png"
            plot_rolling_hit_rate(results, args.out / plot_name, summary["dataset"])
            (args.out / f"{summary['dataset']}.json").write_text(json.dumps(summary, indent=1) + "\n")
            (args.out / f"{summary['dataset']}.md").write_text(markdown_report(summary, plot_name))
        sections.append((summary, plot_name))
        if args.format == "json":
            print(json.dumps(summary), flush=True)
        else:
            print(markdown_report(summary), flush=True)
    if args.doc:
        doc_sections = sections
        if args.out:  # links in the page are relative to the page
            rel = os.path.relpath(args.out, args.doc.parent)
            doc_sections = [(s, f"{rel}/{p}" if p else None) for s, p in sections]
        command = "streamrec eval " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        settings = {key: getattr(args, key) for key in
                    ("trending_days", "knn_window", "knn_decay", "ease_lambda", "ease_items", "als_factors",
                     "als_regularization", "als_alpha", "als_iterations", "seed")}
        args.doc.write_text(quality_page(doc_sections, command, settings))
    return 0
