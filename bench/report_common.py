"""What every section of docs/performance.md shares: labels, number formatting, the load average (`bench/report.py`)."""

from __future__ import annotations

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
