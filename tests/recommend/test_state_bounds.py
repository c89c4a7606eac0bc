"""Issue 11, defect 2: every per-user list is bounded by bytes as well as by count, so no stream of
events (long random ids, every kind) can grow a user record past the store's record limit."""

from __future__ import annotations

import random
import string

import numpy as np
import pytest

from streamrec.events.model import EventType, UserEvent
from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState
from streamrec.recommend.state import (
    LIST_BYTE_BUDGETS,
    MAX_ID_BYTES,
    USER_RECORD_BUDGET,
    apply_event,
    bound_state,
)
from streamrec.store.base import MAX_RECORD_BYTES
from streamrec.store.codec import encode_user

U = "u1"
KINDS = [EventType.PLAY, EventType.HEARTBEAT, EventType.COMPLETE, EventType.RATE, EventType.DISLIKE,
         EventType.LIKE, EventType.ADD_TO_LIST, EventType.SET_PREFERENCES, EventType.SEARCH]


def _long_id(rng: random.Random, n: int) -> str:
    # Random, so zlib cannot hide the size; plain printable characters, as an attacker's ids would be.
    return "".join(rng.choices(string.ascii_letters + string.digits, k=n))


def _hostile(rng: random.Random, n: int, kind: EventType, id_len: int) -> UserEvent:
    video = _long_id(rng, id_len)
    fields: dict[str, object] = {}
    if kind in (EventType.PLAY, EventType.HEARTBEAT):
        fields = {"position_sec": 10.0, "duration_sec": 3600.0}
    elif kind is EventType.RATE:
        fields = {"rating": rng.choice([1.0, 4.5])}
    elif kind is EventType.SET_PREFERENCES:
        fields = {"genres": tuple(_long_id(rng, 100) for _ in range(40))}
    return UserEvent(event_id=_long_id(rng, id_len), event_type=kind, user_id=U, timestamp=1_700_000_000_000 + n,
                     video_id=None if kind in (EventType.SET_PREFERENCES, EventType.SEARCH) else video,
                     **fields)  # type: ignore[arg-type]


def test_3000_events_with_long_random_ids_keep_the_user_record_under_its_budget() -> None:
    rng = random.Random(11)
    state = UserState(U, vector=np.ones(64, dtype=np.float32))
    for n in range(3000):
        state = apply_event(state, _hostile(rng, n, KINDS[n % len(KINDS)], MAX_ID_BYTES)).state
    size = len(encode_user(state.bounded()))
    assert size <= USER_RECORD_BUDGET < MAX_RECORD_BYTES // 2, size
    assert len(state.seen) > 100 and len(state.recent_event_ids) > 50  # bounded, not emptied


def _worst(n: int) -> str:
    # A maximal id of the characters JSON spells longest (\u0001 -> 6 bytes), distinct per n.
    tail = f"{n:08d}"
    return "\x01" * (MAX_ID_BYTES - len(tail)) + tail


def test_the_worst_case_user_encodes_within_the_record_budget() -> None:
    ids = [_worst(n) for n in range(3000)]
    state = UserState(
        U,
        history=[HistoryEntry(v, 2**62 + i, 0.123456789012345) for i, v in enumerate(ids)],
        in_progress={v: Progress(v, 1.0e300, 1.0e300, 2**62) for v in ids},
        seen=list(ids), disliked=list(ids), my_list=list(ids),
        vector=np.full(64, 1.0e30, dtype=np.float32),
        top_picks=[ScoredItem(v, 0.123456789012345) for v in ids],
        top_picks_at=2**62, preferred_genres=list(ids), recent_event_ids=list(ids), updated_at=2**62)
    bounded = bound_state(state)
    size = len(encode_user(bounded.bounded()))
    assert size <= USER_RECORD_BUDGET < MAX_RECORD_BYTES // 2, size
    # Each list keeps its newest entries (recent event ids: the last ones) and is not empty.
    assert bounded.seen == ids[: len(bounded.seen)] and 0 < len(bounded.seen) < len(ids)
    assert bounded.recent_event_ids == ids[-len(bounded.recent_event_ids):]
    assert set(LIST_BYTE_BUDGETS) == {"history", "in_progress", "seen", "disliked", "my_list", "top_picks",
                                      "preferred_genres", "recent_event_ids"}


def test_an_ordinary_user_is_not_cut() -> None:
    state = UserState(U, seen=[f"ml:{i}" for i in range(2000)], recent_event_ids=[f"{i:032x}" for i in range(256)])
    assert bound_state(state) == state


@pytest.mark.parametrize("field", ["event_id", "video_id", "user_id"])
def test_an_id_longer_than_the_limit_is_refused_naming_the_field(field: str) -> None:
    long = "x" * (MAX_ID_BYTES + 1)
    values = {"event_id": "e1", "video_id": "v1", "user_id": U, field: long}
    event = UserEvent(event_id=values["event_id"], event_type=EventType.PLAY, user_id=values["user_id"],
                      timestamp=1, video_id=values["video_id"])
    with pytest.raises(ValueError, match=f"^{field}: "):
        apply_event(UserState(values["user_id"]), event)
