"""State store benchmark: prints one JSON object per backend (``make bench-store``).

    .venv/bin/python bench/bench_store.py [--scale 1.0] [--out bench/results/store.json]

Per backend: batched co-watch increments/s (the pipeline's hot path, trimming included),
batched neighbour reads (items/s), single-user state read latency p50/p99 (the feed's hot path)
for a typical and an at-the-bounds profile, a batch of 50 typical profiles (p50/p99, and its
thread CPU time p50), and bytes per user and per item at the bounds. Every figure comes with a
ceiling measured in the same run on the same machine (raw sqlite3 ``executemany`` of the same
rows into a bare table, a raw primary-key read with no decoding, the batch's 50 rows read raw
between its reads, a plain dict update loop) and the ratio to it. SQLite always runs (in a temporary folder);
Aerospike runs when ``STREAMREC_AEROSPIKE_HOSTS`` is set.

``stores`` (issue 18) puts the stores side by side for the same six operations of the store
contract (user write/read, co-watch increments, top-K neighbour reads, item counters): a plain
dict in this process (the ceiling: the same codec and trimming, no store), SQLite, Redis (Debian's
``redis-server`` started and stopped here, ``bench/peers/store_peers.py``; skipped with the reason
when it is not installed) and Aerospike. Each operation: ops/s, per-call p50/p99 and
``ratio_to_dict``. ``load_average`` is the machine's at the start and the end of the run.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat, starmap
from pathlib import Path
from typing import Any

import msgpack  # type: ignore[import-untyped]
import numpy as np
from peers.store_peers import timed_calls as latencies

from streamrec.events.model import CatalogItem
from streamrec.model import (
    COWATCH_NEIGHBOURS_LIMIT,
    DISLIKED_LIMIT,
    EVENT_IDS_LIMIT,
    HISTORY_LIMIT,
    IN_PROGRESS_LIMIT,
    MY_LIST_LIMIT,
    SEEN_LIMIT,
    TOP_PICKS_LIMIT,
    HistoryEntry,
    Progress,
    ScoredItem,
    UserState,
)
from streamrec.store import codec
from streamrec.store.base import Store
from streamrec.store.sqlite import SqliteStore

VECTOR_DIM = 64  # streamrec.recommend.vectors.VECTOR_DIM
CATALOG = 20_000  # distinct titles in the co-watch run
SESSION_TITLES = 8  # titles in one user's recent window -> 56 directed pairs
SESSIONS_PER_BATCH = 60  # one pipeline bundle


def video_id(i: int) -> str:
    return str(1_000_000 + i)  # 7 characters, like IMDb-style numeric ids


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_user(uid: str, rng: np.random.Generator, *, full: bool) -> UserState:
    """At the bounds (``full``) or a typical active profile."""
    n = {"h": HISTORY_LIMIT, "p": IN_PROGRESS_LIMIT, "s": SEEN_LIMIT, "d": DISLIKED_LIMIT, "l": MY_LIST_LIMIT,
         "t": TOP_PICKS_LIMIT, "e": EVENT_IDS_LIMIT} if full else {
         "h": 60, "p": 8, "s": 150, "d": 5, "l": 15, "t": TOP_PICKS_LIMIT, "e": 64}
    ids = [video_id(int(i)) for i in rng.integers(0, 1_000_000, size=max(n.values()))]
    t0 = now_ms()
    return UserState(
        user_id=uid,
        history=[HistoryEntry(ids[i], t0 - 60_000 * i, round(float(rng.random()), 3)) for i in range(n["h"])],
        in_progress={ids[i]: Progress(ids[i], float(rng.integers(0, 5000)), 5400.0, t0 - i) for i in range(n["p"])},
        seen=ids[: n["s"]],
        disliked=ids[: n["d"]],
        my_list=ids[: n["l"]],
        vector=rng.standard_normal(VECTOR_DIM).astype(np.float32),
        top_picks=[ScoredItem(ids[i], round(float(rng.random()), 4)) for i in range(n["t"])],
        top_picks_at=t0,
        preferred_genres=["Drama", "Comedy", "Thriller"],
        recent_event_ids=[str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64)) for _ in range(n["e"])],
        updated_at=t0,
    )


def make_item(i: int) -> CatalogItem:
    return CatalogItem(video_id(i), f"A Film Title Number {i}", description="", genres=("Drama", "Romance"),
                       release_year=1990 + i % 30, language="en", maturity_rating="PG-13", regions=(),
                       duration_sec=6000.0, added_at=1_700_000_000_000)


def cowatch_batches(rng: np.random.Generator, batches: int) -> list[dict[tuple[str, str], int]]:
    """Zipf-popular titles in per-user windows: every ordered pair inside a window counts once."""
    ranks = np.arange(1, CATALOG + 1)
    popularity = 1.0 / ranks**0.9
    popularity /= popularity.sum()
    out = []
    for _ in range(batches):
        batch: dict[tuple[str, str], int] = {}
        for _ in range(SESSIONS_PER_BATCH):
            titles = [video_id(int(i)) for i in rng.choice(CATALOG, size=SESSION_TITLES, replace=False, p=popularity)]
            for a in titles:
                for b in titles:
                    if a != b:
                        batch[(a, b)] = batch.get((a, b), 0) + 1
        out.append(batch)
    return out


def percentile_ms(samples: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(samples) * 1000.0, q)), 4)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio(value: float, ceiling: float) -> float:
    return round(value / ceiling, 3) if ceiling else 0.0


# -- ceilings: the same work with nothing of ours in the way ------------------------------------
def sqlite_ceilings(folder: Path, batches: list[dict[tuple[str, str], int]], blobs: dict[str, bytes],
                    read_ids: Sequence[str]) -> dict[str, float]:
    conn = sqlite3.connect(folder / "ceiling.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE pairs (a TEXT, b TEXT, n INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
    conn.execute("CREATE TABLE users (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID")
    rows = [[(a, b, n) for (a, b), n in batch.items()] for batch in batches]
    start = time.perf_counter()
    for batch_rows in rows:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO pairs VALUES (?, ?, ?) ON CONFLICT (a, b) DO UPDATE SET n = n + excluded.n",
                         batch_rows)
        conn.execute("COMMIT")
    raw_upserts = sum(map(len, rows)) / (time.perf_counter() - start)
    counts: dict[tuple[str, str], int] = {}
    start = time.perf_counter()
    for batch in batches:
        for pair, n in batch.items():
            counts[pair] = counts.get(pair, 0) + n
    dict_updates = sum(map(len, batches)) / (time.perf_counter() - start)
    conn.execute("BEGIN")
    conn.executemany("INSERT OR REPLACE INTO users VALUES (?, ?)", blobs.items())
    conn.execute("COMMIT")
    lat = latencies(lambda k: conn.execute("SELECT v FROM users WHERE k = ?", (k,)).fetchone(), read_ids)
    conn.close()
    return {"raw_sqlite_upserts_per_s": round(raw_upserts), "dict_updates_per_s": round(dict_updates),
            "raw_sqlite_pk_read_p50_ms": percentile_ms(lat, 50)}


# -- one backend ----------------------------------------------------------------------------------
def bench_store(store: Store, rng: np.random.Generator, batches: list[dict[tuple[str, str], int]],
                users: dict[str, UserState], ceilings: dict[str, float]) -> dict[str, object]:
    result: dict[str, object] = {}
    increments = sum(map(len, batches))
    seconds = sum(timed(functools.partial(store.add_cowatch, batch)) for batch in batches)
    result["cowatch_increments_per_s"] = round(increments / seconds)
    result["cowatch_batch_size"] = round(increments / len(batches))
    if "raw_sqlite_upserts_per_s" in ceilings:
        result["cowatch_ratio_to_raw_sqlite_upserts"] = ratio(increments / seconds, ceilings["raw_sqlite_upserts_per_s"])
    result["cowatch_ratio_to_dict_updates"] = ratio(increments / seconds, ceilings["dict_updates_per_s"])

    popular = [video_id(int(i)) for i in rng.zipf(1.3, size=20_000) if i <= CATALOG]
    read_batches = [popular[i : i + 50] for i in range(0, 50 * 200, 50)]
    seconds = sum(timed(functools.partial(store.get_neighbours, b, 50)) for b in read_batches)
    result["neighbour_reads_items_per_s"] = round(sum(map(len, read_batches)) / seconds)
    result["neighbour_read_batch_of_50_ms"] = round(1000 * seconds / len(read_batches), 3)

    uids = list(users)
    for start in range(0, len(uids), 500):
        store.put_users([users[u] for u in uids[start : start + 500]])
    typical = [u for u in uids if not u.startswith("full")]
    full = [u for u in uids if u.startswith("full")]
    for label, pool in (("typical", typical), ("full", full)):
        sample = [pool[int(i)] for i in rng.integers(0, len(pool), size=2000)]
        lat = latencies(lambda u: store.get_users([u]), sample)
        result[f"user_read_{label}_p50_ms"] = percentile_ms(lat, 50)
        result[f"user_read_{label}_p99_ms"] = percentile_ms(lat, 99)
    if "raw_sqlite_pk_read_p50_ms" in ceilings:
        result["user_read_typical_p50_fraction_of_raw_pk_read_speed"] = ratio(
            ceilings["raw_sqlite_pk_read_p50_ms"], float(result["user_read_typical_p50_ms"]))  # type: ignore[arg-type]
    batch_ids = typical[:50]
    raw_conn = sqlite3.connect(store.path) if isinstance(store, SqliteStore) else None
    raw_sql = f"SELECT user_id, version, state FROM users WHERE user_id IN ({', '.join('?' * len(batch_ids))})"
    lat, cpu, raw = [], [], []
    for _ in range(200):  # interleaved with its ceiling, so a burst of another process's load hits both alike
        began, cpu_began = time.perf_counter(), time.thread_time()
        states = store.get_users(batch_ids)
        lat.append(time.perf_counter() - began)
        cpu.append(time.thread_time() - cpu_began)
        del states  # after the clocks, as in timed_calls: freeing the answer is the caller's cost
        if raw_conn is not None:
            raw += latencies(lambda _: raw_conn.execute(raw_sql, batch_ids).fetchall(), range(1))
    batch_p50 = result["user_read_batch_of_50_p50_ms"] = percentile_ms(lat, 50)
    result["user_read_batch_of_50_p99_ms"] = percentile_ms(lat, 99)
    # this thread's CPU time per batch: what the wall-clock p50 is on an idle machine (the shared
    # cores' other processes stretch the wall clock, not this)
    result["user_read_batch_of_50_cpu_p50_ms"] = percentile_ms(cpu, 50)
    if raw_conn is not None:
        raw_conn.close()
        # the same 50 rows fetched raw (no decoding): the batch's ceiling, measured beside it
        raw_p50 = result["raw_sqlite_batch_of_50_read_p50_ms"] = percentile_ms(raw, 50)
        result["user_read_batch_of_50_fraction_of_raw_read_speed"] = ratio(raw_p50, batch_p50)
    return result


def decode_profile(users: Mapping[str, UserState], n: int = 500, rounds: int = 7) -> dict[str, float]:
    """Where a typical record's decode goes (issue 13): each stage of ``codec.decode_user`` timed
    alone over the same ``n`` records (µs per record, best of ``rounds``), and a batch of 50
    decoded by ``codec.decode_users`` with the garbage collector on (the batch pauses it itself)
    and off for the whole run (ms p50: what the collector still costs a batch)."""
    states = [s.bounded() for u, s in users.items() if not u.startswith("full")][:n]
    blobs = [codec.encode_user(s) for s in states]
    tails = [memoryview(b)[5 + (0 if s.vector is None else 4 * len(s.vector)):] for b, s in zip(blobs, states, strict=True)]
    packed = [t for b, t in zip(blobs, tails, strict=True) if b[0] == 5]  # the typical profile: Zstandard
    bodies = [codec._zstd_decompress(t) if b[0] == 5 else bytes(t) for b, t in zip(blobs, tails, strict=True)]
    columns = [msgpack.unpackb(b) for b in bodies]
    history, progress, picks = (sum(len(c[i]) for c in columns) / len(columns) for i in (0, 3, 10))

    def best(fn: Callable[[Any], object], items: Sequence[Any]) -> float:
        runs = []
        for _ in range(rounds):
            start = time.perf_counter()
            for item in items:
                fn(item)
            runs.append((time.perf_counter() - start) / len(items))
        return round(1e6 * min(runs), 2)

    def allocate(c: list[Any]) -> None:  # the entries' objects alone, as the decoder makes them
        for cls, count in ((HistoryEntry, len(c[0])), (Progress, len(c[3])), (ScoredItem, len(c[10]))):
            list(starmap(object.__new__, repeat((cls,), count)))

    out = {"records": len(blobs), "entries_per_record": round(history + progress + picks, 1),
           "strings_per_record": round(sum(len(c[i]) for c in columns for i in (0, 3, 7, 8, 9, 10, 13, 14)) / len(columns), 1),
           "decode_us": best(lambda b: codec.decode_user("u", b, 1), blobs),
           "zstd_us": best(codec._zstd_decompress, packed) if packed else 0.0,
           "unpack_us": best(msgpack.unpackb, bodies),
           "entries_and_state_us": best(lambda c: codec._packed_user("u", c, None, 1), columns),
           "entries_alloc_us": best(allocate, columns)}
    batch = [(f"u{i}", b, 1) for i, b in enumerate(blobs[:50])]  # as a store's batch read decodes them
    on: list[float] = []
    off: list[float] = []
    for _ in range(200):  # interleaved, so a burst of another process's load hits both alike
        on += latencies(lambda _: codec.decode_users(batch), range(1))
        gc.disable()
        try:
            off += latencies(lambda _: codec.decode_users(batch), range(1))
        finally:
            gc.enable()
    out["batch_of_50_gc_on_p50_ms"], out["batch_of_50_gc_off_p50_ms"] = percentile_ms(on, 50), percentile_ms(off, 50)
    return out


def payload_bytes(rng: np.random.Generator) -> dict[str, int]:
    """Record payloads at the bounds, independent of the backend (what the codec produces)."""
    full = codec.encode_user(make_user("full", rng, full=True).bounded())
    typical = codec.encode_user(make_user("typical", rng, full=False).bounded())
    neighbours = {video_id(i): 1000 + i for i in range(COWATCH_NEIGHBOURS_LIMIT)}
    # msgpack map entry: 1-byte str header + 7-byte id + int (3-5 bytes for counts < 2^32)
    cowatch = sum(1 + len(k) + (3 if v < 65536 else 5) for k, v in neighbours.items()) + 3 + 5
    return {"user_state_full_bytes": len(full), "user_state_typical_bytes": len(typical),
            "item_meta_bytes": len(codec.encode_item(make_item(1))), "item_vector_bytes": 4 * VECTOR_DIM,
            "cowatch_full_map_bytes_msgpack_est": cowatch}


def sqlite_disk_bytes(folder: Path, rng: np.random.Generator) -> dict[str, int]:
    """Measured on disk: a file of only full users, and one of only full co-watch items + catalog."""
    def size(path: Path) -> int:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        return int(pages * page)

    n_users, n_items = 400, 200
    with SqliteStore(folder / "users.db") as store:
        base = size(folder / "users.db")
        store.put_users([make_user(f"u{i:09d}", rng, full=True) for i in range(n_users)])
    per_user = (size(folder / "users.db") - base) / n_users
    with SqliteStore(folder / "items.db") as store:
        base = size(folder / "items.db")
        store.add_cowatch({(video_id(i), video_id(10_000 + j)): 1 + j for i in range(n_items)
                           for j in range(COWATCH_NEIGHBOURS_LIMIT)})
        store.add_item_counts({video_id(i): 5 for i in range(n_items)})
        store.upsert_items([make_item(i) for i in range(n_items)])
        store.put_item_vectors({video_id(i): rng.standard_normal(VECTOR_DIM) for i in range(n_items)})
    per_item = (size(folder / "items.db") - base) / n_items
    return {"sqlite_disk_bytes_per_full_user": round(per_user), "sqlite_disk_bytes_per_full_item": round(per_item)}


def open_aerospike(hosts: str) -> Store:
    from streamrec.store.aerospike import AerospikeConfig, AerospikeStore, parse_hosts

    return AerospikeStore(AerospikeConfig(parse_hosts(hosts), os.environ.get("STREAMREC_AEROSPIKE_NAMESPACE",
                                                                              "streamrec")))


def side_by_side(batches: list[dict[tuple[str, str], int]], users: dict[str, UserState],
                 aerospike_hosts: str | None, rounds: int = 2) -> dict[str, object]:
    """The same operations on a dict (the ceiling), SQLite, Redis and Aerospike, each from empty.

    ``rounds`` times in turn (dict, SQLite, Redis, Aerospike, dict, ...), each store fresh every
    round; per operation the round with the most ops/s is kept, so a burst of another process's
    load on the shared cores hurts one round of one store rather than the comparison."""
    from peers.store_peers import (
        DictStore,
        RedisServer,
        RedisStore,
        best_of,
        measure_operations,
        with_ratios,
    )

    from streamrec.store.sqlite import SqliteStore

    rng = np.random.default_rng(13)
    popular = [video_id(int(i)) for i in rng.zipf(1.3, size=20_000) if i <= CATALOG]
    reads = [popular[i : i + 50] for i in range(0, 50 * 200, 50)]
    runs: dict[str, list[dict[str, dict[str, object]]]] = {"dict": [], "sqlite": [], "redis": [], "aerospike": []}
    stores: dict[str, dict[str, object]] = {}
    for _ in range(rounds):
        runs["dict"].append(measure_operations(DictStore(), batches, users, reads))
        with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp, SqliteStore(Path(tmp) / "side.db") as db:
            runs["sqlite"].append(measure_operations(db, batches, users, reads))
        try:
            with RedisServer() as server:
                client = server.client()
                runs["redis"].append(measure_operations(RedisStore(client), batches, users, reads))
                server_info = {"version": server.version, "used_memory_bytes": server.used_memory(),
                               "keys": client.dbsize(), **server.config}
                client.close()
        except (FileNotFoundError, ImportError) as exc:
            stores["redis"] = {"skipped": str(exc)}
        if aerospike_hosts:
            with open_aerospike(aerospike_hosts) as store:
                runs["aerospike"].append(measure_operations(store, batches, users, reads))
        else:
            stores["aerospike"] = {"skipped": "STREAMREC_AEROSPIKE_HOSTS is not set"}
    for name, measured in runs.items():
        if measured and name not in stores:
            stores[name] = best_of(measured)  # type: ignore[assignment]
    if "skipped" not in stores.get("redis", {}):
        stores["redis"]["server"] = server_info
    with_ratios(stores)  # type: ignore[arg-type]
    return {"rounds": rounds, **stores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the amount of work (0.2 for a smoke run)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the side-by-side stores (best kept)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    batches = cowatch_batches(rng, max(5, int(120 * args.scale)))
    n_users = max(50, int(3000 * args.scale))
    users = {f"typ{i:07d}": make_user(f"typ{i:07d}", rng, full=False) for i in range(n_users)}
    users |= {f"full{i:06d}": make_user(f"full{i:06d}", rng, full=True) for i in range(max(20, n_users // 10))}
    load_at_start = list(os.getloadavg())
    report: dict[str, object] = {"ran_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "scale": args.scale,
                                 "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                             "sqlite": sqlite3.sqlite_version}, "bytes": payload_bytes(rng),
                                 "decode_profile": decode_profile(users)}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        folder = Path(tmp)
        blobs = {u: codec.encode_user(s.bounded()) for u, s in users.items()}
        typical_ids = [u for u in users if u.startswith("typ")]
        ceilings = sqlite_ceilings(folder, batches, blobs, typical_ids[:2000])
        report["ceilings"] = ceilings
        with SqliteStore(folder / "bench.db") as store:
            report["sqlite"] = bench_store(store, np.random.default_rng(11), batches, users, ceilings)
        report["sqlite"] |= sqlite_disk_bytes(folder, rng)  # type: ignore[operator]
    hosts = os.environ.get("STREAMREC_AEROSPIKE_HOSTS")
    if hosts:
        with open_aerospike(hosts) as store:
            report["aerospike"] = bench_store(store, np.random.default_rng(11), batches, users, ceilings)
    else:
        report["aerospike"] = {"skipped": "STREAMREC_AEROSPIKE_HOSTS is not set"}
    report["stores"] = side_by_side(batches, users, hosts, rounds=args.rounds)
    report["load_average"] = {"start": load_at_start, "end": list(os.getloadavg())}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
