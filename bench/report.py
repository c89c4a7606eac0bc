"""docs/performance.md from the benchmark JSON in bench/results/ (issue 18).

    .venv/bin/python bench/report.py [--results bench/results] [--out docs/performance.md]

Run at the end of every ``make bench-*``. One table per benchmark with every store or engine side
by side, the machine's load average when the run was made, and a short reading of the numbers
(where streamrec is ahead, where behind, why). The reading is a template filled from the JSON:
the comparisons it states are computed here, the explanations are the mechanisms each branch
names. Nothing in the output is edited by hand; re-run this script instead.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

STORE_ORDER = ("dict", "sqlite", "redis", "aerospike")
STORE_LABEL = {"dict": "plain dict (ceiling)", "sqlite": "SQLite (streamrec)", "redis": "Redis",
               "aerospike": "Aerospike (streamrec)"}
STORE_OPS = {
    "user_write": "user record write (100 per call)",
    "user_read": "user record read (1 per call)",
    "user_read_batch": "user record read (50 per call)",
    "cowatch_increment": "co-watch increments + top-K trim (a bundle per call)",
    "neighbour_read": "top-50 neighbours (50 titles per call)",
    "item_count_increment": "item counter increments (a bundle per call)",
    "item_count_read": "item counter reads (50 per call)",
}
ENGINE_ORDER = ("beam_prism", "flink", "quixstreams", "faust")
ENGINE_LABEL = {"beam_prism": "Beam on Prism (streamrec)",
                "flink": "Flink (streamrec)", "quixstreams": "Quix Streams", "faust": "Faust"}


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int):
        if digits == 0 and abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:,.{digits}f}"
        return f"{value:.3g}" if digits == 0 else f"{value:.{digits}f}"
    return str(value)


def load_text(load: Any) -> str:
    """``load_average`` as {start: [1m, 5m, 15m], end: [...]}, a list, or a single 1-minute figure."""
    if isinstance(load, Mapping):
        parts = [f"{k} {' / '.join(f'{x:.2f}' for x in v)}" for k, v in load.items() if isinstance(v, list)]
        return "; ".join(parts) + " (1 / 5 / 15 min)" if parts else "not recorded"
    if isinstance(load, list):
        return " / ".join(f"{x:.2f}" for x in load) + " (1 / 5 / 15 min)"
    if isinstance(load, float | int):
        return f"{load:.2f} (1 min)"
    return "not recorded (the run predates it)"


# Why one store beats the other on an operation (the mechanism, not the measurement).
_SERVER = "each sent over loopback, executed and answered by a server that shares the two cores"
WHY_SQLITE_AHEAD = {
    "user_write": f"one in-process write transaction against HSET + HINCRBY + EXPIRE per user, {_SERVER}",
    "user_read": "no socket round trip for a single key",
    "user_read_batch": "50 reads in one read transaction with no network, against 50 HMGETs",
    "cowatch_increment": f"one in-process `executemany` against a ZINCRBY per pair and a ZREMRANGEBYRANK "
                         f"per touched title, {_SERVER}",
    "neighbour_read": "a primary-key range scan in process against 50 ZREVRANGE replies of 50 members",
    "item_count_increment": f"one in-process `executemany` against an INCRBY per counter, {_SERVER}",
    "item_count_read": "one `IN (...)` query in process against one MGET round trip and its parsing",
}
_ROUND_TRIP = ("Redis answers from RAM with no SQL statement to prepare or B-tree pages to walk, "
               "SQLite pays statement, transaction and page costs per call")
WHY_REDIS_AHEAD = {
    "user_write": "Redis appends to its AOF in the background (fsync once a second) while SQLite's "
                  "write transaction updates a B-tree of 3-17 KB records and the WAL",
    "user_read": "a single HMGET is one round trip; " + _ROUND_TRIP,
    "user_read_batch": _ROUND_TRIP,
    "cowatch_increment": "a sorted set keeps each title's neighbours ranked, so the trim is one "
                         "ZREMRANGEBYRANK, while SQLite maintains a table and a top-k index per pair",
    "neighbour_read": "a sorted set is already ranked, so top-50 is a range read",
    "item_count_increment": _ROUND_TRIP,
    "item_count_read": _ROUND_TRIP,
}


# -- store ------------------------------------------------------------------------------------------
def store_section(data: Mapping[str, Any]) -> list[str]:
    stores: Mapping[str, Any] = data.get("stores", {})
    present = [s for s in STORE_ORDER if s in stores and "skipped" not in stores[s]]
    skipped = {s: stores[s]["skipped"] for s in STORE_ORDER if s in stores and "skipped" in stores[s]}
    lines = ["## State store (`make bench-store`)", "",
             (f"Run of {data.get('ran_at', 'an unrecorded time')} (scale {data.get('scale', 1.0)}), "
             f"{data.get('machine', {}).get('cpus', '?')} cores; load average {load_text(data.get('load_average'))}."),
             ("Each cell: ops/s · ratio to the plain dict in the same run · per-call latency p50 / p99 (ms). "
             "Every store started empty and got the same calls with the same bytes (`streamrec.store.codec`); "
             "the dict does the same encoding, decoding and top-K trimming in-process with no store at all."), ""]
    if not present:
        return [*lines, "No side-by-side figures in `bench/results/store.json` yet: run `make bench-store`.", ""]
    lines.append("| operation | " + " | ".join(STORE_LABEL[s] for s in present) + " |")
    lines.append("|---|" + "---|" * len(present))
    for op, label in STORE_OPS.items():
        cells = []
        for s in present:
            f = stores[s].get(op)
            if not f:
                cells.append("–")
                continue
            cells.append(f"{fmt(f['ops_per_s'])}/s · ×{f.get('ratio_to_dict', 0):.3g} · "
                         f"{fmt(f['p50_ms'], 2)} / {fmt(f['p99_ms'], 2)}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    for s, why in skipped.items():
        lines.append(f"- {STORE_LABEL[s]}: not run ({why}).")
    server = stores.get("redis", {}).get("server")
    if server:
        lines.append(f"- Redis {server['version']}: `redis-server` on loopback, AOF `appendfsync "
                     f"{server['appendfsync']}`, one pipeline (one round trip) per call, hiredis parser; "
                     f"{fmt(server['used_memory_bytes'] / 1e6, 1)} MB used for {fmt(server['keys'])} keys at the end.")
    lines += ["", "### Reading", "", *store_reading(stores, data.get("bytes", {}).get("user_state_typical_bytes"),
                                                    data.get("decode_profile")), ""]
    return lines


def _ops(stores: Mapping[str, Any], store: str, op: str) -> float:
    return float(stores.get(store, {}).get(op, {}).get("ops_per_s", 0) or 0)


def _ratio(stores: Mapping[str, Any], store: str, default: float) -> float:
    return float(stores[store]["cowatch_increment"].get("ratio_to_dict", default))


def store_reading(stores: Mapping[str, Any], typical_bytes: int | None = None,
                  profile: Mapping[str, Any] | None = None) -> list[str]:
    if "sqlite" not in stores or "redis" not in stores or "skipped" in stores["redis"]:
        return ["Redis did not run, so there is no peer to compare with."]
    out = []
    ahead, behind, even = [], [], []
    for op, label in STORE_OPS.items():
        s, r = _ops(stores, "sqlite", op), _ops(stores, "redis", op)
        if not s or not r:
            continue
        x = s / r
        if x > 1.25:
            ahead.append(f"{label} ×{x:.2f}: {WHY_SQLITE_AHEAD[op]}")
        elif x < 0.8:
            behind.append(f"{label} ×{x:.2f}: {WHY_REDIS_AHEAD[op]}")
        else:
            even.append(f"{label} (×{x:.2f})")
    if ahead:
        out.append("- **SQLite (streamrec's embedded store) ahead of Redis** (SQLite ops/s over Redis's): "
                   + "; ".join(ahead) + ".")
    if behind:
        out.append("- **SQLite behind Redis**: " + "; ".join(behind) + ".")
    if even:
        out.append("- **About even** (within ±25 %, inside this machine's run-to-run noise): "
                   + "; ".join(even) + ".")
    enc = stores.get("dict", {}).get("user_read", {})
    if enc:
        size = f"{typical_bytes / 1000:.1f} KB " if typical_bytes else ""
        out.append(f"- User records: the dict ceiling is mostly the codec (decode of a typical {size}"
                   f"MessagePack profile: {fmt(enc['p50_ms'], 3)} ms p50), so for whole-profile reads "
                   "and writes every store is within a small factor of the ceiling and the choice "
                   "of store matters less than the record's size.")
    one, fifty = stores.get("sqlite", {}).get("user_read", {}), stores.get("sqlite", {}).get("user_read_batch", {})
    if one.get("p50_ms") and fifty.get("p50_ms"):
        d1, d50 = stores.get("dict", {}).get("user_read", {}), stores.get("dict", {}).get("user_read_batch", {})
        out.append(f"- Issue 13's targets for SQLite: a typical user record read ≤ 50 µs p50 (here "
                   f"{1000 * one['p50_ms']:.0f} µs, the dict ceiling's decode alone {1000 * d1.get('p50_ms', 0):.0f} µs) "
                   f"and a batch of 50 ≤ 2 ms (here {fmt(fifty['p50_ms'], 2)} ms, the ceiling "
                   f"{fmt(d50.get('p50_ms', 0), 2)} ms). What is left is the decode"
                   + (":" if profile else ": unpacking creates a string per id (~400 in a typical profile) and "
                      "an object per history entry, progress and top pick (~170), each tracked by the garbage "
                      "collector, which a batch of 50 also pays for; the SQLite read itself is a few µs (raw "
                      "primary-key read in `ceilings`)."))
        if profile:
            out.extend(decode_profile_text(profile))
    cw = [(s, _ops(stores, s, "cowatch_increment")) for s in ("sqlite", "redis", "aerospike")]
    cw = [(s, v) for s, v in cw if v]
    if cw:
        d = _ops(stores, "dict", "cowatch_increment")
        out.append("- Counters and co-watch increments are where any store is far below the dict "
                   f"({', '.join(f'{STORE_LABEL[s]} ×{_ratio(stores, s, v / d):.3g}' for s, v in cw)}): a dict "
                   f"increment with the trim costs {1e6 / d:.1f} µs here, a store's "
                   f"{', '.join(f'{1e6 / v:.0f} µs ({s})' for s, v in cw)}. The pipeline already sums "
                   "increments per bundle before writing; that, not the store, keeps this path cheap.")
    out.append("- Not measured here: Redis keeps everything in RAM (300 M profiles of ~6 KB need "
               "~2 TB of it, docs/capacity.md) and is single-threaded per shard; SQLite is one "
               "machine's file. Aerospike, the production store, did not run here unless a column "
               "says so.")
    return out


def decode_profile_text(p: Mapping[str, Any]) -> list[str]:
    """The profile of a typical record's decode (``decode_profile`` in bench/results/store.json)."""
    entries, alloc = p["entries_and_state_us"], p["entries_alloc_us"]
    per_object = 1000 * entries / p["entries_per_record"]
    gc_share = 1 - p["batch_of_50_gc_off_p50_ms"] / p["batch_of_50_gc_on_p50_ms"]
    return [
        (f"  - Profile of one typical record's decode ({p['records']} records, each stage timed alone, best "
        f"of 7): {fmt(p['decode_us'], 1)} µs = Zstandard {fmt(p['zstd_us'], 1)} µs + "
        f"MessagePack unpack {fmt(p['unpack_us'], 1)} µs (the columns: {fmt(p['strings_per_record'])} strings, "
        f"the rest numbers) + building the {fmt(p['entries_per_record'])} history, progress and top-pick "
        f"entries and the state {fmt(entries, 1)} µs ({fmt(per_object)} ns per entry, of which "
        f"`object.__new__` alone is {fmt(1000 * alloc / p['entries_per_record'])} ns; the rest sets each "
        "field through its slot descriptor, in C loops over the columns). The entries are frozen "
        "dataclasses the rest of the code depends on; built this way they cost what CPython's "
        "allocation and slot stores cost, and nothing in Python builds them for less: msgspec 0.22 "
        "decoding straight into the same dataclasses (its C decoder; dataclasses only from maps) measured "
        "~165 ns per history entry against ~175 for unpack plus these loops, on a 12 % larger record, "
        "so it is not used. Zstandard's fast level (-1) would save ~3 µs of a typical read but makes a "
        "record at the bounds ~20 KB, over the capacity model's 17,345 B (docs/capacity.md)."),
        (f"  - A batch of 50 decoded alone: {fmt(p['batch_of_50_gc_on_p50_ms'], 2)} ms p50, "
        f"{fmt(p['batch_of_50_gc_off_p50_ms'], 2)} ms with the garbage collector off (a measurement only): "
        f"the collector's share is {100 * max(gc_share, 0):.0f} %. `codec.decode_users` pauses the collector "
        "while a batch is decoded (per 256 users, restored after, shared by threads); before that, perf "
        "put ~45 % of a batch in the collector: ~8,400 tracked entries per batch set off ~12 young "
        "collections, which promoted the states into the oldest generation, whose full passes were the "
        "100+ ms p99. What is left is making and freeing ~850 Python objects per typical record (405 "
        "strings, ~245 numbers, 168 frozen dataclass entries and their lists): fewer objects would need "
        "a model change (e.g. entries as tuples). The SQLite side of a read is small: one prepared "
        "statement for a single user, one for a batch, the file memory-mapped for reads "
        "(`SqliteStore.READ_MMAP_BYTES`)."),
    ]


