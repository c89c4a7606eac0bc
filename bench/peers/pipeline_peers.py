"""Pipeline peers for ``bench/bench_pipeline.py``: Quix Streams and Faust on the same workload (issue 18).

    .venv/bin/python bench/peers/pipeline_peers.py [--engines quixstreams,faust] [--ratings 3000] \\
        [--rate 1000] [--low_rate 200] [--live_s 10] [--out bench/results/pipeline_peers.json]

Each peer runs in its own virtualenv (``bench/peers/install.sh``, ``make peers``) as one worker
process (``quix_pipeline.py``, ``faust_pipeline.py``) that applies the same core rule per user
and makes the same batched store writes as the plain-loop ceiling (``bench/peers/rules.py``).
This module drives a peer the way ``bench/bench_pipeline.py`` drives the Beam job, with its own
functions (``ceiling``, ``produce``, ``wait_until``, ``freshness``): a fresh topic with the same
partitions and the same event bytes, a warm-up event, then throughput (first produce call ->
every item count readable in a fresh SQLite store), then freshness at ``--low_rate`` and
``--rate``. The plain-loop ceiling is measured again just before each engine, so each ratio
compares figures taken minutes apart, not the whole run apart. CPU: user + system seconds of the
engine's processes (``engine_cpu_seconds``: this process's descendants but the broker, from
``/proc``) over the throughput phase, per 1k events.

``make bench-pipeline`` runs ``bench_pipeline.py --engine X`` and then this file's ``main``, which
starts and stops its own broker, runs each peer, and merges each peer's figures into
``bench/results/pipeline.json`` under ``engines`` beside the streamrec engines' (each engine's run
has its own time, load average and ceiling). ``run_peer_engines`` runs them on a broker one has.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import bench_pipeline as bp

from streamrec.events.codec import default_codec
from streamrec.events.model import UserEvent
from streamrec.store import open_store

PEERS: dict[str, dict[str, Any]] = {
    "quixstreams": {"venv": REPO / "var" / "peers" / "quix", "script": "quix_pipeline.py", "package": "quixstreams",
                    "state": "RocksDB (per user, changelog topic)", "delivery": "exactly-once inside Kafka (changelog + offsets in one transaction); "
                                "store writes at least once, user state deduplicated by event ids"},
    "faust": {"venv": REPO / "var" / "peers" / "faust", "script": "faust_pipeline.py", "package": "faust-streaming",
              "state": "Faust table (in memory, changelog topic)", "delivery": "at-least-once; user state deduplicated by event ids",
              "note": "faust-streaming 0.11.3 installs cleanly but cannot create its internal topics here: "
                      "it sends a hand-built Metadata v1 request that aiokafka 0.14 can no longer send and "
                      "Kafka 4 no longer serves; faust_pipeline.py creates them through the Admin API instead"},
}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def engine_cpu_seconds(root: int | None = None, skip: str = "kafka.Kafka") -> float:
    """User + system CPU seconds of every live descendant of ``root`` (this process by default) and
    of the children they reaped, leaving out the Kafka broker (``skip`` in its command line) and
    this process itself: the engine's processes, whatever it starts (Prism and the SDK harness,
    Flink's JVMs and Python workers, a peer's worker)."""
    root = os.getpid() if root is None else root
    parent, ticks, cmd = {}, {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
            cmd[int(entry.name)] = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        parent[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if skip.encode() in cmd.get(pid, b""):
            continue
        total += ticks.get(pid, 0)
        todo += children.get(pid, [])
    return total / CLK_TCK


def installed(name: str) -> tuple[Path | None, str | None]:
    """(python of the peer's virtualenv, None) or (None, why it is missing)."""
    venv = PEERS[name]["venv"]
    python = venv / "venv" / "bin" / "python"
    if (venv / "install-failed").exists():
        return None, f"{PEERS[name]['package']} did not install: " + (venv / "install-failed").read_text()[-600:]
    if not (venv / "venv" / ".installed").exists():
        return None, "its virtualenv is missing: run `make peers` (bench/peers/install.sh)"
    return python, None


def version_of(name: str) -> str | None:
    freeze = PEERS[name]["venv"] / "freeze.txt"
    pkg = PEERS[name]["package"]
    if freeze.exists():
        for line in freeze.read_text().splitlines():
            if line.lower().startswith(pkg + "=="):
                return line.split("==", 1)[1]
    return None


def run_peer(name: str, *, bootstrap: str, work: Path, events: Sequence[UserEvent], payloads: Sequence[bytes],
             live_events: Sequence[UserEvent], counts: dict[str, int], rate: float, low_rate: float,
             live_s: float, partitions: int) -> dict[str, object]:
    python, why = installed(name)
    if python is None:
        return {"skipped": why}
    from confluent_kafka.admin import AdminClient, NewTopic

    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    cpu0 = time.process_time()
    ceiling_eps, _ = bp.ceiling(payloads, f"sqlite:///{folder / 'ceiling.db'}")
    ceiling_cpu = time.process_time() - cpu0
    topic = f"bench.{name}.events.{os.getpid()}"
    group = f"bench-{name}-{os.getpid()}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(30)
    store_url, log = f"sqlite:///{folder / 'state.db'}", folder / "job.log"
    cmd = [str(python), str(REPO / "bench" / "peers" / PEERS[name]["script"]), "--bootstrap", bootstrap,
           "--topic", topic, "--store", store_url, "--group", group,
           "--state_dir", str(folder / "state")]
    codec = default_codec()
    load_start = list(os.getloadavg())
    launched = time.monotonic()
    job = subprocess.Popen(cmd, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    store = None
    try:
        def item_counts(ids: list[str]) -> dict[str, int]:
            nonlocal store
            if store is None:
                if not (folder / "state.db").exists():
                    return {}
                store = open_store(store_url)
            return store.get_item_counts(ids)

        warm = events[0].replace(event_id="warm-up", video_id="warm-up-title")
        bp.produce(bootstrap, topic, [warm], [codec.encode(warm)])
        ready = bp.wait_until(lambda: bool(item_counts(["warm-up-title"])), 180, job, log, poll_s=0.05)
        expected, ids = sum(counts.values()), list(counts)
        cpu0 = engine_cpu_seconds()
        began = time.monotonic()
        bp.produce(bootstrap, topic, events, payloads)
        produced = time.monotonic()
        done = bp.wait_until(lambda: sum(item_counts(ids).values()) >= expected, 900, job, log)
        cpu = engine_cpu_seconds() - cpu0
        n_low = int(low_rate * live_s)
        low = bp.freshness(bootstrap, topic, store_url, live_events[:n_low], low_rate, job, log)
        latencies = bp.freshness(bootstrap, topic, store_url, live_events[n_low:n_low + int(rate * live_s)],
                                 rate, job, log)
        return {
            **bp.engine_figures(len(events), done - began, ceiling_eps, cpu, ceiling_cpu, low, latencies,
                                rate, low_rate, produced - began, done - began, ready - launched),
            "engine": f"{PEERS[name]['package']} {version_of(name)}, one worker process",
            "state": PEERS[name]["state"],
            "delivery": PEERS[name]["delivery"],
            "source": f"the engine's Kafka consumer group, {partitions} partitions",
            "store": "SQLite (WAL), the ceiling's batched writes at each commit",
            "ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average": {"start": load_start, "end": list(os.getloadavg())},
            **({"note": PEERS[name]["note"]} if "note" in PEERS[name] else {}),
        }
    except (RuntimeError, OSError) as exc:  # one peer failing must not lose the others' figures
        return {"error": f"{type(exc).__name__}: {str(exc)[-1500:]}"}
    finally:
        if store is not None:
            store.close()
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait(15)


def pickle_cost(payloads: Sequence[bytes]) -> float:
    """CPU s per 1k events of what the peers add to the plain loop's state handling: the user's
    state pickled into and out of the engine's state store at every event (measured on the rules
    alone, no Kafka, no store writes, so it can be set beside each peer's CPU per 1k events)."""

    from rules import Batch

    codec, batch, users = default_codec(), Batch(), {}
    began = time.process_time()
    for payload in payloads:
        batch.through_pickles(users, codec.decode_event(payload))
    with_pickle = time.process_time() - began
    batch, plain = Batch(), {}
    began = time.process_time()
    for payload in payloads:
        e = codec.decode_event(payload)
        update = batch.step(plain.get(e.user_id), e)
        if update.applied:
            plain[e.user_id] = update.state
            batch.add(e, update)
    return round(1000 * (with_pickle - (time.process_time() - began)) / len(payloads), 3)


def run_peer_engines(names: Sequence[str], *, bootstrap: str, work: Path, events: Sequence[UserEvent],
                     payloads: Sequence[bytes], live_events: Sequence[UserEvent], counts: dict[str, int],
                     rate: float, low_rate: float, live_s: float,
                     partitions: int = bp.PARTITIONS) -> dict[str, dict[str, object]]:
    """``{name: figures}`` for each peer, run one after the other on the given broker."""
    if not names:
        return {}
    sys.path.insert(0, str(REPO / "bench" / "peers"))
    serialization = pickle_cost(payloads)
    out = {}
    for name in names:
        out[name] = run_peer(name, bootstrap=bootstrap, work=work, events=events, payloads=payloads,
                             live_events=live_events, counts=counts, rate=rate, low_rate=low_rate,
                             live_s=live_s, partitions=partitions)
        if "events_per_s" in out[name]:
            out[name]["state_pickle_cpu_s_per_1k_events"] = serialization
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(PEERS))
    parser.add_argument("--dataset", type=Path, default=REPO.parent / "shared" / "data" / "ml-latest-small")
    parser.add_argument("--ratings", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--low_rate", type=float, default=200.0)
    parser.add_argument("--live_s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    events = bp.load_events(args.dataset, args.ratings)
    live_events = bp.load_events(args.dataset, int((args.rate + args.low_rate) * args.live_s / 6) + 50,
                                 offset_ratings=args.ratings)
    codec = default_codec()
    payloads = [codec.encode(e) for e in events]
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    _, counts = bp.ceiling(payloads, f"sqlite:///{work / 'counts.db'}")
    broker = bp.LocalKafka(data_dir=work / "kafka", port=bp.free_port()).start()
    try:
        engines = run_peer_engines(args.engines.split(","), bootstrap=broker.bootstrap, work=work, events=events,
                                   payloads=payloads, live_events=live_events, counts=counts, rate=args.rate,
                                   low_rate=args.low_rate, live_s=args.live_s)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"engines": engines}, indent=2))
    if args.out:  # beside the other engines' results, as bench_pipeline.py --engine X writes its own
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for name, figures in engines.items():
            args.out.write_text(json.dumps(bp.merge_engine_result(args.out, name, figures), indent=2) + "\n")
    return engines


if __name__ == "__main__":
    main()
