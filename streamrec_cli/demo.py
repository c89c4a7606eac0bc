"""``streamrec demo``: the whole real stack on one machine, a live replay, and the web page.

In order, each step printed with its time: the Kafka broker (and its topics), the streaming
pipeline, the feed service; the catalog published through ``streamrec.catalog.v1`` and awaited
in the store (proof the pipeline runs); the backfill over the oldest part of the ratings (once per
demo folder); then the rest replayed live at ``--rate`` events/s with a progress bar. Ctrl-C,
SIGTERM or ``streamrec demo-stop`` stop everything in reverse order.

Everything lives in the demo folder (default ``var/demo``): the broker's data, the SQLite store,
``state.json`` (dataset, backfill done, replay cursor: a second run resumes), ``stats.json`` (the
page's live panel), ``logs/`` and ``pids/`` (one file per process, ``demo.pid`` for this one).
``make demo-reset`` removes the folder.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.config import aerospike_url_from_env
from streamrec_cli.stack import Stack, StepPrinter, pid_alive, read_pid, stop_leftovers

STATE_FILE = "state.json"


class DemoError(RuntimeError):
    """The demo cannot start; the message says why and what to do."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived: stop in order."""


@dataclass
class DemoState:
    """What survives between runs in ``state.json``."""

    dataset: str = ""
    catalog_items: int = 0
    backfilled_ratings: int = -1  # -1: not yet
    replay_cursor: int = 0  # index into the live part of the ratings
    runs: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> DemoState:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        os.replace(tmp, path)


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted()


def run_demo(args: argparse.Namespace) -> int:
    try:
        return _run_demo(args)
    except DemoError as e:
        print(f"streamrec demo: {e}", file=sys.stderr)
        return 1


def _checked_dataset(args: argparse.Namespace) -> tuple[Path, str]:
    """The dataset folder and its layout, after the options are checked."""
    from streamrec.ratings import dataset_layout

    if args.rate <= 0:
        raise DemoError(f"--rate: must be > 0, got {args.rate}")
    if not 0.0 <= args.bootstrap_fraction < 1.0:
        raise DemoError(f"--bootstrap-fraction: must be in [0, 1), got {args.bootstrap_fraction}")
    dataset: Path = args.dataset.resolve()
    try:
        return dataset, dataset_layout(dataset)
    except ValueError as e:
        raise DemoError(str(e)) from e


def _claimed_state(demo_dir: Path, dataset: Path) -> DemoState:
    """The demo folder's state, once no other demo runs from it and leftovers are stopped."""
    (demo_dir / "pids").mkdir(parents=True, exist_ok=True)
    (demo_dir / "logs").mkdir(exist_ok=True)
    demo_pid = read_pid(demo_dir / "demo.pid")
    if demo_pid is not None and demo_pid != os.getpid() and pid_alive(demo_pid):
        raise DemoError(f"a demo already runs from {demo_dir} (pid {demo_pid}): `streamrec demo-stop` first")
    stop_leftovers(demo_dir)  # a previous run that was killed hard may have left children
    state = DemoState.load(demo_dir / STATE_FILE)
    if state.dataset and state.dataset != str(dataset):
        raise DemoError(f"{demo_dir} holds a demo of {state.dataset}; run `make demo-reset` to start one of {dataset}")
    state.dataset = str(dataset)
    return state


def _run_demo(args: argparse.Namespace) -> int:
    began = time.monotonic()
    demo_dir: Path = args.demo_dir.resolve()
    dataset, layout = _checked_dataset(args)
    state = _claimed_state(demo_dir, dataset)
    state_path = demo_dir / STATE_FILE
    store_url = args.store or os.environ.get("STREAMREC_STORE") or aerospike_url_from_env() or f"sqlite:///{demo_dir / 'streamrec.db'}"

    (demo_dir / "demo.pid").write_text(str(os.getpid()))
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGINT, _raise_interrupted)
    stack = Stack(demo_dir, printer=StepPrinter(total=7))
    resumed = state.backfilled_ratings >= 0
    print(f"streamrec demo: {layout} data from {dataset}, store {store_url}" + (" (resuming)" if resumed else ""))
    try:
        bootstrap = stack.start_kafka(args.kafka_port)
        env = {"STREAMREC_KAFKA_BOOTSTRAP": bootstrap, "STREAMREC_STORE": store_url}
        from streamrec_cli.components import demo_engine

        stack.start_pipeline(env, engine=demo_engine(getattr(args, "engine", None)))
        base_url = stack.start_serving(args.port, env)
        from streamrec_cli.demo_steps import (
            bootstrap_state,
            featured_viewer,
            print_banner,
            replay_forever,
            split_ratings,
        )

        catalog = bootstrap_state(stack, state, state_path, dataset, bootstrap, store_url, args.bootstrap_fraction, env)
        history, live = split_ratings(dataset, state.backfilled_ratings, args.replay_limit)
        first_feed_s = print_banner(base_url, began, featured_viewer(history, live), flink_ui=stack.flink_ui)
        state.runs.append({"started": time.time(), "first_feed_s": round(first_feed_s, 1), "resumed": float(resumed)})
        state.save(state_path)
        replay_forever(stack, state, state_path, live, catalog, bootstrap, store_url, args.rate, args.exit_after_replay,
                       base_url=base_url)
    except Interrupted:
        print("\nstopping (Ctrl-C / demo-stop)…", flush=True)
    except Exception as e:  # noqa: BLE001 - whatever failed, stop what started, then report it
        print(f"\nstreamrec demo failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop_all()
        (demo_dir / "demo.pid").unlink(missing_ok=True)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
    stack.stop_all()
    state.save(state_path)
    (demo_dir / "demo.pid").unlink(missing_ok=True)
    print("demo stopped; data kept in", demo_dir, "(make demo-reset to start clean)")
    return 0


def run_demo_stop(args: argparse.Namespace) -> int:
    """Ask a running demo to stop (it stops its children in order); clean up after a dead one."""
    demo_dir: Path = args.demo_dir.resolve()
    pid = read_pid(demo_dir / "demo.pid")
    if pid is not None and pid_alive(pid):
        print(f"stopping the demo (pid {pid})…", flush=True)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):
            print(f"the demo (pid {pid}) did not stop in 90 s; stopping its parts directly", flush=True)
    stopped = stop_leftovers(demo_dir)
    (demo_dir / "demo.pid").unlink(missing_ok=True)
    print("demo stopped" if pid is not None or stopped else "no demo was running")
    return 0

