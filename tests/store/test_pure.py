"""Pure helpers: the codec, URL parsing, and the Aerospike operation lists and error mapping.

The operation lists are what the Aerospike backend sends to the server; checking them here is
checking our arguments to the real client's helpers, not a stand-in for the server.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import aerospike
import numpy as np
import pytest
from aerospike import exception as aerospike_errors

from streamrec.events.model import CatalogItem
from streamrec.model import (
    COWATCH_NEIGHBOURS_LIMIT,
    HistoryEntry,
    Progress,
    RankedList,
    ScoredItem,
    UserState,
)
from streamrec.store import codec, open_store
from streamrec.store.aerospike import (
    BIN_NEIGHBOURS,
    BIN_VERSION,
    cowatch_ops,
    list_ops,
    map_error,
    parse_aerospike_url,
    parse_hosts,
    result_error,
    user_ops,
)
from streamrec.store.base import RecordTooBig, StoreError, StoreUnavailable
from streamrec.store.sqlite import SqliteStore


@pytest.mark.parametrize("seen", [["a"], [f"title-{i}" for i in range(500)]], ids=["plain", "compressed"])
def test_user_codec_round_trips_small_and_compressed(seen: list[str]) -> None:
    state = UserState("u", history=[HistoryEntry("a", 5, 0.5)], in_progress={"b": Progress("b", 1.5, 9.0, 7)},
                      seen=seen, vector=np.array([1.0, -2.0], dtype=np.float32),
                      top_picks=[ScoredItem("c", 0.25)], preferred_genres=["Drama"], updated_at=9)
    blob = codec.encode_user(state)
    back = codec.decode_user("u", blob, 3)
    assert back.version == 3 and back.seen == seen and back.in_progress == state.in_progress
    assert back.vector is not None and back.vector.tolist() == [1.0, -2.0]
    if len(seen) > 1:
        assert len(blob) < len(str(seen))  # compression pays off on a full state


def _json_blob(state: UserState, compress: bool) -> bytes:
    """A user blob as the JSON format wrote it before issue 13 (tags 1 plain, 2 zlib)."""
    body = json.dumps({
        "h": [[e.video_id, e.ts, e.weight] for e in state.history],
        "p": [[p.video_id, p.position_sec, p.duration_sec, p.updated_at] for p in state.in_progress.values()],
        "s": state.seen, "d": state.disliked, "l": state.my_list,
        "t": [[s.video_id, s.score] for s in state.top_picks], "ta": state.top_picks_at,
        "g": state.preferred_genres, "e": state.recent_event_ids, "u": state.updated_at,
    }, separators=(",", ":"), ensure_ascii=False).encode()
    vector = b"" if state.vector is None else state.vector.astype("<f4").tobytes()
    length = 0xFFFFFFFF if state.vector is None else len(vector) // 4
    header = struct.pack("<BI", 2 if compress else 1, length)
    return header + vector + (zlib.compress(body, 1) if compress else body)


def _same_user(a: UserState, b: UserState) -> bool:
    fields = ("user_id", "history", "in_progress", "seen", "disliked", "my_list", "top_picks", "top_picks_at",
              "preferred_genres", "recent_event_ids", "updated_at", "version")
    vectors = (a.vector is None and b.vector is None) or (
        a.vector is not None and b.vector is not None and a.vector.tobytes() == b.vector.tobytes())
    return vectors and all(getattr(a, f) == getattr(b, f) for f in fields) and list(a.in_progress) == list(b.in_progress)


def _packed_zlib_blob(state: UserState) -> bytes:
    """A user blob as written for a day in issue 13 (tag 4: zlib over the MessagePack body)."""
    packed = codec.encode_user(state)
    assert packed[0] == 3
    head = 5 + (0 if state.vector is None else 4 * len(state.vector))
    return b"\x04" + packed[1:head] + zlib.compress(packed[head:], 1)


@pytest.mark.parametrize("compress", [False, True, None], ids=["json", "json+zlib", "msgpack+zlib"])
def test_user_records_written_in_the_json_format_are_still_read(compress: bool | None) -> None:
    state = UserState("u", history=[HistoryEntry("a", 5, 0.5), HistoryEntry("b", 3, 1.0)],
                      in_progress={"c": Progress("c", 1.5, 9.0, 7), "b": Progress("b", 2.0, 9.0, 6)},
                      seen=["a", "b", "é"], disliked=["d"], my_list=["e"], vector=np.array([1.0, -2.0], dtype=np.float32),
                      top_picks=[ScoredItem("f", 0.25)], top_picks_at=11, preferred_genres=["Drama"],
                      recent_event_ids=["e1", "e2"], updated_at=9, version=4)
    old = _packed_zlib_blob(state) if compress is None else _json_blob(state, compress)
    assert old[0] in (1, 2, 4)
    assert _same_user(codec.decode_user("u", old, 4), state)
    new = codec.encode_user(state)
    assert new[0] == 3 and new != old  # written in the packed format from now on
    assert _same_user(codec.decode_user("u", new, 4), state)


def test_user_codec_packs_a_state_at_the_bounds_compressed_and_exactly() -> None:
    ids = [f"{1_000_000 + i}" for i in range(2000)]
    state = UserState("u", history=[HistoryEntry(v, 10_000 - i, i / 7) for i, v in enumerate(ids[:200])],
                      in_progress={v: Progress(v, i + 0.5, 5400.0, 99 - i) for i, v in enumerate(ids[:50])},
                      seen=ids, disliked=ids[:500], my_list=ids[:200], vector=np.arange(64, dtype=np.float32),
                      top_picks=[ScoredItem(v, 1 / (i + 1)) for i, v in enumerate(ids[:100])],
                      recent_event_ids=[f"{i:08d}-0000-4000-8000-000000000000" for i in range(256)])
    blob = codec.encode_user(state)
    assert blob[0] == 5  # long bodies are compressed (Zstandard)
    assert _same_user(codec.decode_user("u", blob, 0), state)
    assert len(blob) <= 17_345  # docs/capacity.md: a user at the bounds (the JSON format's size)


def test_user_codec_compresses_from_any_thread() -> None:
    """zstandard's (de)compressors are per thread (they are not thread safe)."""
    from concurrent.futures import ThreadPoolExecutor

    state = UserState("u", seen=[f"title-{i}" for i in range(300)], recent_event_ids=[f"e{i}" for i in range(200)])
    with ThreadPoolExecutor(4) as pool:
        blobs = list(pool.map(lambda _: codec.encode_user(state), range(64)))
        backs = list(pool.map(lambda b: codec.decode_user("u", b, 0), blobs))
    assert all(b[0] == 5 for b in blobs) and all(_same_user(b, state) for b in backs)


