"""UpdateUserState under TestStream: the state machine, dedup on replay, the two timers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from pipelines.main import MaintainState
from streamrec.events.model import EventType as K
from streamrec.events.model import UserEvent
from streamrec.model import UserState
from streamrec.recommend.state import apply_event
from streamrec.store import open_store
from tests.pipelines.helpers import T0, event, store_url, streaming_options

pytestmark = pytest.mark.pipeline
MIN = 60_000


def _stream(*steps: list[UserEvent] | int) -> TestStream:
    """Lists of events are added as one batch each; an int advances the watermark to T0 + that ms."""
    stream = TestStream()
    for step in steps:
        if isinstance(step, int):
            stream = stream.advance_watermark_to((T0 + step) / 1000.0)
        else:
            stream = stream.add_elements([TimestampedValue(e, e.timestamp / 1000.0) for e in step])
    return stream.advance_watermark_to_infinity()


def _run(stream: TestStream, url: str, check_snapshots: Callable[[list[UserState]], None] = lambda _: None,
         **stage_args: float) -> None:
    """Run the stages; ``check_snapshots`` sees every user snapshot UpdateUserState emitted."""
    # No trending early panes: the DirectRunner cannot run the processing-time late trigger they
    # come with (docs/pipelines.md); these tests are about user state.
    stage_args.setdefault("early_s", 0.0)
    with beam.Pipeline(options=streaming_options()) as pipeline:
        updated = pipeline | stream | MaintainState(url, **stage_args)
        snapshots = updated["users"] | beam.FlatMap(lambda write: [write.state] if write.state is not None else [])
        assert_that(snapshots, check_snapshots)


def _refresh_times(check: Callable[[list[int]], None]) -> Callable[[list[UserState]], None]:
    """Snapshots -> the distinct times top picks were refreshed at (each refresh stamps its own)."""
    return lambda snapshots: check(sorted({s.top_picks_at for s in snapshots if s.top_picks_at}))


def _expect(expected: object) -> Callable[[object], None]:
    def check(actual: object) -> None:
        assert actual == expected, f"expected {expected}, got {actual}"
    return check


def _oracle(user_id: str, events: list[UserEvent]) -> UserState:
    state = UserState(user_id=user_id)
    for e in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
        state = apply_event(state, e).state
    return state


def test_state_machine_dedup_and_side_effects_match_the_pure_function(tmp_path: Path) -> None:
    u1 = [
        event(K.PLAY, "u1", "v1", T0, position_sec=0.0),
        event(K.HEARTBEAT, "u1", "v1", T0 + 1 * MIN, position_sec=600.0),
        event(K.PLAY, "u1", "v2", T0 + 2 * MIN, position_sec=0.0),
        event(K.COMPLETE, "u1", "v2", T0 + 30 * MIN, position_sec=3600.0),
        event(K.DISLIKE, "u1", "v3", T0 + 31 * MIN),
    ]
    u2 = [event(K.PLAY, "u2", "v1", T0 + 5 * MIN, position_sec=0.0, region="GB")]
    replayed = u1[0].replace(timestamp=u1[0].timestamp)  # same event_id: a replay after a restart
    url = store_url(tmp_path)
    # No snapshot ever holds an event id twice (the replay was recognised, not re-applied).
    no_repeats = _expect(True)
    _run(_stream(u1[:3], 10 * MIN, u1[3:] + u2, 40 * MIN, [replayed], 50 * MIN), url,
         lambda snaps: no_repeats(bool(snaps) and all(len(set(s.recent_event_ids)) == len(s.recent_event_ids)
                                                      for s in snaps)))

    store = open_store(url)
    users = store.get_users(["u1", "u2"])
    expected = _oracle("u1", u1)
    got = users["u1"]
    assert [h.video_id for h in got.history] == [h.video_id for h in expected.history] == ["v2", "v1"]
    assert set(got.in_progress) == set(expected.in_progress) == {"v1"}
    assert got.in_progress["v1"].position_sec == 600.0
    assert got.seen == expected.seen and got.disliked == ["v3"]
    assert got.vector is not None and got.recent_event_ids == expected.recent_event_ids
    assert store.get_item_counts(["v1", "v2"]) == {"v1": 2, "v2": 1}  # the replay did not count again
    assert dict(store.get_neighbours(["v1"], 5))["v1"][0][0] == "v2"


def test_a_burst_of_taste_changes_costs_one_top_picks_refresh(tmp_path: Path) -> None:
    burst1 = [event(K.PLAY, "u1", f"v{i}", T0 + i * 1000, position_sec=0.0) for i in range(5)]
    burst2 = [event(K.LIKE, "u1", f"v{i}", T0 + 10 * MIN + i * 1000) for i in range(3)]
    url = store_url(tmp_path)
    # settle 5 s: burst1 (events 1 s apart) refreshes once at its last event + 5 s; burst2 likewise.
    expected = [burst1[-1].timestamp + 5000, burst2[-1].timestamp + 5000]
    _run(_stream(burst1, 5 * MIN, burst2, 20 * MIN), url, _refresh_times(_expect(expected)),
         settle_s=5.0, max_delay_s=60.0)
    user = open_store(url).get_user("u1")
    assert user is not None and user.top_picks_at == burst2[-1].timestamp + 5000


def test_a_busy_user_still_gets_a_refresh_after_max_delay(tmp_path: Path) -> None:
    # One event every 4 s for 36 s: never 5 s quiet. max_delay (30 s) forces a refresh at 30 s (it
    # waits for the event at 0 s); the next burst starts at 32 s and settles 5 s after 36 s.
    steady = [event(K.PLAY, "u1", f"v{i}", T0 + i * 4000, position_sec=0.0) for i in range(10)]
    steps = [step for e in steady for step in ([e], e.timestamp - T0)]  # the watermark follows the events
    _run(_stream(*steps, 10 * MIN), store_url(tmp_path), _refresh_times(_expect([T0 + 30_000, T0 + 41_000])),
         settle_s=5.0, max_delay_s=30.0)


def test_idle_users_state_is_cleared_and_reloaded_from_the_store(tmp_path: Path) -> None:
    first = event(K.PLAY, "u1", "v1", T0, position_sec=0.0)
    later = event(K.PLAY, "u1", "v2", T0 + 30 * MIN, position_sec=0.0)
    url = store_url(tmp_path)
    # idle 10 min: the state expires at T0 + 10 min; the replay of `first` after that is still a
    # duplicate because the reloaded state (from the store) remembers its event_id.
    updates = _expect(2)  # first and later; the replay of first is recognised after the reload
    _run(_stream([first], 20 * MIN, [first, later], 60 * MIN), url,
         lambda snaps: updates(len({s.updated_at for s in snaps})), settle_s=5.0, max_delay_s=60.0, idle_s=600.0)
    user = open_store(url).get_user("u1")
    assert user is not None and [h.video_id for h in user.history] == ["v2", "v1"]
    assert open_store(url).get_item_counts(["v1"]) == {"v1": 1}
