"""``streamrec experiment``: set, list and read the results of experiments (``docs/experiments.md``).

    streamrec experiment set FILE [--store URL]     validate FILE (JSON) and write it: live within seconds
    streamrec experiment list [--store URL]         the stored experiments, the running one marked
    streamrec experiment results ID [--store URL]   the results document, as GET /v1/experiments/ID answers
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from streamrec.config import Settings
from streamrec.experiments.config import (
    ExperimentError,
    parse_experiment,
    running_experiment,
)
from streamrec.experiments.results import METRICS, results_document
from streamrec.experiments.storage import (
    count_keys,
    counts_from_lists,
    get_experiments,
    put_experiment,
)
from streamrec.store import open_store


def add_experiment(sub: Any) -> None:
    p = sub.add_parser("experiment", help="set, list and read experiments (A/B tests of ranking variants)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text in (("set", "validate an experiment file (JSON) and store it"),
                            ("list", "list the stored experiments"), ("results", "print an experiment's results")):
        a = actions.add_parser(name, help=help_text)
        if name == "set":
            a.add_argument("file", type=Path)
        if name == "results":
            a.add_argument("id")
        a.add_argument("--store", default=None, help="store URL (default: STREAMREC_STORE, else the local one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args.store or Settings.from_env().store_url)
    now_ms = int(time.time() * 1000)
    try:
        if args.action == "set":
            try:
                experiment = parse_experiment(json.loads(args.file.read_text()))
            except (OSError, ValueError) as e:
                problems = e.errors if isinstance(e, ExperimentError) else [{"field": str(args.file), "reason": str(e)}]
                for problem in problems:
                    print(f"{problem['field']}: {problem['reason']}", file=sys.stderr)
                return 2
            put_experiment(store, experiment, now_ms)
            print(json.dumps(experiment.to_dict()))
        elif args.action == "list":
            experiments = get_experiments(store)
            running = running_experiment(experiments, now_ms)
            for stored in experiments:
                print(json.dumps({**stored.to_dict(), "running_now": stored == running}))
        else:
            found = {e.id: e for e in get_experiments(store)}
            if args.id not in found:
                print(f"id: no experiment {args.id!r}", file=sys.stderr)
                return 2
            experiment = found[args.id]
            lists = store.get_lists(count_keys(experiment, now_ms, METRICS))
            print(json.dumps(results_document(experiment, counts_from_lists(lists.values()), now_ms), indent=1))
    finally:
        store.close()
    return 0