def test_user_codec_keeps_none_and_empty_vectors_apart() -> None:
    assert codec.decode_user("u", codec.encode_user(UserState("u")), 1).vector is None
    empty = codec.decode_user("u", codec.encode_user(UserState("u", vector=np.zeros(0))), 1).vector
    assert empty is not None and empty.shape == (0,)


def test_user_codec_rejects_damaged_blobs() -> None:
    with pytest.raises(ValueError, match="truncated"):
        codec.decode_user("u", b"\x01", 1)
    with pytest.raises(ValueError, match="format tag"):
        codec.decode_user("u", b"\x07" + codec.encode_user(UserState("u"))[1:], 1)


def test_item_codec_round_trips() -> None:
    item = CatalogItem("v", "Title", genres=("A",), release_year=1999, regions=("FR",), extra={"x": "y"})
    assert codec.decode_item("v", codec.encode_item(item)) == item


def test_vector_codec() -> None:
    raw = codec.encode_vector([1, 2, 3])
    assert len(raw) == 12 and codec.decode_vector(raw).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="float32"):
        codec.decode_vector(b"abc")


def test_open_store_picks_the_backend_from_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_store(f"sqlite:///{tmp_path / 'abs.db'}") as store:
        assert isinstance(store, SqliteStore) and store.path == str(tmp_path / "abs.db")
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///rel/state.db?user_ttl_seconds=60") as store:
        assert isinstance(store, SqliteStore) and store.path == "rel/state.db" and store.user_ttl_ms == 60_000
    assert (tmp_path / "rel" / "state.db").exists()
    monkeypatch.setenv("STREAMREC_STORE", f"sqlite:///{tmp_path / 'env.db'}")
    with open_store(None) as store:
        assert isinstance(store, SqliteStore) and store.path == str(tmp_path / "env.db")
    with pytest.raises(ValueError, match="unknown scheme 'redis'"):
        open_store("redis://localhost")
    with pytest.raises(ValueError, match="user_ttl_seconds"):
        open_store(f"sqlite:///{tmp_path / 'x.db'}?user_ttl_seconds=soon")
    with pytest.raises(ValueError, match="no host"):
        open_store("sqlite://host/x.db")


