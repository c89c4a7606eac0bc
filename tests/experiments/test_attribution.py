"""Attribution: each play is counted once, only within the window, to the slot that showed it."""

from __future__ import annotations

from streamrec.events.model import Impression
from streamrec.experiments.attribution import (
    ATTRIBUTION_WINDOW_MS,
    SKEW_MS,
    CountKey,
    ViewerAttribution,
    Watch,
    expire,
    on_impression,
    on_watch,
    window_of,
)

T = 1_764_547_200_000 + 3_600_000  # 01:00 UTC on a day
DAY = window_of(T)


def shown(ts: int, row: str, *video_ids: str, variant: str = "fresh", event_id: str = "i1") -> Impression:
    return Impression(event_id=event_id, user_id="u1", timestamp=ts, request_id="r", row_type=row,
                      video_ids=video_ids, experiment="x", variant=variant)


def play(video_id: str, ts: int, event_id: str = "p1", kind: str = "play") -> Watch:
    return Watch(event_id, kind, video_id, ts)


def key(metric: str, row: str, position: int, variant: str = "fresh") -> CountKey:
    return ("x", DAY, variant, metric, row, position)


def test_an_impression_counts_its_slots_and_the_viewer_once() -> None:
    state = ViewerAttribution()
    counts = on_impression(state, shown(T, "top_picks", "a", "b"))
    assert counts == {key("viewers", "all", 0): 1, key("impressions", "top_picks", 0): 1,
                      key("impressions", "top_picks", 1): 1}
    assert key("viewers", "all", 0) not in on_impression(state, shown(T + 5, "trending_now", "c"))


def test_an_impression_outside_an_experiment_counts_nothing() -> None:
    plain = Impression(event_id="i", user_id="u1", timestamp=T, request_id="r", row_type="top_picks", video_ids=("a",))
    state = ViewerAttribution()
    assert on_impression(state, plain) == {}
    assert on_watch(state, play("a", T + 10)) == {}


def test_a_play_is_credited_to_the_row_and_position_that_showed_it_once() -> None:
    state = ViewerAttribution()
    on_impression(state, shown(T, "top_picks", "a", "b", "c"))
    assert on_watch(state, play("c", T + 1000)) == {key("plays", "top_picks", 2): 1}
    assert on_watch(state, play("c", T + 1000)) == {}  # the same event again (a replay)
    assert on_watch(state, play("c", T + 2000, event_id="p2")) == {}  # a second play of the title
    assert on_watch(state, play("c", T + 3000, event_id="c1", kind="complete")) == {key("completes", "top_picks", 2): 1}
    assert on_watch(state, play("z", T + 1000, event_id="p3")) == {}  # not shown


def test_only_within_the_window() -> None:
    state = ViewerAttribution()
    on_impression(state, shown(T, "top_picks", "a"))
    assert on_watch(state, play("a", T + ATTRIBUTION_WINDOW_MS + 1)) == {}
    state = ViewerAttribution()
    on_impression(state, shown(T, "top_picks", "a"))
    assert on_watch(state, play("a", T + ATTRIBUTION_WINDOW_MS)) == {key("plays", "top_picks", 0): 1}


def test_the_newest_impression_of_the_title_gets_the_play() -> None:
    state = ViewerAttribution()
    on_impression(state, shown(T, "trending_now", "a", variant="fresh"))
    on_impression(state, shown(T + 60_000, "genre", "x", "a"))
    assert on_watch(state, play("a", T + 70_000)) == {key("plays", "genre", 1): 1}


def test_a_play_that_arrives_before_its_impression_waits_for_it() -> None:
    # The impression travels on another topic: it may be read after the play it led to, and its
    # server time may be a little after the client's play time.
    state = ViewerAttribution()
    assert on_watch(state, play("a", T)) == {}
    counts = on_impression(state, shown(T + SKEW_MS, "top_picks", "a"))
    assert counts[key("plays", "top_picks", 0)] == 1
    assert on_watch(state, play("a", T)) == {}  # and once only
    late = ViewerAttribution()
    on_watch(late, play("a", T))
    assert key("plays", "top_picks", 0) not in on_impression(late, shown(T + SKEW_MS + 1, "top_picks", "a"))


def test_expiry_follows_each_stream_and_empties_the_viewer_the_next_day() -> None:
    state = ViewerAttribution()
    on_impression(state, shown(T, "top_picks", "a"))
    on_watch(state, play("b", T + 100))  # waits: b was not shown (yet)
    # Plays read far ahead, impressions not: the slot goes, the waiting play stays.
    assert not expire(state, shown_until=T, watched_until=T + ATTRIBUTION_WINDOW_MS + SKEW_MS + 1)
    assert state.slots == [] and [w.video_id for w in state.waiting] == ["b"]
    assert on_impression(state, shown(T + 200, "genre", "b"))[key("plays", "genre", 0)] == 1
    on_watch(state, play("c", T + 300, event_id="p9"))
    assert not expire(state, shown_until=T + 300 + SKEW_MS + 1, watched_until=T)
    assert state.waiting == []
    day = 24 * 3600 * 1000
    assert expire(state, shown_until=T + day, watched_until=T + day)
