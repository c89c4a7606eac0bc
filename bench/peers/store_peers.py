"""Store peers for ``bench/bench_store.py``: a plain dict (the ceiling) and Redis, beside our stores.

Every store is driven through the same six calls of the store contract (``streamrec.store.base``):
``put_users``, ``get_users``, ``add_cowatch``, ``get_neighbours``, ``add_item_counts``,
``get_item_counts``, with the same bytes (``streamrec.store.codec``) and the same semantics:

- users: the codec's record (``encode_user`` of the bounded state) and a version bumped per write;
  Redis keeps both in one hash per user (``HSET`` + ``HINCRBY`` + ``EXPIRE`` to the user TTL),
  read back with ``HMGET``.
- co-watch: per title the neighbours' counts, trimmed to the top ``COWATCH_NEIGHBOURS_LIMIT``
  after each batch; Redis: a sorted set per title, ``ZINCRBY`` per pair then one
  ``ZREMRANGEBYRANK key 0 -(K+1)`` per touched title (ties at the cut: the larger id stays, as in
  the contract); top-k reads with ``ZREVRANGE .. WITHSCORES``.
- item counters: ``INCRBY`` per title, read with ``MGET``.

Redis calls go through one non-transactional pipeline per batch (one round trip), with hiredis
parsing, which is what a competent Redis user would write. The server is Debian's ``redis-server``
started on a free loopback port with a private folder (AOF on, ``appendfsync everysec``: about
the durability of SQLite's WAL with ``synchronous=NORMAL``), and stopped by the bench.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np

from streamrec.model import COWATCH_NEIGHBOURS_LIMIT, UserState
from streamrec.store import codec
from streamrec.store.base import USER_TTL_SECONDS

K = COWATCH_NEIGHBOURS_LIMIT


class ContractSubset(Protocol):
    """The calls of ``streamrec.store.base.Store`` this bench compares."""

    def put_users(self, users: Iterable[UserState]) -> None: ...
    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]: ...
    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None: ...
    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]: ...
    def add_item_counts(self, increments: Mapping[str, int]) -> None: ...
    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]: ...


def _rank(kv: tuple[str, int]) -> tuple[int, str]:
    """The contract's read order: count descending, ties by id."""
    return -kv[1], kv[0]


def _cut(ranked: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The top K of a ranked row; among neighbours tied at the cut, the larger ids stay."""
    if len(ranked) <= K:
        return ranked
    edge = ranked[K - 1][1]
    above = [kv for kv in ranked if kv[1] > edge]
    tied = sorted((kv for kv in ranked if kv[1] == edge), key=lambda kv: kv[0], reverse=True)
    return above + sorted(tied[: K - len(above)], key=_rank)


class DictStore:
    """The ceiling: the same calls, codec and trimming on plain Python dicts in this process."""

    name = "dict"

    def __init__(self) -> None:
        self.users: dict[str, tuple[int, bytes]] = {}
        self.cowatch: dict[str, dict[str, int]] = {}
        self.counts: dict[str, int] = {}

    def put_users(self, users: Iterable[UserState]) -> None:
        for state in users:
            old = self.users.get(state.user_id)
            self.users[state.user_id] = ((old[0] if old else 0) + 1, codec.encode_user(state.bounded()))

    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        found = [(uid, hit) for uid in user_ids if (hit := self.users.get(uid)) is not None]
        return codec.decode_users((uid, blob, version) for uid, (version, blob) in found)

    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        touched = set()
        for (item, neighbour), n in increments.items():
            row = self.cowatch.setdefault(item, {})
            row[neighbour] = row.get(neighbour, 0) + int(n)
            touched.add(item)
        for item in touched:  # kept ranked (count desc, id) and cut to K, as the stores index them
            ranked = sorted(self.cowatch[item].items(), key=_rank)
            self.cowatch[item] = dict(_cut(ranked))

    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        return {v: list(islice(self.cowatch[v].items(), k)) for v in dict.fromkeys(video_ids) if self.cowatch.get(v)}

    def add_item_counts(self, increments: Mapping[str, int]) -> None:
        for video_id, n in increments.items():
            self.counts[video_id] = self.counts.get(video_id, 0) + int(n)

    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        return {v: self.counts[v] for v in video_ids if v in self.counts}

    def close(self) -> None:
        pass


class RedisStore:
    """The same calls on Redis, one pipelined round trip per batch."""

    name = "redis"

    def __init__(self, client: Any) -> None:
        self.r = client

    def put_users(self, users: Iterable[UserState]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for state in users:
            key = f"u:{state.user_id}"
            pipe.hset(key, "s", codec.encode_user(state.bounded()))
            pipe.hincrby(key, "v", 1)
            pipe.expire(key, USER_TTL_SECONDS)
        pipe.execute()

    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        if len(user_ids) == 1:  # one call, no pipeline object: the feed's single read
            rows = [self.r.hmget(f"u:{user_ids[0]}", "s", "v")]
        else:
            pipe = self.r.pipeline(transaction=False)
            for uid in user_ids:
                pipe.hmget(f"u:{uid}", "s", "v")
            rows = pipe.execute()
        return codec.decode_users((uid, blob, int(version))  # as the store backends decode a batch
                                  for uid, (blob, version) in zip(user_ids, rows, strict=True) if blob is not None)

    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        pipe = self.r.pipeline(transaction=False)
        touched = set()
        for (item, neighbour), n in increments.items():
            pipe.zincrby(f"cw:{item}", int(n), neighbour)
            touched.add(item)
        for item in touched:  # lowest ranks go; equal scores rank by member, so the larger id stays
            pipe.zremrangebyrank(f"cw:{item}", 0, -(K + 1))
        pipe.execute()

    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        unique = list(dict.fromkeys(video_ids))
        pipe = self.r.pipeline(transaction=False)
        for item in unique:
            pipe.zrevrange(f"cw:{item}", 0, k - 1, withscores=True)
        return {item: [(m.decode(), int(s)) for m, s in rows]
                for item, rows in zip(unique, pipe.execute(), strict=True) if rows}

    def add_item_counts(self, increments: Mapping[str, int]) -> None:
        pipe = self.r.pipeline(transaction=False)
        for video_id, n in increments.items():
            pipe.incrby(f"n:{video_id}", int(n))
        pipe.execute()

    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        values = self.r.mget([f"n:{v}" for v in video_ids])
        return {v: int(n) for v, n in zip(video_ids, values, strict=True) if n is not None}

    def close(self) -> None:
        self.r.close()


class RedisServer:
    """Debian's ``redis-server`` on a free loopback port with a private folder; stopped on exit."""

    def __init__(self, binary: str = "redis-server") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError(f"{binary} not found (make bench-store installs Debian's redis-server)")
        self.binary = path
        self.folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.config = {"appendonly": "yes", "appendfsync": "everysec", "save": "", "io-threads": "1"}

    def __enter__(self) -> Self:
        import redis

        from streamrec_cli.localkafka import free_port

        self.port = free_port()
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--daemonize", "no", "--logfile", str(self.folder / "redis.log")]
        for key, value in self.config.items():
            args += [f"--{key}", value]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-800:]}")
                time.sleep(0.05)
        self.version = client.info("server")["redis_version"]
        client.close()
        return self

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def used_memory(self) -> int:
        client = self.client()
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: redis flushes the AOF and exits
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the side-by-side measurement ------------------------------------------------------------------
def _stats(unit: str, batch: float, items: int, seconds: list[float]) -> dict[str, object]:
    lat = np.asarray(seconds) * 1000.0
    return {"unit": unit, "batch": round(batch, 1), "ops_per_s": round(items / sum(seconds)),
            "p50_ms": round(float(np.percentile(lat, 50)), 4), "p99_ms": round(float(np.percentile(lat, 99)), 4),
            "calls": len(seconds)}


