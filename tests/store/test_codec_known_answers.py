"""Known answers for the user record codec: fixed bytes of every format it reads (issue 13).

The blobs below were written by the encoders of their time (tags 1 and 2: the JSON format before
issue 13; 3: MessagePack columns; 4: zlib over them, written for a day; 5: Zstandard over them, the
format written now for bodies over ``COMPRESS_OVER_BYTES``). Decoding must keep giving exactly
these states, whatever the decoder's implementation, and the SQLite read paths (one user, a batch)
must give the same states.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import numpy as np
import pytest

from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState
from streamrec.store import codec
from streamrec.store.sqlite import SqliteStore

STATE = UserState(
    "u",
    history=[HistoryEntry("tt0111161", 1_700_000_060_000, 0.5), HistoryEntry("tt0068646", 1_700_000_000_000, 1.0)],
    in_progress={"tt0468569": Progress("tt0468569", 1234.5, 9120.0, 1_700_000_050_000),
                 "tt0071562": Progress("tt0071562", 60.0, 12120.0, 1_700_000_040_000)},
    seen=["tt0111161", "tt0068646", "é"], disliked=["tt0050083"], my_list=["tt0108052"],
    vector=np.array([0.5, -1.25, 3.0], dtype=np.float32),
    top_picks=[ScoredItem("tt0167260", 0.875), ScoredItem("tt0110912", 0.25)], top_picks_at=1_700_000_070_000,
    preferred_genres=["Drama", "Crime"], recent_event_ids=["e1", "e2"], updated_at=1_700_000_060_000, version=7)
LONG = dataclasses.replace(
    STATE, seen=[f"tt{1_000_000 + i:07d}" for i in range(80)], disliked=[], my_list=[], vector=None,
    top_picks_at=0, preferred_genres=[], recent_event_ids=[f"{i:08d}-0000-4000-8000-000000000000" for i in range(8)],
    updated_at=5)

KNOWN = {
    1: (STATE, bytes.fromhex(
    "01030000000000003f0000a0bf000040407b2268223a5b5b22747430313131313631222c313730303030303036303030"
    "302c302e355d2c5b22747430303638363436222c313730303030303030303030302c312e305d5d2c2270223a5b5b2274"
    "7430343638353639222c313233342e352c393132302e302c313730303030303035303030305d2c5b2274743030373135"
    "3632222c36302e302c31323132302e302c313730303030303034303030305d5d2c2273223a5b22747430313131313631"
    "222c22747430303638363436222c22c3a9225d2c2264223a5b22747430303530303833225d2c226c223a5b2274743031"
    "3038303532225d2c2274223a5b5b22747430313637323630222c302e3837355d2c5b22747430313130393132222c302e"
    "32355d5d2c227461223a313730303030303037303030302c2267223a5b224472616d61222c224372696d65225d2c2265"
    "223a5b226531222c226532225d2c2275223a313730303030303036303030307d"
    )),
    2: (STATE, bytes.fromhex(
    "02030000000000003f0000a0bf0000404078015590c10ac2300c86df25e73092daa6ddaefa1663878145050732e7497c"
    "209fc3173329d6690fa5fcf9f3f54fee7084aeef615988f5080372a472c46ea4260c58ea2449bcacf562426e6818102e"
    "95e2250569d5e536be09d8b2a386becc604d9517398803946270ff465f8c0abe2af8379dbd6b12783d412dfb8f85949e"
    "36a69c6b13250ace94a5e663894e0874ae14eb64cca4394d73c1865946e8ea16ca32100e46dccde33402c2763e4dd9a8"
    "d9d4ac3b835c7eb9ad7d657b8f37d9955119"
    )),
    3: (STATE, bytes.fromhex(
    "03030000000000003f0000a0bf00004040dc001092a9747430313131313631a974743030363836343692cf0000018bcf"
    "e65260cf0000018bcfe5680092cb3fe0000000000000cb3ff000000000000092a9747430343638353639a97474303037"
    "3135363292cb40934a0000000000cb404e00000000000092cb40c1d00000000000cb40c7ac000000000092cf0000018b"
    "cfe62b50cf0000018bcfe6044093a9747430313131313631a9747430303638363436a2c3a991a9747430303530303833"
    "91a974743031303830353292a9747430313637323630a974743031313039313292cb3fec000000000000cb3fd0000000"
    "000000cf0000018bcfe6797092a54472616d61a54372696d6592a26531a26532cf0000018bcfe65260"
    )),
    4: (STATE, bytes.fromhex(
    "04030000000000003f0000a0bf000040407801bbc32030696549898121109819825806661666266693ce333030769f7f"
    "169400613ccd609874dafe0103189cb6ff006180b59a9859989a5982b59a1b9a9a194d3aed30d90ba2cec10faaeeb4c3"
    "c10b50a1e36bc00c9805da01509b581c266373c8a2c32b2782cd363530b03006330d0d2c0c4c8d20ce363337323380e8"
    "33b03404da6dff0662e5697b88850c50e32b0b262d75294acc4d5cea5c94999b3a6951aae1a25423b82f01389a5603"
    )),
    5: (LONG, bytes.fromhex(
    "05ffffffff28b52ffd600d04750800c20d2b279029e9f085371e9cc2b3cf7e0bdfc5367f5f4eb7b6bf69a228085b4a29"
    "e5962e19ed7e9c0d2b0302bc9a06dfc8dd2582dc1d414483628dc42892a5f0e7fe5be4bda29ce6d534f8e3d3bc9a067f"
    "7b9a57d3e04f4ff36a1afce5695e4d833f739a57d3e00f4ff36a1afcfd34afa6c1df535a16e640018b8287728040abf1"
    "8096b203b40c18d052b87a3eabbd6915c9328964295398484078301600cc186a737bef525abeff7f292d6ac01c016ba8"
    "31b836d3a4d07e06a08326ad011260e03084e59eff559e07c8d579ae0742da0dfa0208951cfaa68f7a942a056f97cf9a"
    "2b09d79860240c571968840c672ab09068d0f6952f7e5a6e13601ac95ae6ec4f917e89f7bf0af57c5062d75601"
    )),
}


def assert_exactly(got: UserState, want: UserState, version: int) -> None:
    for f in dataclasses.fields(UserState):
        if f.name == "vector":
            continue
        assert getattr(got, f.name) == (version if f.name == "version" else getattr(want, f.name)), f.name
    assert list(got.in_progress) == list(want.in_progress)  # the order is kept too
    if want.vector is None:
        assert got.vector is None
    else:
        assert got.vector is not None and got.vector.dtype == np.float32 and got.vector.flags.writeable
        assert got.vector.tobytes() == want.vector.tobytes()
    entries = [*got.history, *got.in_progress.values(), *got.top_picks]
    assert {type(e) for e in entries} <= {HistoryEntry, Progress, ScoredItem}
    for entry in entries:  # real frozen instances: equal and hashing like ones built by __init__
        rebuilt = type(entry)(*(getattr(entry, f.name) for f in dataclasses.fields(entry)))
        assert entry == rebuilt and hash(entry) == hash(rebuilt) and repr(entry) == repr(rebuilt)
        with pytest.raises(dataclasses.FrozenInstanceError):
            entry.video_id = "x"  # type: ignore[misc]


@pytest.mark.parametrize("tag", sorted(KNOWN))
def test_every_record_format_decodes_to_its_known_state(tag: int) -> None:
    want, blob = KNOWN[tag]
    assert blob[0] == tag
    assert_exactly(codec.decode_user("u", blob, 9), want, 9)


def test_the_current_encoder_still_writes_the_known_bytes() -> None:
    # Same input, same bytes: the format written now is tags 3 and 5, unchanged.
    assert codec.encode_user(STATE) == KNOWN[3][1]
    assert codec.encode_user(LONG) == KNOWN[5][1]


def test_the_decoder_sets_every_field_of_the_entry_types() -> None:
    # decode_user builds entries field by field (no __init__): a new field needs its column there.
    assert [f.name for f in dataclasses.fields(HistoryEntry)] == ["video_id", "ts", "weight"]
    assert [f.name for f in dataclasses.fields(Progress)] == ["video_id", "position_sec", "duration_sec", "updated_at"]
    assert [f.name for f in dataclasses.fields(ScoredItem)] == ["video_id", "score"]
    assert not any(hasattr(t, "__post_init__") for t in (HistoryEntry, Progress, ScoredItem))


def test_damaged_packed_records_are_refused() -> None:
    blob = KNOWN[3][1]
    head = 5 + 4 * 3
    columns = msgpack.unpackb(blob[head:])
    columns[1] = columns[1][:1]  # one history time missing
    with pytest.raises(ValueError, match="columns of different lengths"):
        codec.decode_user("u", blob[:head] + msgpack.packb(columns), 1)
    with pytest.raises(ValueError, match="truncated"):
        codec.decode_user("u", blob[:9], 1)  # the header says 3 floats, 1 is there


def test_sqlite_reads_one_user_as_a_batch_does(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as store:
        store.put_users([STATE, dataclasses.replace(LONG, user_id="v")])
        one, batch = store.get_users(["u"]), store.get_users(["u", "v", "nobody"])
        assert list(one) == ["u"] and sorted(batch) == ["u", "v"]
        assert_exactly(one["u"], STATE, batch["u"].version)
        assert_exactly(store.get_users(("v",))["v"], dataclasses.replace(LONG, user_id="v"), batch["v"].version)
        assert store.get_users({"nobody"}) == {} and store.get_users([]) == {}
        assert store.get_user_versions(["u"]) == {"u": batch["u"].version}


def test_sqlite_memory_mapped_reads_see_other_connections_writes(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "s.db") as reader, SqliteStore(tmp_path / "s.db") as writer:
        writer.put_users([STATE])
        first = reader.get_user("u")
        assert first is not None
        assert reader._conn().execute("PRAGMA mmap_size").fetchone()[0] == SqliteStore.READ_MMAP_BYTES
        writer.put_users([dataclasses.replace(STATE, seen=["new"])] + [UserState(f"x{i}") for i in range(300)])
        again = reader.get_user("u")
        assert again is not None and again.seen == ["new"] and again.version == first.version + 1
        assert reader.get_user_versions(["u", "x7"]) == {"u": first.version + 1, "x7": 1}


def test_sqlite_one_user_reads_map_errors_as_batches_do(tmp_path: Path) -> None:
    from streamrec.store.base import StoreError

    with SqliteStore(tmp_path / "s.db") as store:
        store.put_users([STATE])
        assert store.get_user_versions(["u"]) == {"u": 1} and store.get_user_versions(["nobody"]) == {}
        other = sqlite3.connect(tmp_path / "s.db")
        other.execute("DROP TABLE users")
        other.close()
        for read in (store.get_users, store.get_user_versions):
            for ids in (["u"], ["u", "v"]):
                with pytest.raises(StoreError, match="no such table: users"):
                    read(ids)


def test_ranked_lists_decode_to_the_reference_values_and_types() -> None:
    """``decode_scored`` (msgspec's reader, entries built in C loops) gives what the readable
    ``[ScoredItem(v, s) for v, s in json.loads(raw)]`` gives: the same ids, the same floats bit for
    bit, ints kept ints; a damaged entry is refused."""
    import json
    import random

    rng = random.Random(13)
    scores: list[float | int] = [0.0, -0.0, 1, 7, -3, 1e-308, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, 2 ** 53 + 1]
    scores += [rng.uniform(-1e6, 1e6) for _ in range(2000)] + [rng.random() for _ in range(2000)]
    scores += [float.fromhex(f"0x1.{rng.getrandbits(52):013x}p{rng.randint(-1000, 1000)}") for _ in range(2000)]
    ids = [f"tt{i:07d}" if i % 3 else "é→" + str(i) for i in range(len(scores))]
    for raw in (codec.encode_scored([ScoredItem(v, s) for v, s in zip(ids, scores, strict=True)]), b"[]",
                json.dumps([["a", 1], ["b", 2.5], ["c", 10 ** 30]]).encode()):
        reference = [ScoredItem(v, s) for v, s in json.loads(raw)]
        decoded = codec.decode_scored(raw)
        assert decoded == reference
        assert [(type(d.score), repr(d.score)) for d in decoded] == [(type(r.score), repr(r.score)) for r in reference]
    for damaged in (b'[["a", 1], ["b", 2, 3]]', b'[["a", 1], ["b"]]', b'[["a", 1, 2]]', b"[1"):
        with pytest.raises((ValueError, TypeError)):
            codec.decode_scored(damaged)