# -- pipeline -----------------------------------------------------------------------------------------
def engines_of(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(engines, shared) from pipeline.json: ``engines`` when present, else the old flat Beam run."""
    if isinstance(data.get("engines"), Mapping):
        shared = {k: v for k, v in data.items() if k != "engines"}
        engines = dict(data["engines"])
        if "beam_prism" not in engines and "events_per_s" in shared:  # the Beam run's figures at the top
            engines = {"beam_prism": shared, **engines}
        return engines, shared
    return {"beam_prism": dict(data)}, {}


# What the Beam run's JSON does not say about itself (docs/pipelines.md, "Delivery guarantee").
ENGINE_DEFAULTS = {"beam_prism": {
    "delivery": "at-least-once reads; user state effectively exactly once (applied event ids kept in the profile)",
    "state": "Beam state per user (runner memory), profile in the store"},
    "flink": {  # docs/flink.md
        "delivery": "exactly-once effects in the store (writes held until a checkpoint covers them, "
                    "counters written as total - stored)",
        "state": "Flink keyed state (MapState per partition), checkpointed"}}


def _engine_row(e: Mapping[str, Any]) -> dict[str, str]:
    if "skipped" in e or "error" in e:
        why = e.get("skipped") or e.get("error")
        return {"events/s": f"not run: {why}"}
    low_key = next((k for k, v in e.items() if k.startswith("freshness_at_") and isinstance(v, Mapping)), None)
    low = e[low_key] if low_key else None
    low_rate = low_key.removeprefix("freshness_at_").removesuffix("_per_s") if low_key else "?"
    cpu, ceiling_cpu = e.get("cpu_s_per_1k_events"), e.get("ceiling_cpu_s_per_1k_events")
    load = e.get("load_average")
    start = load.get("start") if isinstance(load, Mapping) else load
    return {
        "run at (UTC)": str(e.get("ran_at", "–")).replace("T", " ").removesuffix("Z"),
        "load average at the start (1 / 5 / 15 min)": " / ".join(f"{x:.1f}" for x in start) if start else "–",
        "events/s": fmt(e.get("events_per_s")),
        "plain-loop ceiling, events/s (measured just before)": fmt(e.get("ceiling_events_per_s")),
        "ratio to the plain loop (events/s)": fmt(e.get("ratio"), 3) if e.get("ratio") is not None else "–",
        "CPU s per 1k events (engine / plain loop)":
            (f"{fmt(cpu, 2)} / {fmt(ceiling_cpu, 2)}" if ceiling_cpu else fmt(cpu, 2)) if cpu else "–",
        "ratio to the plain loop (CPU)": fmt(e.get("cpu_ratio"), 3) if e.get("cpu_ratio") else "–",
        "freshness p50 / p99 (ms), low rate":
            f"{fmt(low.get('p50_ms'))} / {fmt(low.get('p99_ms'))} at {low_rate}/s" if low else "–",
        "freshness p50 / p99 (ms), target rate":
            f"{fmt(e.get('freshness_p50_ms'))} / {fmt(e.get('freshness_p99_ms'))}"
            f" at {fmt(e.get('freshness_rate_events_per_s'))}/s"
            + (f" ({e['freshness_unseen_after_30s']} of {e.get('freshness_samples')} unseen after 30 s)"
               if e.get("freshness_unseen_after_30s") else ""),
        "start-up (s)": fmt(e.get("startup_s"), 1),
        "delivery": str(e.get("delivery", "–")),
        "state": str(e.get("state", "–")),
    }


def pipeline_section(data: Mapping[str, Any]) -> list[str]:
    engines, shared = engines_of(data)
    present = [k for k in ENGINE_ORDER if k in engines] + [k for k in engines if k not in ENGINE_ORDER]
    load = shared.get("load_average") or next((e.get("load_average") for e in engines.values()
                                               if e.get("load_average")), None)
    lines = ["## Pipeline (`make bench-pipeline`)", "",
             ("Each engine is run by its own step of `make bench-pipeline` (`bench_pipeline.py --engine flink|beam`, "
             "then `bench/peers/pipeline_peers.py` for the peers), each with its own broker and plain-loop "
             "ceiling, so every column has its own time and load average."),
             ("The same MovieLens watch sessions, produced to a Kafka topic on a local broker, applied "
             "with the same `streamrec.recommend.state.apply_event` rules per user (in place: "
             "`streamrec.recommend.live.LiveUser`) and written to SQLite with "
             "the same batched store calls. events/s: from the first produce call until every item "
             "count is readable in the store. Freshness: produced → the event applied in the user's "
             "stored state (its id, or a later event's time; every 5th event, polled every 20 ms), "
             "first at a low rate, then at "
             "the target rate. CPU: user + system seconds of the engine's processes (every process the "
             "bench started but the broker) over the throughput phase, per 1k events. "
             "Ratios: the engine's events/s (or CPU per event) against the plain loop's, the same "
             "updates and store writes in one Python loop, measured in the same run just before the engine."), ""]
    rows = {k: _engine_row({**ENGINE_DEFAULTS.get(k, {}), **engines[k]}) for k in present}
    labels = list(dict.fromkeys(label for r in rows.values() for label in r))
    lines.append("| figure | " + " | ".join(ENGINE_LABEL.get(k, k) for k in present) + " |")
    lines.append("|---|" + "---|" * len(present))
    for label in labels:
        lines.append(f"| {label} | " + " | ".join(rows[k].get(label, "–") for k in present) + " |")
    lines.append("")
    lines += [f"- {ENGINE_LABEL.get(k, k)}: {engines[k].get('runner') or engines[k].get('engine')}."
              for k in present if engines[k].get("runner") or engines[k].get("engine")]
    lines += [f"- {ENGINE_LABEL.get(k, k)}: {engines[k]['note']}." for k in present if engines[k].get("note")]
    if any(e.get("freshness_unseen_after_30s") for e in engines.values()):
        lines.append("- \"unseen after 30 s\": 30 s after it was produced, neither the event's id (among the "
                     "user's last 256) nor a later event of that user was in the store: the engine's backlog "
                     "at that rate (counted, not dropped).")
    lines += ["", "### Reading", "", *pipeline_reading(engines, load), ""]
    lines += ceiling_profile(engines)
    return lines


#: The one-off profile that set issue 13's work (cProfile over the plain loop's 25,107 events, the
#: code as it was before; run again with `python -m cProfile` on bench_pipeline.ceiling).
CEILING_PROFILE_BEFORE = (
    "Profiled before issue 13 (cProfile over the loop's 25,107 events, 17.4k events/s on a quiet "
    "machine): `apply_event` took 50 % of the time: the pure rule rebuilt the user on every event "
    "(`dataclasses.replace`, copies of the 256 recent event ids and the 200-entry history, their "
    "characters summed again for the byte budgets, the history re-keyed to insert one entry); the "
    "SQLite co-watch upserts 20 % (about 5 directed pairs per event, each a primary-key upsert that "
    "also moves the pair in the top-k rank index and, for a new pair, fires the neighbour-count "
    "trigger); the Avro decode 13 %; the item-vector increments 7 % (one numpy product and add per "
    "pair). What changed: the pipelines, the evaluation replay and this loop apply the rules in place "
    "(`streamrec.recommend.live.LiveUser`, with the event-id set, the history by title and each "
    "list's size kept beside the state; `apply_event` stays the oracle, equal after every event of "
    "both shared logs in tests/recommend/test_live.py): about 2.5x cheaper per event; the fold-in in "
    "place on one array; the item-vector increments summed for all titles at once (bit for bit the "
    "loop's, ~5x cheaper); a batch's co-watch increments checked once per distinct title, staged in "
    "a temporary table and upserted by one statement; ids checked once per new id in the decoder; "
    "user records in MessagePack columns, Zstandard when long.")

#: The second profile (cProfile over the same loop at 26.6-27.7k events/s, then each SQLite statement
#: of the co-watch write timed over the loop's 51 batches: 126,310 pair increments, 47,576 new pairs).
CEILING_PROFILE_COWATCH = (
    "Profiled again at 26.6-27.7k events/s: the co-watch write was the largest stage (14 µs per "
    "event, 38 %), and nearly all of it SQLite's own work per pair row (~2.2 µs): binding the rows "
    "into the staging table one `executemany` step each (2.5 µs per event), the upsert (6.6 µs, of "
    "which ~4 moving the pair's entry in the top-k rank index and ~2 the neighbour-count trigger on "
    "each new pair), the commit writing the touched pages to the WAL (~2 µs); the Python around it "
    "0.6 µs. Bigger pages, a 64 MB page cache, rarer WAL checkpoints, sorted or JSON-passed rows, "
    "UPDATE ... FROM plus INSERT OR IGNORE and a set-based neighbour count measured no gain or a "
    "loss. What changed: the increments go in as multi-row upserts of 256 pairs (no staging table; "
    "-2 µs); the rank index leaves out the pairs counted exactly once, read apart in primary-key "
    "order, which is their rank order (a new pair of count 1 writes no index entry, its first "
    "increment one instead of two: 30 % fewer index writes, -1.9 µs); the trigger and its "
    "per-title count table are gone, the trim counts the rows of the titles the batch touched "
    "(-0.8 µs; old stores are migrated when opened). Same answers (tests/store, known answers "
    "against a plain-Python model); the price is on the read side: a top-k read 10-17 % slower per "
    "title (a second statement for the pairs counted once when fewer than k are counted more; "
    "the feed's 10 seeds x 50 on the demo's store: 171 -> 195 µs). "
    "The same profile with garbage-collector callbacks: 2-4 µs per event went to full collections "
    "walking the harness's own heap (the 25k decoded events it produces to Kafka afterwards, the "
    "modules it imported), not the loop's objects; the harness now freezes what it holds before "
    "the loop (`gc.freeze`, bench_pipeline.ceiling). That is a change of the measurement, not of "
    "the core (side by side, best of 6 at load 2.4: 28.7k events/s without it, 30.4k with it; "
    "the store changes above: 25.7k -> 28.7k).")


def ceiling_profile(engines: Mapping[str, Any]) -> list[str]:
    """Where the plain loop's time goes: each run's second, stage-timed pass of the loop."""
    timed = {k: e["ceiling_stages_us_per_event"] for k, e in engines.items() if e.get("ceiling_stages_us_per_event")}
    out = ["### The plain loop: where its time goes (issue 13)", "", CEILING_PROFILE_BEFORE, "",
           CEILING_PROFILE_COWATCH, ""]
    if not timed:
        return out
    stages = list(dict.fromkeys(s for st in timed.values() for s in st))
    out += [("Now, per run: µs per event by stage, from a second pass of the same loop with each stage "
             "timed (the clock reads make it a little slower than the measured pass); the share of the "
             "pass in brackets."), "",
            "| stage | " + " | ".join(ENGINE_LABEL.get(k, k) + " run" for k in timed) + " |",
            "|---|" + "---|" * len(timed)]
    for stage in stages:
        cells = []
        for st in timed.values():
            total = sum(st.values())
            cells.append(f"{fmt(st[stage], 1)} ({100 * st[stage] / total:.0f} %)" if stage in st else "–")
        out.append(f"| {stage} | " + " | ".join(cells) + " |")
    out.append("| all | " + " | ".join(f"{fmt(sum(st.values()), 1)} µs = {fmt(1e6 / sum(st.values()))} events/s"
                                     for st in timed.values()) + " |")
    target = 30_000
    out += ["", (f"- Issue 13's target for the measured pass is {fmt(target)} events/s ({1e6 / target:.0f} µs per "
                 "event) on this shared machine. What limits it, in the order of the table: the co-watch "
                 "upserts (one SQLite row per directed pair, as the store contract keeps them: the row "
                 "and, once counted twice, its rank-index entry per pair; a title's neighbours in "
                 "one record, the issue's other lead, would turn ~5 row writes per event into one record "
                 "rewrite per touched title per batch, cheaper only while few titles are touched per "
                 "batch); the Avro decode (3-4 µs of it is fastavro's compiled reader itself); the state "
                 "machine's rules (a first watch's pairs and the vector fold-in, numpy calls on 64 floats, "
                 "are most of it). The load average of the run scales every figure: compare the shares.")]
    cpu = {k: engines[k].get("ceiling_cpu_s_per_1k_events") for k in timed if engines[k].get("ceiling_cpu_s_per_1k_events")}
    if cpu:
        out.append("- In CPU time, which depends less on the share of the cores a process got: the measured pass "
                   "spent " + "; ".join(
                       f"{fmt(c, 3)} s per 1k events in the {ENGINE_LABEL.get(k, k)} run = {fmt(1000 / c)} events per "
                       f"CPU-second (×{1000 / c / target:.2f} of the target)" for k, c in cpu.items())
                   + ". Before issue 13 the same loop spent 0.055-0.060 s per 1k events (16.7-18k per CPU-second).")
    return [*out, ""]


def pipeline_reading(engines: Mapping[str, Any], load: Any) -> list[str]:
    ran = {k: e for k, e in engines.items() if e.get("events_per_s")}
    ours = [k for k in ("beam_prism", "flink") if k in ran]
    peers = [k for k in ("quixstreams", "faust") if k in ran]
    out = [f"- {ENGINE_LABEL.get(k, k)} did not run: {e.get('skipped') or e.get('error')}"
           for k, e in engines.items() if "skipped" in e or "error" in e]
    if not ours or not peers:
        return [*out, "- No streamrec engine and peer ran in the same run, so there is nothing to compare yet."]

    def cpu(k: str) -> float | None:
        return ran[k].get("cpu_s_per_1k_events")

    for o in ours:
        for p in peers:
            x = ran[o]["events_per_s"] / ran[p]["events_per_s"]
            word = "ahead of" if x > 1.25 else "behind" if x < 0.8 else "even with"
            line = (f"- Throughput: {ENGINE_LABEL[o]} is **{word}** {ENGINE_LABEL[p]} "
                    f"({fmt(ran[o]['events_per_s'])} vs {fmt(ran[p]['events_per_s'])} events/s, ×{x:.2f})")
            if cpu(o) and cpu(p):
                y = cpu(p) / cpu(o)  # type: ignore[operator]
                word = "less" if y > 1.25 else "more" if y < 0.8 else "about the same"
                line += (f"; it spends **{word}** CPU per event ({fmt(cpu(o), 2)} vs {fmt(cpu(p), 2)} s "
                         f"per 1k events)")
            out.append(line + ".")
    starts = [e["load_average"]["start"][0] for e in ran.values() if isinstance(e.get("load_average"), Mapping)]
    if not starts and isinstance(load, Mapping) and load.get("start"):
        starts = [load["start"][0]]
    if starts and max(starts) > 2:
        spread = f"{min(starts):.1f}" + (f"-{max(starts):.1f}" if max(starts) - min(starts) >= 0.1 else "")
        out.append(f"- The load average was {spread} on 2 cores at the engines' starts, "
                   "so each process got a fraction of a "
                   "core and wall-clock events/s follow the share each one got as much as its own cost; "
                   "CPU seconds per event are the steadier comparison between engines here.")
    pk = next((ran[p].get("state_pickle_cpu_s_per_1k_events") for p in peers
               if ran[p].get("state_pickle_cpu_s_per_1k_events")), None)
    ceiling = next((ran[k].get("ceiling_cpu_s_per_1k_events") for k in peers
                    if ran[k].get("ceiling_cpu_s_per_1k_events")), None)
    if pk and ceiling:
        out.append(f"- Where the peers' CPU goes: the plain loop needs {fmt(ceiling, 3)} s per 1k events "
                   f"for the same rules and writes; pickling each user's state into and out of the "
                   f"engine's state store at every event adds {fmt(pk, 3)} s (measured alone in the same "
                   "run); the rest is the engines' per-record work (Kafka client, state transaction and "
                   "changelog records, sink or agent machinery; Faust also sends a changelog record per "
                   "table write).")
    ceilings = [e["ceiling_events_per_s"] for e in ran.values() if e.get("ceiling_events_per_s")]
    if ceilings and max(ceilings) > 1.5 * min(ceilings):
        out.append(f"- The plain loop itself measured {fmt(min(ceilings))}-{fmt(max(ceilings))} events/s across "
                   "the runs (the same work minutes apart), so an events/s ratio is only as steady as the "
                   "load during its own ceiling; the CPU ratio does not depend on the share a process got.")
    if "flink" in ran and cpu("flink") and any(cpu(p) and cpu("flink") < cpu(p) for p in peers):  # type: ignore[operator]
        out.append("- Why Flink spends less CPU per event than the peers (from what the job does "
                   "differently, docs/flink.md; not profiled here): the Kafka source and the batching "
                   "(one row per partition per 100 ms, `ARRAY_AGG`) run in Java, so Python is called once "
                   "per batch instead of once per record, and in PyFlink's thread mode Python runs inside "
                   "the JVM (no separate worker process, no Fn API hop); user state stays in Flink's keyed "
                   "state, checkpointed, with no per-event pickling to a state store. The peers call Python "
                   "per record and pickle each user's state at every event.")
    if "beam_prism" in ran and cpu("beam_prism"):
        out.append("- Where Beam's CPU goes beyond the same rules: the runner (Prism, a separate Go "
                   "process) hands every bundle to the Python SDK harness over the Fn API (gRPC), "
                   "elements are encoded and decoded between fused stages, and user state, the per-user "
                   "grouping and the trending windows go through Beam's state and timers. What it buys: "
                   "the same job runs unchanged on Flink or Dataflow, scaled out with autoscaling, while "
                   "the peers scale by running more consumer processes up to the topic's partitions.")
    return out


# -- serving --------------------------------------------------------------------------------------------
SERVING_PHASES = (("feed", "cache hit"), ("feed_uncached", "assembled, nearline top picks served"),
                  ("feed_ranked", "assembled, top picks ranked for the request"))
FEED_CPU_TARGET_US = 1000  # issue 13: an uncached feed <= 1 ms of server CPU
CACHED_RATIO_TARGET = 0.5  # ... a cached feed >= 50 % of the static ceiling


def serving_section(data: Mapping[str, Any]) -> list[str]:
    lines = ["## Feed service (`make bench-serving`)", "",
             (f"Load average {load_text(data.get('load_average_1m') or data.get('load_average'))}. "
              "No peer yet (issue 18 asks for store and pipeline peers); the ceiling is aiohttp answering "
              "a static body on the same core in the same run "
              f"({fmt(data.get('static_ceiling_rps'))} requests/s, {fmt(data.get('static_cpu_us_per_req'))} µs "
              "of CPU each). The service runs on one core, the load on the other. Every seeded viewer "
              "was active minutes before (bench_serving.as_if_just_played), so their nearline top picks are "
              "current; the ranked phase makes every feed rank its top picks for the request instead "
              "(`STREAMREC_SERVING_PICKS_MAX_AGE_S` ~0), as for a viewer back after an hour or one who "
              "has just watched a title."), "",
             ("| phase | server CPU per feed, one at a time (µs) | most full answers/s (wrk -c32) | ratio to static "
             "| p50 / p99 at the fixed rate (ms) | degraded at the fixed rate | nearline picks served |"),
             "|---|---|---|---|---|---|---|"]
    ceiling = data.get("static_ceiling_rps") or 0
    for key, label in SERVING_PHASES:
        alone, at_rate = data.get(f"{key}_alone") or {}, data.get(f"{key}_at_rate") or {}
        if not alone and f"{key}_max_rps" not in data:
            continue
        rps = data.get(f"{key}_max_rps")
        ratio = data.get(f"{key}_ratio") or (round(rps / ceiling, 3) if rps and ceiling else None)
        lines.append(f"| {label} | {fmt(alone.get('server_cpu_us_per_req'))} | {fmt(rps)} | {fmt(ratio, 3)} "
                     f"| {fmt(at_rate.get('p50_ms'), 2)} / {fmt(at_rate.get('p99_ms'), 1)} at "
                     f"{fmt(data.get('rate_rps'))}/s | {fmt(at_rate.get('degraded_ratio'), 3)} "
                     f"| {fmt(alone.get('nearline_picks_ratio'), 3)} |")
    if "feed_gzip_max_rps" in data:
        gz = data["feed_gzip_max_rps"]
        lines.append(f"| cache hit, gzip accepted (as browsers ask) | "
                     f"{fmt((data.get('feed_gzip_wrk') or {}).get('server_cpu_us_per_req'))} (under wrk) | "
                     f"{fmt(gz)} | {fmt(data.get('feed_gzip_ratio') or (gz / ceiling if ceiling else None), 3)} "
                     "| – | – | – |")
    if "similar_max_rps" in data:
        lines.append(f"| \"more like this\" (`/v1/videos/{{id}}/similar`), cached | "
                     f"{fmt((data.get('similar_wrk') or {}).get('server_cpu_us_per_req'))} (under wrk) | "
                     f"{fmt(data['similar_max_rps'])} | {fmt(data['similar_max_rps'] / ceiling if ceiling else None, 3)} "
                     "| – | – | – |")
    lines += ["", "### Reading", ""]
    uncached = (data.get("feed_uncached_alone") or {}).get("server_cpu_us_per_req")
    ranked = (data.get("feed_ranked_alone") or {}).get("server_cpu_us_per_req")
    if uncached:
        verdict = "met" if uncached <= FEED_CPU_TARGET_US else "not met"
        lines.append(f"- Issue 13's target, an uncached feed <= {FEED_CPU_TARGET_US} µs of server CPU: {fmt(uncached)} µs "
                     f"with the nearline top picks served (**{verdict}**, ×{uncached / FEED_CPU_TARGET_US:.2f} of the "
                     f"target); {fmt(ranked)} µs when the top picks are ranked for the request (×"
                     f"{(ranked or 0) / FEED_CPU_TARGET_US:.2f}). Before issue 13's serving work: 5,098 µs "
                     "(every feed ranked, every read through a thread).")
    if data.get("feed_ratio") is not None:
        ratio = float(data["feed_ratio"])
        gz = data.get("feed_gzip_ratio")
        verdict = "met" if ratio >= CACHED_RATIO_TARGET else "not met"
        gz_verdict = "met" if gz is not None and float(gz) >= CACHED_RATIO_TARGET else "not met"
        lines.append(f"- Cached feed at {ratio:.3f} of the static ceiling asked without `Accept-Encoding` "
                     f"(target >= {CACHED_RATIO_TARGET}: **{verdict}**)"
                     + (f", {float(gz):.3f} asked as browsers ask, gzip accepted (**{gz_verdict}**)" if gz is not None else "")
                     + ". A hit reads the viewer's state version (the cache's validity check, ~6-9 µs of "
                     "SQLite), looks the token up among the verified ones, counts metrics and goes through the "
                     "middlewares; the static app does none of it. Its body is ~24 KB of JSON against the "
                     "static app's 2 KB: sending it was a fifth of a hit's CPU (py-spy), so a repeat is sent "
                     "in the gzip form kept with the cache entry (~3 KB, compressed once) to a client that "
                     "takes gzip. In process, through the app's middlewares without a socket, a hit costs "
                     "~29 µs (54 µs before: the deadline and the yield around the version read, the "
                     "experiment lookup's await and deadline, `labels()` per metric, `uuid4()`).")
    lines += [
        ("- Where an assembled feed's CPU went (cProfile over 300 feeds in process, before -> after): the "
        "thread hop of every store read (~45 µs of CPU each, ~5 per feed, several times the SQLite read "
        "itself: the embedded store's reads now run on the event loop, `Store.reads_block`); ~200 title-filter "
        "checks and ~140 row views per page (list rows' filtered views are now made once per ranked list and "
        "shared by every feed; each title's view once per catalog entry); the standard library's JSON "
        "encoder (msgspec now); \"because you watched\" (the seed's neighbours and counts read, "
        "content similarity over its genres' lists: now kept per seed title for `similar_ttl_s`, "
        "30 s, as \"more like this\", each viewer's filter applied after, and reused for a viewer only "
        "when made at least 10 s after that viewer's own watch of the seed; a feed that finds it "
        "costs ~0.35 ms less in process; the bench waits the kept ones out after its warm pass, so "
        "only the hits its own viewers' shared seeds give count, ~15 % here); and, in a ranked feed, ~550 item vectors read and decoded that no source "
        "used at vector weight 0 (a third of a ranked feed), then the learned ranker's features "
        "(`candidate_features`, ~0.6 ms profiled: each source's score for ~400 candidates, content similarity "
        "the largest part, now per candidate with the seed's parts worked out once)."),
        ("- Found and mended in a second profiling pass (in process, 610 feeds, py-spy and cProfile): every "
        "feed compared every entry of every ranked list by value once the lists had been read again "
        "after their 2 s TTL (`Derived` kept the first list objects: ~1,700 entry compares, ~140 µs a "
        "feed; equal newer lists are now adopted, so the compare is by pointer again); \"because you "
        "watched\" read its seed's content pool (~300 catalog entries) for every feed though only 27 % of "
        "the seeds have too few co-watch neighbours to need it (now read only then, the same ranking); "
        "a ranked feed read the watch counts of ~400 candidates and the neighbours of ~10 seeds from "
        "SQLite (an IN list of ~400 keys: ~2 ms of a 5 ms feed in process) although they are mostly "
        "the same popular titles as the feeds around it: held 5 s now (`cowatch_ttl_s`; the feed cache "
        "already lets others' co-watch be 30 s old; a title watched in the last 10 s is read afresh). "
        "In process at load 5.8: nearline ~890 -> ~770 µs, ranked ~5,100 -> ~3,000 µs."),
        ("- What is left in an assembled feed with nearline picks: aiohttp's request and response handling and "
        "the middlewares (~150-250 µs; the static app's 27 µs is the floor of that), \"because you "
        "watched\" (co-watch neighbours of one title and content similarity over its genres' lists), the "
        "user record's decode (~45 µs), the viewer's own filtering of ~7 rows. In a ranked feed, the "
        "learned ranker's features over ~400 candidates and the diversity re-rank remain, in Python."),
        ("- Under overload the full answers/s are not the CPU figure's inverse: at 1,000/s an assembled "
         "feed needs more than the one core, and under wrk's 32 connections the admission control "
         "(at most 4 feeds assembled at once, `max_feed_assemblies`) turns the rest away at once with a "
         "degraded answer (the last feed built for the viewer, else trending), which is what keeps the "
         "admitted ones inside their deadline; the degraded share is in the table."),
        ("- When the nearline picks are served: no title watched since the refresh was due and at most "
        "`picks_max_age_s` (1 h) old, no `explain`, no maturity cap (serving.feed.nearline_picks_served). "
        "A watch is ranked into the next feed at once; a like or new stated genres reach the picks with "
        "the pipelines' refresh (5 s after the last change, 60 s at most)."),
    ]
    return [*lines, ""]


def summary(store: Mapping[str, Any] | None, pipeline: Mapping[str, Any] | None) -> list[str]:
    """Where streamrec is ahead and where behind, one line per benchmark, from the figures below."""
    out = ["## In short", ""]
    stores = (store or {}).get("stores", {})
    if "skipped" not in stores.get("redis", {"skipped": 1}) and "sqlite" in stores:
        ahead = [op for op in STORE_OPS if _ops(stores, "sqlite", op) > 1.25 * _ops(stores, "redis", op) > 0]
        behind = [op for op in STORE_OPS if 0 < _ops(stores, "sqlite", op) < 0.8 * _ops(stores, "redis", op)]
        out.append(f"- Store: streamrec's embedded SQLite store is ahead of Redis (by more than 25 %) on "
                   f"{len(ahead)} of {len(STORE_OPS)} operations ({'; '.join(STORE_OPS[o] for o in ahead) or 'none'}), "
                   f"behind on {len(behind)} ({'; '.join(STORE_OPS[o] for o in behind) or 'none'}), "
                   "even on the rest.")
    if pipeline:
        engines, _ = engines_of(pipeline)
        ran = {k: e for k, e in engines.items() if e.get("events_per_s")}
        peers = [k for k in ("quixstreams", "faust") if k in ran]
        for o in (k for k in ("flink", "beam_prism") if k in ran):
            parts = []
            for p in peers:
                x = ran[o]["events_per_s"] / ran[p]["events_per_s"]
                part = (f"{'ahead of' if x > 1.25 else 'behind' if x < 0.8 else 'even with'} "
                        f"{ENGINE_LABEL[p]} in events/s (×{x:.2f})")
                co, cp = ran[o].get("cpu_s_per_1k_events"), ran[p].get("cpu_s_per_1k_events")
                if co and cp:
                    part += (f" with {'less' if co < 0.8 * cp else 'more' if co > 1.25 * cp else 'about the same'}"
                             f" CPU per event ({fmt(co, 2)} vs {fmt(cp, 2)} s per 1k)")
                parts.append(part)
            if parts:
                out.append(f"- Pipeline, {ENGINE_LABEL[o]}: " + "; ".join(parts) + ".")
    return [*out, ""] if len(out) > 2 else []


def render(results: Path) -> str:
    def read(name: str) -> dict[str, Any] | None:
        path = results / name
        return json.loads(path.read_text()) if path.exists() else None

    out = ["# Performance, side by side", "",
           ("Generated by `bench/report.py` from `bench/results/*.json` (run at the end of every "
           "`make bench-*`); do not edit by hand. The machine has 2 cores shared with other "
           "engineers' jobs, so every figure is next to a ceiling measured in the same run and the "
           "load average of that run: compare ratios, not absolute rates, between runs."), ""]
    out += [("How to run them (each installs what it needs on first use, prints its JSON, writes it to "
            "`bench/results/` and regenerates this page):"), "",
            "```",
            "make bench-store      # + Redis (Debian's redis-server, started and stopped by the bench);",
            "                      #   STREAMREC_AEROSPIKE_HOSTS=host:3000 adds Aerospike",
            "make bench-pipeline                   # Flink, then Quix Streams and Faust (make peers:",
            "                                      #   their virtualenvs in var/peers)",
            "make bench-pipeline ENGINE=beam PEERS=   # Beam on Prism (each run merges its engines)",
            "make bench-serving",
            ".venv/bin/python bench/report.py   # this page from the JSON alone",
            "```", ""]
    out += summary(read("store.json"), read("pipeline.json"))
    for name, section in (("store.json", store_section), ("pipeline.json", pipeline_section),
                          ("serving.json", serving_section)):
        data = read(name)
        if data is not None:
            out += section(data)
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "performance.md")
    args = parser.parse_args(argv)
    args.out.write_text(render(args.results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
