"""The user record decoder against a readable reference, on states built from the real logs, and
the batch decode's garbage-collector pause (issue 13).

The states are ml-latest-small viewers replayed through the state rules (history, continue
watching, seen, dislikes, 256 event ids), with a vector and top picks (titles the viewer never
rated, scored by how often they were rated) so that every column of the record is filled.
"""

from __future__ import annotations

import dataclasses
import gc
import struct
import threading
from collections import Counter, defaultdict
from pathlib import Path

import msgpack  # type: ignore[import-untyped]
import numpy as np
import pytest
import zstandard

from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState
from streamrec.ratings import Rating, history_events, load_ratings
from streamrec.recommend.state import apply_events
from streamrec.store import codec


def reference_decode(user_id: str, blob: bytes, version: int) -> UserState:
    """The readable decoder of the MessagePack record (tags 3 and 5): the oracle."""
    tag, length = struct.unpack_from("<BI", blob)
    vector = None
    offset = 5
    if length != 0xFFFFFFFF:
        vector = np.frombuffer(blob[offset : offset + 4 * length], dtype="<f4").astype(np.float32)
        offset += 4 * length
    body = blob[offset:]
    if tag == 5:
        body = zstandard.ZstdDecompressor().decompress(body)
    (h_ids, h_ts, h_weights, p_ids, p_positions, p_durations, p_updated, seen, disliked, my_list,
     t_ids, t_scores, top_picks_at, genres, event_ids, updated_at) = msgpack.unpackb(body)
    progress = [Progress(*fields) for fields in zip(p_ids, p_positions, p_durations, p_updated, strict=True)]
    return UserState(
        user_id=user_id,
        history=[HistoryEntry(*fields) for fields in zip(h_ids, h_ts, h_weights, strict=True)],
        in_progress={p.video_id: p for p in progress},
        seen=seen, disliked=disliked, my_list=my_list, vector=vector,
        top_picks=[ScoredItem(*fields) for fields in zip(t_ids, t_scores, strict=True)],
        top_picks_at=top_picks_at, preferred_genres=genres, recent_event_ids=event_ids,
        updated_at=updated_at, version=version)


def same(got: UserState, want: UserState) -> bool:
    def fields(s: UserState) -> tuple[object, ...]:
        return dataclasses.astuple(dataclasses.replace(s, vector=None)) + (list(s.in_progress),)

    vectors_equal = (got.vector is None) == (want.vector is None) and (
        got.vector is None or got.vector.tobytes() == want.vector.tobytes())  # type: ignore[union-attr]
    return fields(got) == fields(want) and vectors_equal


@pytest.fixture(scope="module")
def real_states(movielens_dir: Path) -> list[UserState]:
    ratings = load_ratings(movielens_dir)
    by_user: dict[str, list[Rating]] = defaultdict(list)
    for rating in ratings:
        by_user[rating.user_id].append(rating)
    popularity = Counter(r.video_id for r in ratings)
    most = popularity.most_common(1)[0][1]
    rng = np.random.default_rng(13)
    states = []
    for user_id in sorted(by_user, key=int)[:40]:
        mine = sorted(by_user[user_id], key=lambda r: r.timestamp)
        state = apply_events(UserState(user_id), history_events(mine)).state
        rated = {r.video_id for r in mine}
        state.top_picks = [ScoredItem(v, n / most) for v, n in popularity.most_common(300) if v not in rated][:100]
        state.top_picks_at, state.my_list = state.updated_at, [r.video_id for r in mine[-15:]]
        state.vector = rng.standard_normal(64).astype(np.float32)
        states.append(state.bounded())
    assert any(s.in_progress for s in states) and any(s.disliked for s in states)
    return states


def test_the_decoder_gives_the_reference_states_on_real_records(real_states: list[UserState]) -> None:
    rows = [(s.user_id, codec.encode_user(s), i) for i, s in enumerate(real_states)]
    assert {blob[0] for _, blob, _ in rows} == {5}  # real profiles are long: compressed
    batch = codec.decode_users(rows)
    assert list(batch) == [s.user_id for s in real_states]
    for (user_id, blob, version), state in zip(rows, real_states, strict=True):
        want = reference_decode(user_id, blob, version)
        assert same(want, dataclasses.replace(state, version=version))
        assert same(codec.decode_user(user_id, blob, version), want)
        assert same(batch[user_id], want)


def test_a_batch_decode_pauses_the_collector_and_restores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = codec.encode_user(UserState("u", seen=["a"]))
    seen_enabled: list[bool] = []
    decode = codec.decode_user

    def spy(user_id: str, raw: bytes, version: int) -> UserState:
        seen_enabled.append(gc.isenabled())
        return decode(user_id, raw, version)

    monkeypatch.setattr(codec, "decode_user", spy)
    assert gc.isenabled()
    assert list(codec.decode_users([("a", blob, 1), ("b", blob, 2)])) == ["a", "b"]
    assert seen_enabled == [False, False] and gc.isenabled()
    with pytest.raises(ValueError, match="truncated"):
        codec.decode_users([("a", blob, 1), ("b", b"\x05", 1)])
    assert gc.isenabled()  # back on after a damaged record too
    gc.disable()
    try:
        codec.decode_users([("a", blob, 1)])
        assert not gc.isenabled()  # a collector turned off by the application stays off
    finally:
        gc.enable()


def test_threads_share_one_pause() -> None:
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with codec._gc_paused:
            inside.set()
            leave.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    try:
        assert inside.wait(10)
        with codec._gc_paused:
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other thread is still decoding
    finally:
        leave.set()
        other.join(10)
    assert gc.isenabled()