def timed_calls(fn: Callable[[Any], object], args: Iterable[Any]) -> list[float]:
    """Each call's wall time. Its answer is let go only after the clock is read: freeing what a
    read returned (a batch of 50 profiles is ~42,000 objects, ~0.3 ms) is its caller's cost, once
    done with it, not the read's; timed as ``fn(arg)`` alone, the answer was freed inside."""
    out = []
    for arg in args:
        start = time.perf_counter()
        answer = fn(arg)
        out.append(time.perf_counter() - start)
        del answer
    return out


def measure_operations(store: ContractSubset, batches: Sequence[Mapping[tuple[str, str], int]],
                       users: Mapping[str, UserState], reads: Sequence[Sequence[str]],
                       seed: int = 11) -> dict[str, dict[str, object]]:
    """ops/s and per-call latency p50/p99 of each operation, on one empty store.

    Call shapes (the pipeline's and the feed's): users written 100 per call; a user read alone and
    50 per call; co-watch increments one pipeline bundle (~3.3k pairs) per call; neighbour reads 50
    titles x top-50 per call; item counters one bundle's titles per call, read 50 per call.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, object]] = {}
    uids = list(users)
    chunks = [[users[u] for u in uids[i : i + 100]] for i in range(0, len(uids), 100)]
    out["user_write"] = _stats("users", 100, len(uids), timed_calls(store.put_users, chunks))
    typical = [u for u in uids if not u.startswith("full")]
    sample = [[typical[int(i)]] for i in rng.integers(0, len(typical), size=min(2000, 4 * len(typical)))]
    out["user_read"] = _stats("users", 1, len(sample), timed_calls(store.get_users, sample))
    batch_reads = [[typical[int(i)] for i in rng.integers(0, len(typical), size=50)] for _ in range(100)]
    out["user_read_batch"] = _stats("users", 50, 50 * len(batch_reads), timed_calls(store.get_users, batch_reads))

    increments = sum(map(len, batches))
    out["cowatch_increment"] = _stats("pair increments", increments / len(batches), increments,
                                      timed_calls(store.add_cowatch, batches))
    out["neighbour_read"] = _stats("titles (top-50)", 50, sum(map(len, reads)),
                                   timed_calls(lambda b: store.get_neighbours(b, 50), reads))
    count_batches = [{a: n for (a, _), n in batch.items()} for batch in batches]
    n_counts = sum(map(len, count_batches))
    out["item_count_increment"] = _stats("counter increments", n_counts / len(count_batches), n_counts,
                                         timed_calls(store.add_item_counts, count_batches))
    out["item_count_read"] = _stats("counters", 50, sum(map(len, reads)), timed_calls(store.get_item_counts, reads))
    return out


def best_of(runs: Sequence[dict[str, dict[str, object]]]) -> dict[str, dict[str, object]]:
    """Per operation, the run with the most ops/s (the least disturbed by the machine's other load)."""
    return {op: max((run[op] for run in runs), key=lambda f: float(f["ops_per_s"]))  # type: ignore[arg-type]
            for op in runs[0]}


def with_ratios(stores: dict[str, dict[str, dict[str, object]]], ceiling: str = "dict") -> None:
    """Adds ``ratio_to_dict`` (ops/s over the dict's, same operation, same run) in place."""
    base = stores.get(ceiling, {})
    for ops in stores.values():
        for op, figures in ops.items():
            if "ops_per_s" in figures and op in base:
                figures["ratio_to_dict"] = round(float(figures["ops_per_s"]) / float(base[op]["ops_per_s"]), 4)  # type: ignore[arg-type]
