"""Conformance: user state (round trip, batching, bounds, version bump, TTL, size bound)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from streamrec.model import (
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
from streamrec.store.base import RecordTooBig, Store
from tests.fixtures.store import StoreFactory


def full_state(user_id: str) -> UserState:
    return UserState(
        user_id=user_id,
        history=[HistoryEntry("v2", 2000, 1.0), HistoryEntry("v1", 1000, 0.25)],
        in_progress={"v3": Progress("v3", 120.5, 5400.0, 1500)},
        seen=["v1", "v0"],
        disliked=["v9"],
        my_list=["v7", "v8"],
        vector=np.array([0.5, -1.25, 3.0], dtype=np.float32),
        top_picks=[ScoredItem("v5", 0.9), ScoredItem("v6", 0.4)],
        top_picks_at=1700,
        preferred_genres=["Drama", "Comédie"],
        recent_event_ids=["e1", "e2"],
        updated_at=2000,
    )


def assert_same_state(got: UserState, want: UserState) -> None:
    assert got.user_id == want.user_id
    for name in ("history", "in_progress", "seen", "disliked", "my_list", "top_picks", "top_picks_at",
                 "preferred_genres", "recent_event_ids", "updated_at"):
        assert getattr(got, name) == getattr(want, name), name
    if want.vector is None:
        assert got.vector is None
    else:
        assert got.vector is not None and got.vector.dtype == np.float32
        np.testing.assert_array_equal(got.vector, want.vector)


def test_user_state_round_trips_every_field(store: Store, key: Callable[[str], str]) -> None:
    want = full_state(key("u1"))
    store.put_users([want])
    got = store.get_users([want.user_id, key("nobody")])
    assert list(got) == [want.user_id]  # unknown users are absent, not None
    assert_same_state(got[want.user_id], want)
    assert store.get_user(key("nobody")) is None


def test_user_without_vector_reads_back_without_one(store: Store, key: Callable[[str], str]) -> None:
    store.put_users([UserState(key("u"), seen=["a"])])
    got = store.get_user(key("u"))
    assert got is not None and got.vector is None and got.seen == ["a"]


def test_many_users_in_one_call(store: Store, key: Callable[[str], str]) -> None:
    ids = [key(f"u{i}") for i in range(1200)]  # more than one IN-list chunk / batch
    store.put_users([UserState(uid, seen=[f"v{i}"]) for i, uid in enumerate(ids)])
    got = store.get_users(ids[::-1] + ids[:3])  # order and duplicates do not matter
    assert len(got) == len(ids)
    assert all(got[uid].seen == [f"v{i}"] for i, uid in enumerate(ids))


def test_version_bumps_on_every_put_and_ignores_the_callers_version(store: Store, key: Callable[[str], str]) -> None:
    uid = key("u")
    store.put_users([UserState(uid, version=99)])
    first = store.get_user(uid)
    assert first is not None
    store.put_users([UserState(uid, seen=["x"], version=0)])
    store.put_users([UserState(uid, seen=["y"], version=0)])
    third = store.get_user(uid)
    assert third is not None and third.seen == ["y"]
    assert third.version == first.version + 2
    other = key("other")
    store.put_users([UserState(other)])
    again = store.get_user(uid)
    assert again is not None and again.version == third.version  # others' writes do not bump it


def test_version_only_reads_agree_with_the_states(store: Store, key: Callable[[str], str]) -> None:
    ids = [key("a"), key("b")]
    store.put_users([UserState(ids[0])])
    before = store.get_user_versions([ids[0]])[ids[0]]
    store.put_users([UserState(ids[0], seen=["x"]), UserState(ids[1])])
    versions = store.get_user_versions(ids + [key("nobody")])
    states = store.get_users(ids)
    assert versions == {uid: states[uid].version for uid in ids}  # unknown users are absent
    assert versions[ids[0]] == before + 1


def test_user_state_is_cut_to_the_bounds(store: Store, key: Callable[[str], str]) -> None:
    uid = key("heavy")
    big = UserState(
        uid,
        history=[HistoryEntry(f"h{i}", 10_000 - i) for i in range(HISTORY_LIMIT + 50)],
        in_progress={f"p{i}": Progress(f"p{i}", 1.0, 2.0, i) for i in range(IN_PROGRESS_LIMIT + 10)},
        seen=[f"s{i}" for i in range(SEEN_LIMIT + 100)],
        disliked=[f"d{i}" for i in range(DISLIKED_LIMIT + 5)],
        my_list=[f"m{i}" for i in range(MY_LIST_LIMIT + 5)],
        top_picks=[ScoredItem(f"t{i}", 1.0 / (i + 1)) for i in range(TOP_PICKS_LIMIT + 20)],
        recent_event_ids=[f"e{i}" for i in range(EVENT_IDS_LIMIT + 30)],
    )
    store.put_users([big])
    got = store.get_user(uid)
    assert got is not None
    assert [h.video_id for h in got.history] == [f"h{i}" for i in range(HISTORY_LIMIT)]  # newest kept
    # continue watching keeps the most recently updated entries
    want_progress = {f"p{i}" for i in range(10, IN_PROGRESS_LIMIT + 10)}
    assert set(got.in_progress) == want_progress
    assert got.seen == [f"s{i}" for i in range(SEEN_LIMIT)]
    assert len(got.disliked) == DISLIKED_LIMIT and len(got.my_list) == MY_LIST_LIMIT
    assert [t.video_id for t in got.top_picks] == [f"t{i}" for i in range(TOP_PICKS_LIMIT)]
    assert got.recent_event_ids == [f"e{i}" for i in range(30, EVENT_IDS_LIMIT + 30)]  # newest last


def test_a_user_record_over_the_size_bound_is_refused(store: Store, key: Callable[[str], str]) -> None:
    uid = key("huge")
    with pytest.raises(RecordTooBig):
        store.put_users([UserState(uid, vector=np.ones(400_000, dtype=np.float32))])  # 1.6 MB
    assert store.get_user(uid) is None  # nothing of the batch was written


def test_inactive_users_expire_after_the_ttl(make_store: StoreFactory, key: Callable[[str], str]) -> None:
    # Aerospike counts TTL in whole seconds, so the margins below are whole seconds too.
    store = make_store(user_ttl_seconds=4)
    uid, kept = key("idle"), key("active")
    start = time.monotonic()
    store.put_users([UserState(uid), UserState(kept)])
    assert store.get_user(uid) is not None
    time.sleep(max(0.0, start + 2.5 - time.monotonic()))
    store.put_users([UserState(kept)])  # a write renews the TTL
    time.sleep(max(0.0, start + 5.2 - time.monotonic()))
    assert store.get_user(uid) is None
    assert store.get_user(kept) is not None


def test_bad_ids_are_refused_with_the_field_named(store: Store) -> None:
    with pytest.raises(ValueError, match="user_id"):
        store.put_users([UserState("")])
