"""Experiment documents and assignment: validation names the field; assignment is deterministic,
balanced (chi-square over 100k ids) and stable when the holdout shrinks."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from scipy import stats as scipy_stats

from streamrec.experiments.config import (
    HOLDOUT,
    ExperimentError,
    assign,
    parse_experiment,
    running_experiment,
)

DOC: dict[str, Any] = {"id": "fresh-vs-blend", "salt": "s1", "start": 1_764_547_200,
                       "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}
IDS = [f"u{i}" for i in range(100_000)]


def fields(doc: Any) -> list[str]:
    with pytest.raises(ExperimentError) as err:
        parse_experiment(doc)
    return [e["field"] for e in err.value.errors]


def test_a_valid_document_round_trips() -> None:
    exp = parse_experiment({**DOC, "stop": "2026-12-31T00:00:00Z", "holdout": 0.1})
    assert exp.control == "blend" and exp.arms == ("blend", "fresh", HOLDOUT)
    assert exp.stop_ms == 1_798_675_200_000
    assert parse_experiment(exp.to_dict()) == exp
    assert exp.expected_shares() == pytest.approx({"blend": 0.45, "fresh": 0.45, HOLDOUT: 0.1})


@pytest.mark.parametrize(("change", "field"), [
    ({"variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.4}]}, "variants"),
    ({"variants": [{"name": "blend", "share": 0.5}, {"name": "nope", "share": 0.5}]}, "variants[1].name"),
    ({"variants": [{"name": "blend", "share": 1.5}]}, "variants[0].share"),
    ({"variants": [{"name": "blend", "share": 0.5}, {"name": "blend", "share": 0.5}]}, "variants[1].name"),
    ({"variants": []}, "variants"),
    ({"id": "has space"}, "id"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2026-12-01T00:00:00"}, "start"),
    ({"stop": 1_764_547_199}, "stop"),
    ({"holdout": 1.0}, "holdout"),
    ({"control": "fresh2"}, "control"),
    ({"colour": "blue"}, "colour"),
])
def test_an_invalid_document_names_the_field(change: dict[str, Any], field: str) -> None:
    assert field in fields({**DOC, **change})


def test_every_problem_is_named_at_once() -> None:
    assert set(fields({"id": "", "variants": "x"})) >= {"id", "start", "variants"}
    assert fields([1, 2]) == ["experiment"]


def test_assignment_is_deterministic_and_depends_on_the_salt() -> None:
    exp = parse_experiment(DOC)
    first = [assign(exp, u) for u in IDS[:1000]]
    assert first == [assign(parse_experiment(DOC), u) for u in IDS[:1000]]
    other = [assign(parse_experiment({**DOC, "salt": "s2"}), u) for u in IDS[:1000]]
    assert 0.4 < sum(a != b for a, b in zip(first, other, strict=True)) / 1000 < 0.6


@pytest.mark.parametrize("shares", [(0.5, 0.5), (0.2, 0.8)])
def test_assignment_is_balanced_over_100k_ids(shares: tuple[float, float]) -> None:
    exp = parse_experiment({**DOC, "variants": [{"name": "blend", "share": shares[0]},
                                                {"name": "fresh", "share": shares[1]}]})
    counts = Counter(assign(exp, u) for u in IDS)
    observed = [counts["blend"], counts["fresh"]]
    expected = [len(IDS) * s for s in shares]
    assert scipy_stats.chisquare(observed, expected).pvalue > 0.001, observed


def test_a_skewed_assignment_would_fail_the_balance_check() -> None:
    # The check above can fail: a 50.5/49.5 split over 100k ids is far outside chance.
    assert scipy_stats.chisquare([50_500, 49_500], [50_000, 50_000]).pvalue < 0.01


def test_holdout_share_and_shrinking_it_moves_nobody_already_in() -> None:
    wide = parse_experiment({**DOC, "holdout": 0.5})
    narrow = parse_experiment({**DOC, "holdout": 0.1})
    before = {u: assign(wide, u) for u in IDS[:20_000]}
    after = {u: assign(narrow, u) for u in IDS[:20_000]}
    assert math.isclose(sum(a == HOLDOUT for a in before.values()) / 20_000, 0.5, abs_tol=0.02)
    assert math.isclose(sum(a == HOLDOUT for a in after.values()) / 20_000, 0.1, abs_tol=0.01)
    assert all(after[u] == a for u, a in before.items() if a != HOLDOUT)  # stable when extended
    assert all(a == HOLDOUT for u, a in after.items() if a == HOLDOUT and before[u] != HOLDOUT) is True
    assert not [u for u, a in after.items() if a == HOLDOUT and before[u] != HOLDOUT]


def test_the_running_experiment_is_the_one_started_last() -> None:
    a = parse_experiment({**DOC, "id": "a", "start": 100, "stop": 300})
    b = parse_experiment({**DOC, "id": "b", "start": 200})
    assert running_experiment([a, b], 50_000) is None
    assert running_experiment([a, b], 150_000) == a
    assert running_experiment([a, b], 250_000) == b
    assert running_experiment([a], 300_000) is None
