"""New releases (recency, then early momentum, ageing out on the stream's clock) and per-genre top
lists: known answers and a brute-force oracle."""

from __future__ import annotations

import random

import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem
from streamrec.recommend.releases import (
    DAY_MS,
    ReleasePool,
    merge_releases,
    rank_releases,
    release_regions,
    release_score,
)
from streamrec.recommend.trending import top_n, top_per_genre

D0 = 20_000 * DAY_MS  # a day boundary


def test_newer_day_first_then_momentum_then_id() -> None:
    released = {"old": D0, "new_quiet": D0 + DAY_MS + 5, "new_busy": D0 + DAY_MS + 1, "new_tie": D0 + DAY_MS + 9}
    watches = {"old": 1000, "new_busy": 7, "new_quiet": 0, "new_tie": 0}
    assert [s.video_id for s in rank_releases(released, watches)] == ["new_busy", "new_quiet", "new_tie", "old"]
    assert release_score(D0, 0) == D0 // DAY_MS and release_score(D0, 3) == D0 // DAY_MS + 0.75


def test_momentum_never_outranks_a_newer_day() -> None:
    assert release_score(D0, 10**9) < release_score(D0 + DAY_MS, 0)
    with pytest.raises(ValueError, match="watches"):
        release_score(D0, -1)


def test_a_title_waits_for_the_clock_and_ages_out() -> None:
    age = 30 * DAY_MS
    pool = ReleasePool()
    pool.add("a", D0, age)
    pool.add("later", D0 + 10 * DAY_MS, age)
    pool.add("unknown_date", None, age)
    assert set(pool.released()) == {"a", "later"}  # no watch yet: nothing is held back
    pool.advance(D0 + DAY_MS, age)
    assert set(pool.released()) == {"a"}  # "later" is not out yet at the stream's clock
    pool.watched({"a": 2, "not_in_pool": 5})
    assert pool.watches == {"a": 2}
    pool.advance(D0 + 10 * DAY_MS, age)
    assert [s.video_id for s in pool.ranked()] == ["later", "a"]
    pool.advance(D0 + 31 * DAY_MS, age)  # a was added 31 days before the clock: gone, with its count
    assert set(pool.added) == {"later"} and pool.watches == {}
    pool.advance(D0, age)  # the clock never moves back
    assert pool.clock_ms == D0 + 31 * DAY_MS
    pool.add("too_old", D0, age)  # a record for a title already aged out is not kept
    assert "too_old" not in pool.added


def test_a_pool_is_recovered_from_its_written_list() -> None:
    pool = ReleasePool()
    for i, (day, n) in enumerate([(3, 0), (3, 9), (2, 1), (1, 250)]):
        pool.add(f"t{i}", D0 + day * DAY_MS + 1234, 90 * DAY_MS)
        pool.watches[f"t{i}"] = n
    written = pool.ranked()
    recovered = ReleasePool.from_list(written)
    assert recovered.watches == pool.watches
    assert [s.video_id for s in recovered.ranked()] == [s.video_id for s in written]
    assert {v: t // DAY_MS for v, t in recovered.added.items()} == {v: t // DAY_MS for v, t in pool.added.items()}


def test_regions_and_merging() -> None:
    assert release_regions(CatalogItem("a", "A")) == ("global",)
    assert release_regions(CatalogItem("b", "B", regions=("US", "GB"))) == ("global", "GB", "US")
    merged = merge_releases([[ScoredItem("x", 5.0), ScoredItem("y", 3.0)], [ScoredItem("z", 4.0), ScoredItem("x", 5.0)]], 10)
    assert merged == [ScoredItem("x", 5.0), ScoredItem("z", 4.0), ScoredItem("y", 3.0)]
    assert merge_releases([[ScoredItem("x", 5.0), ScoredItem("y", 3.0)]], 1) == [ScoredItem("x", 5.0)]


def test_top_per_genre_matches_a_brute_force_oracle() -> None:
    rng = random.Random(7)
    genres_all = ["Comedy", "Drama", "Sci-Fi", "Horror"]
    counts = {f"v{i}": float(rng.randint(1, 20)) for i in range(300)}
    genres = {v: tuple(rng.sample(genres_all, rng.randint(0, 2))) for v in counts}
    got = top_per_genre(counts, genres, 7)
    for g in genres_all:
        want = top_n({v: c for v, c in counts.items() if g in genres[v]}, 7)
        assert got.get(g, []) == want
    assert top_per_genre({"a": 1.0}, {}, 5) == {}  # a title without genres is in no genre list
