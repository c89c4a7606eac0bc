"""Pipeline benchmark: Kafka -> the streaming job (Flink, or Beam on Prism) -> SQLite store, against a
plain-loop ceiling.

    .venv/bin/python bench/bench_pipeline.py [--engine flink|beam] [--ratings 4000] [--rate 1000] [--out ...]
    .venv/bin/python bench/bench_pipeline.py --ceiling_only    # the plain loop alone (JSON, no --out)

``--engine flink`` (the default) runs the PyFlink job (``pipelines/flink/job.py``) on a local
standalone cluster this script starts and stops (``streamrec_cli.localflink``, ``make flink``);
``--engine beam`` runs ``python -m pipelines.main`` on Prism.

Prints one JSON object:

- ``events_per_s``: sustained end-to-end throughput. MovieLens ratings become watch sessions
  (``streamrec.ratings``), re-stamped into the last minutes. The streaming job (``python -m
  pipelines.main`` on Prism) is started and warmed up with one event (``startup_s``); then all
  events are produced to its topic and the clock runs from the first produce call until every
  effect (the item counts the ceiling loop computed) is readable in the store.
- ``ceiling_events_per_s``: the same updates by a plain Python loop over the same bytes in the
  same run (decode, ``apply_event``'s rules in place (``LiveUser``) with item vectors, co-watch/item-count/item-vector/trending
  accumulation, batched store writes of users, pairs, counts and vectors); ``ratio`` = events / ceiling.
- ``freshness_p50_ms`` / ``freshness_p99_ms``: with the job running, live events are produced at
  ``--rate`` events/s for ``--live_s`` seconds; for every 5th one, the time from just before its
  produce call until its ``event_id`` is readable in the user's stored state, or the stored state's
  ``updated_at`` (newest event time applied) reaches the event's time (polled every 20 ms).

The broker is a local one this script starts and stops (``streamrec_cli.localkafka``). The plain loop
is ``bench/pipeline_ceiling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the plain loop beside this file, however it is run

from pipeline_ceiling import (
    Stages,
    _flush,  # noqa: F401  (bench/peers/rules.py imports it from here)
    ceiling,
)

from streamrec import ratings as rating_logs
from streamrec.events.codec import default_codec
from streamrec.events.model import UserEvent
from streamrec.kafka import produce_when_room
from streamrec.store import open_store
from streamrec_cli.localflink import LocalFlink
from streamrec_cli.localkafka import LocalKafka, free_port

PRISM = REPO / "var" / "prism" / "bin" / "prism"
PARTITIONS = 3


def load_events(dataset: Path, ratings: int, offset_ratings: int = 0) -> list[UserEvent]:
    """Sessions of ``ratings`` MovieLens ratings, re-stamped so the newest ends a minute ago."""
    rows = rating_logs.load_ratings(dataset)[offset_ratings:offset_ratings + ratings]
    events = sorted(rating_logs.history_events(rows), key=lambda e: (e.timestamp, e.event_id))
    # Compress the years into the 10 minutes before the last one (order kept): event-time windows
    # and timers then behave as they would live.
    end = int(time.time() * 1000) - 60_000
    first, span = events[0].timestamp, max(1, events[-1].timestamp - events[0].timestamp)
    return [e.replace(timestamp=end - 600_000 + (e.timestamp - first) * 600_000 // span) for e in events]


def produce(bootstrap: str, topic: str, events: Sequence[UserEvent], payloads: Sequence[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
    for e, payload in zip(events, payloads, strict=True):
        produce_when_room(producer, topic, payload, key=e.user_id, timestamp=e.timestamp)
    assert producer.flush(60) == 0


class FlinkJob:
    """The Flink job on its own local cluster, with the few calls the bench makes of a process."""

    def __init__(self, bootstrap: str, store_url: str, topics: dict[str, str], work: Path, checkpoint_ms: int) -> None:
        self.cluster = LocalFlink(work_dir=work / "flink", rest_port=free_port(), die_with_parent=True).start()
        self.returncode: int | None = None
        self._checked = 0.0
        self.job_id = self.cluster.submit(
            REPO / "pipelines" / "flink" / "job.py", "--bootstrap", bootstrap, "--store", store_url,
            "--events_topic", topics["events"], "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"],
            "--group", f"bench-{topics['events']}", "--rest", self.cluster.url, "--checkpoint_ms", str(checkpoint_ms))

    def poll(self) -> int | None:
        """None while the job runs (asked at most once a second)."""
        if self.returncode is None and time.monotonic() - self._checked > 1.0:
            self._checked = time.monotonic()
            if self.cluster.job(self.job_id).get("state") in ("FAILED", "CANCELED", "FINISHED"):
                self.returncode = 1
        return self.returncode

    def stop(self) -> None:
        self.cluster.stop()


def start_job(bootstrap: str, store_url: str, topics: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pipelines.main", "--bootstrap", bootstrap, "--store", store_url,
           "--events_topic", topics["events"], "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"],
           "--group", f"bench-{topics['events']}", "--runner", "PrismRunner", "--prism_location", str(PRISM),
           "--environment_type", "LOOPBACK"]
    return subprocess.Popen(cmd, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(condition, timeout_s: float, job: subprocess.Popen[bytes] | FlinkJob, log: Path, poll_s: float = 0.2) -> float:  # type: ignore[no-untyped-def]
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if job.poll() is not None:
            raise RuntimeError(f"the job exited ({job.returncode}):\n{log.read_text()[-2000:]}")
        if condition():
            return time.monotonic()
        time.sleep(poll_s)
    raise RuntimeError(f"timed out after {timeout_s}s:\n{log.read_text()[-2000:]}")


def freshness(bootstrap: str, topic: str, store_url: str, events: Sequence[UserEvent], rate: float,
              job: subprocess.Popen[bytes] | FlinkJob, log: Path) -> list[float]:
    """Produce ``events`` live at ``rate``/s; latency (ms) until every 5th is readable in the store."""
    codec = default_codec()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    pending: dict[str, tuple[str, float, int]] = {}  # event_id -> (user, sent at, event time)
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def poll_store() -> None:
        store = open_store(store_url)
        while not done.is_set() or pending:
            with lock:
                wanted = dict(pending)
            if wanted:
                states = store.get_users(list({u for u, _, _ in wanted.values()}))
                now = time.monotonic()
                for event_id, (user, sent, ts) in wanted.items():
                    state = states.get(user)
                    # Applied and stored: its id is among the user's last 256, or a later event of
                    # the same user (same partition, applied in order) is (updated_at is the newest
                    # event time applied); an engine that writes a busy user once per checkpoint
                    # may push an id out of the 256 before a poll sees it.
                    if state is not None and (event_id in state.recent_event_ids or state.updated_at >= ts):
                        with lock:
                            pending.pop(event_id, None)
                        latencies.append((now - sent) * 1000.0)
            if done.is_set() and time.monotonic() > deadline:
                break
            time.sleep(0.02)
        store.close()

    deadline = float("inf")
    poller = threading.Thread(target=poll_store, daemon=True)
    poller.start()
    began = time.monotonic()
    for i, e in enumerate(events):
        due = began + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        live = e.replace(timestamp=int(time.time() * 1000))
        sent = time.monotonic()
        producer.produce(topic, key=live.user_id, value=codec.encode(live), timestamp=live.timestamp)
        producer.poll(0)
        if i % 5 == 0:
            with lock:
                pending[live.event_id] = (live.user_id, sent, live.timestamp)
    producer.flush(30)
    deadline = time.monotonic() + 30
    done.set()
    poller.join(40)
    if job.poll() is not None:
        raise RuntimeError(f"the job exited during the live phase:\n{log.read_text()[-2000:]}")
    missing = len(pending)
    if missing:
        latencies += [float("inf")] * missing  # never seen within 30 s: counted, not dropped
    return latencies


def _percentiles(latencies: list[float]) -> dict[str, float | int | None]:
    seen = [x for x in latencies if x != float("inf")]
    return {"p50_ms": round(float(np.percentile(latencies, 50)), 1) if seen else None,
            "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(seen) == len(latencies) else None,
            "unseen_after_30s": len(latencies) - len(seen), "samples": len(latencies)}


def engine_figures(events: int, seconds: float, ceiling_eps: float, cpu: float, ceiling_cpu: float,
                   low: list[float], latencies: list[float], rate: float, low_rate: float,
                   produce_s: float, drain_s: float, startup_s: float) -> dict[str, object]:
    """The figures every engine reports (streamrec's and the peers'), each beside the plain loop's."""
    events_per_s = events / seconds
    at_rate = _percentiles(latencies)
    return {
        "events_per_s": round(events_per_s, 1),
        "ceiling_events_per_s": round(ceiling_eps, 1),
        "ratio": round(events_per_s / ceiling_eps, 3),
        "cpu_s_per_1k_events": round(1000 * cpu / events, 3),
        "ceiling_cpu_s_per_1k_events": round(1000 * ceiling_cpu / events, 3),
        "cpu_ratio": round(ceiling_cpu / cpu, 3) if cpu else None,
        "freshness_p50_ms": at_rate["p50_ms"],
        "freshness_p99_ms": at_rate["p99_ms"],
        "freshness_unseen_after_30s": at_rate["unseen_after_30s"],
        "freshness_samples": at_rate["samples"],
        "freshness_rate_events_per_s": rate,
        f"freshness_at_{int(low_rate)}_per_s": _percentiles(low),
        "events": events,
        "produce_s": round(produce_s, 2),
        "drain_s": round(drain_s, 2),
        "startup_s": round(startup_s, 1),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--ratings", type=int, default=4000, help="ratings drained in the throughput phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s in the freshness phase")
    parser.add_argument("--low_rate", type=float, default=200.0, help="events/s of a first, lighter freshness phase")
    parser.add_argument("--live_s", type=float, default=10.0, help="seconds of the freshness phase")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--engine", choices=("flink", "beam"), default="flink")
    parser.add_argument("--checkpoint_ms", type=int, default=500, help="flink: checkpoint interval (held writes wait for one)")
    parser.add_argument("--ceiling_only", "--ceiling-only", action="store_true",
                        help="only the plain loop (and its stages): no broker, no engine, no --out")
    args = parser.parse_args(argv)
    # bench/peers: CPU of the job's processes (that module imports this one, hence not at the top)
    from peers.pipeline_peers import engine_cpu_seconds
    if args.engine == "beam" and not PRISM.exists():
        raise SystemExit(f"Prism runner missing at {PRISM}: run `make prism`")

    events = load_events(args.dataset, args.ratings)
    live_events = load_events(args.dataset, int((args.rate + args.low_rate) * args.live_s / 6) + 50,
                              offset_ratings=args.ratings)
    codec = default_codec()
    payloads = [codec.encode(e) for e in events]
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    ran_at, load_start, cpu0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getloadavg(), time.process_time()
    ceiling_eps, counts = ceiling(payloads, f"sqlite:///{work / 'ceiling.db'}")
    ceiling_cpu = time.process_time() - cpu0
    stages = Stages()  # the same loop again, each stage timed: where the ceiling's time goes
    ceiling(payloads, f"sqlite:///{work / 'stages.db'}", stages)
    if args.ceiling_only:
        only = {"ceiling_events_per_s": round(ceiling_eps, 1), "events": len(events),
                "ceiling_cpu_s_per_1k_events": round(1000 * ceiling_cpu / len(events), 4),
                "ceiling_stages_us_per_event": stages.us_per_event(len(events)),
                "ran_at": ran_at, "load_average": {"start": list(load_start), "end": list(os.getloadavg())}}
        print(json.dumps(only, indent=2))
        return only
    expected_total = sum(counts.values())

    broker = LocalKafka(data_dir=work / "kafka", port=free_port(), die_with_parent=True).start()
    job: subprocess.Popen[bytes] | FlinkJob | None = None
    try:
        topics = {k: f"bench.{k}.{os.getpid()}" for k in ("events", "catalog", "dlq")}
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        for future in admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics.values()]).values():
            future.result(30)
        store_url, log = f"sqlite:///{work / 'state.db'}", work / "job.log"
        launched = time.monotonic()
        if args.engine == "flink":
            job = FlinkJob(broker.bootstrap, store_url, topics, work, args.checkpoint_ms)
            log = work / "flink" / "log" / "taskmanager-0.out"
        else:
            job = start_job(broker.bootstrap, store_url, topics, log)
        store = None

        def total() -> int:
            nonlocal store
            if store is None:
                if not (work / "state.db").exists():
                    return 0
                store = open_store(store_url)
            return sum(store.get_item_counts(list(counts)).values())

        # Start-up: until one warm-up event (a title outside the data) is in the store.
        warm = events[0].replace(event_id="warm-up", video_id="warm-up-title")
        produce(broker.bootstrap, topics["events"], [warm], [codec.encode(warm)])
        def warmed() -> bool:
            total()  # opens the store once the job has created it
            return store is not None and bool(store.get_item_counts(["warm-up-title"]))

        ready = wait_until(warmed, 180, job, log, poll_s=0.05)
        # Throughput: from the first produce call to every effect readable in the store.
        cpu0 = engine_cpu_seconds()  # the job's processes (all the bench started but the broker)
        began = time.monotonic()
        produce(broker.bootstrap, topics["events"], events, payloads)
        produced = time.monotonic()
        done = wait_until(lambda: total() >= expected_total, 900, job, log)
        job_cpu = engine_cpu_seconds() - cpu0
        # First at a rate the job sustains (no backlog), then at the target rate.
        n_low = int(args.low_rate * args.live_s)
        low = freshness(broker.bootstrap, topics["events"], store_url, live_events[:n_low], args.low_rate, job, log)
        latencies = freshness(broker.bootstrap, topics["events"], store_url,
                              live_events[n_low:n_low + int(args.rate * args.live_s)], args.rate, job, log)
        result: dict[str, object] = {
            **engine_figures(len(events), done - began, ceiling_eps, job_cpu, ceiling_cpu, low, latencies,
                             args.rate, args.low_rate, produced - began, done - began, ready - launched),
            "ceiling_stages_us_per_event": stages.us_per_event(len(events)),
            "engine": args.engine,
            "runner": ("Flink 2.3.0 standalone (PyFlink thread mode, parallelism 1, "
                       f"checkpoints every {args.checkpoint_ms} ms)" if args.engine == "flink"
                       else "PrismRunner (Beam 2.75.0, LOOPBACK Python SDK harness)"),
            "source": (f"Flink Kafka SQL source, batched per partition every 100 ms, {PARTITIONS} partitions"
                       if args.engine == "flink" else f"Python splittable DoFn over confluent-kafka, {PARTITIONS} partitions"),
            "store": "SQLite (WAL)",
            "cpus": os.cpu_count(),
            "targets": {"events_per_s": 20000, "freshness_p99_ms": 1000},
            "ran_at": ran_at,
            "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        }
        if store is not None:
            store.close()
    finally:
        if isinstance(job, FlinkJob):
            job.stop()
        elif job is not None and job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(30)
        broker.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        merged = merge_engine_result(args.out, "flink" if args.engine == "flink" else "beam_prism", result)
        args.out.write_text(json.dumps(merged, indent=2) + "\n")
    return result


def merge_engine_result(path: Path, key: str, result: dict[str, object]) -> dict[str, object]:
    """``path``'s results with this engine's replaced under ``engines`` (bench/report.py reads
    them side by side; an old flat file is the Beam run's)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data.get("engines"), dict):
        data = {"engines": {"beam_prism": data}} if data.get("events_per_s") is not None else {"engines": {}}
    data["engines"][key] = result
    return data


if __name__ == "__main__":
    main()