def test_aerospike_urls_and_hosts() -> None:
    config = parse_aerospike_url("aerospike://a:3000,b:3100/prod?total_timeout_ms=50&user_ttl_seconds=7")
    assert config.hosts == (("a", 3000), ("b", 3100)) and config.namespace == "prod"
    assert config.total_timeout_ms == 50 and config.user_ttl_seconds == 7
    assert parse_aerospike_url("aerospike://h/").namespace == "streamrec"
    assert parse_hosts("h") == (("h", 3000),)
    for bad, field in [("aerospike://h:99999/ns", "hosts"), ("aerospike://h:1/ns?color=red", "color"),
                       ("aerospike://h:1/ns?total_timeout_ms=0", "total_timeout_ms"), ("aerospike:///ns", "hosts")]:
        with pytest.raises(ValueError, match=field):
            parse_aerospike_url(bad)


def test_cowatch_ops_increment_then_trim_to_the_top_k_by_rank() -> None:
    ops = cowatch_ops({"b": 2, "a": 1})
    increments, trim = ops[:-1], ops[-1]
    assert [(op["bin"], op["key"], op["val"], op["op"]) for op in increments] == [
        (BIN_NEIGHBOURS, "a", 1, aerospike.OP_MAP_INCREMENT), (BIN_NEIGHBOURS, "b", 2, aerospike.OP_MAP_INCREMENT)]
    assert all(op["map_policy"]["map_order"] == aerospike.MAP_KEY_VALUE_ORDERED for op in increments)
    assert trim["op"] == aerospike.OP_MAP_REMOVE_BY_RANK_RANGE and trim["inverted"] is True
    assert (trim["index"], trim["val"]) == (-COWATCH_NEIGHBOURS_LIMIT, COWATCH_NEIGHBOURS_LIMIT)


def test_user_ops_write_state_and_bump_version_in_one_operation() -> None:
    write, bump = user_ops(b"blob")
    assert write["op"] == aerospike.OPERATOR_WRITE and write["val"] == b"blob"
    assert (bump["op"], bump["bin"], bump["val"]) == (aerospike.OPERATOR_INCR, BIN_VERSION, 1)


def test_list_ops_leave_out_a_missing_window_end() -> None:
    assert len(list_ops(RankedList("k", [ScoredItem("a", 1)], 5))) == 2
    assert list_ops(RankedList("k", [ScoredItem("a", 1)], 5, 99))[-1]["val"] == 99


def test_aerospike_errors_map_onto_ours() -> None:
    assert isinstance(map_error(aerospike_errors.RecordTooBig(13, "too big"), "put"), RecordTooBig)
    assert isinstance(map_error(aerospike_errors.TimeoutError(9, "slow"), "get"), StoreUnavailable)
    assert isinstance(map_error(aerospike_errors.ConnectionError(-10, "down"), "get"), StoreUnavailable)
    assert type(map_error(aerospike_errors.ParamError(-2, "bad"), "get")) is StoreError
    assert result_error(0, "x") is None and result_error(2, "x") is None
    assert isinstance(result_error(13, "x"), RecordTooBig)
    assert isinstance(result_error(18, "x"), StoreUnavailable)
    assert isinstance(result_error(-10, "x"), StoreUnavailable)
    assert type(result_error(4, "x")) is StoreError and type(result_error(-2, "x")) is StoreError
