"""The store's section of docs/performance.md, from bench/results/store.json (`bench/report.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from report_common import (
    STORE_LABEL,
    STORE_OPS,
    STORE_ORDER,
    WHY_REDIS_AHEAD,
    WHY_SQLITE_AHEAD,
    fmt,
    load_text,
)


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
                   f"{fmt(d50.get('p50_ms', 0), 2)} ms). A call's time ends when its answer is returned: "
                   "freeing the answer is its caller's cost, once done with it (`timed_calls`). Until "
                   "2026-12-01 the answer was freed inside the timed call; the same code measured that way "
                   "gave 2.12-2.13 ms for the batch (×1.06 of the target) and 44-45 µs for one read, against "
                   "1.83-1.91 ms and 39-40 µs the new way, in the same half hour. What is left is the decode"
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
