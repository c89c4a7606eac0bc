"""The read-through cache the pipelines keep per worker (genres, item vectors)."""

from __future__ import annotations

import pytest

from streamrec.store.cache import ReadThrough


def test_reads_only_what_it_does_not_hold_in_one_call_and_defaults_the_unknown() -> None:
    calls: list[list[str]] = []

    def read(missing: list[str]) -> dict[str, int]:
        calls.append(missing)
        return {k: len(k) for k in missing if k != "unknown"}

    cache: ReadThrough[int] = ReadThrough(ttl_s=60.0, max_entries=10)
    assert cache.get(["a", "bb", "a", "unknown"], read, lambda k: -1) == {"a": 1, "bb": 2, "unknown": -1}
    assert cache.get(["bb", "ccc"], read, lambda k: -1) == {"bb": 2, "ccc": 3}
    assert calls == [["a", "bb", "unknown"], ["ccc"]]
    assert ReadThrough[int](ttl_s=0.0, max_entries=10).get(["a"], read, lambda k: -1) == {"a": 1}


def test_past_its_bound_it_starts_over_and_bad_settings_are_refused() -> None:
    cache: ReadThrough[int] = ReadThrough(ttl_s=60.0, max_entries=2)
    cache.get(["a", "b"], lambda m: dict.fromkeys(m, 1), lambda k: 0)
    calls: list[list[str]] = []
    cache.get(["c"], lambda m: calls.append(m) or dict.fromkeys(m, 2), lambda k: 0)  # type: ignore[func-returns-value]
    cache.get(["a"], lambda m: calls.append(m) or dict.fromkeys(m, 3), lambda k: 0)  # type: ignore[func-returns-value]
    assert calls == [["c"], ["a"]]  # "a" was dropped when the bound was passed
    with pytest.raises(ValueError, match="max_entries"):
        ReadThrough(ttl_s=1.0, max_entries=0)
