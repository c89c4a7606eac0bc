"""Experiments and their counts through the store contract (every real backend), and the results
document made from them."""

from __future__ import annotations

from streamrec.experiments.attribution import CountKey, window_of
from streamrec.experiments.config import parse_experiment
from streamrec.experiments.results import results_document
from streamrec.experiments.storage import (
    count_keys,
    counts_from_lists,
    counts_lists,
    get_experiments,
    put_experiment,
)
from streamrec.store.base import Store

START_S = 1_764_547_200
NOW = START_S * 1000 + 5 * 3_600_000
DAY = window_of(NOW)
DOC = {"id": "fresh-vs-blend", "start": START_S, "holdout": 0.2,
       "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}


def test_an_experiment_set_is_read_back_and_replaced(store: Store) -> None:
    exp = parse_experiment(DOC)
    put_experiment(store, exp, NOW)
    put_experiment(store, parse_experiment({**DOC, "id": "other"}), NOW)
    assert [e.id for e in get_experiments(store)] == ["fresh-vs-blend", "other"]
    assert get_experiments(store)[0] == exp
    changed = parse_experiment({**DOC, "holdout": 0.0})
    put_experiment(store, changed, NOW + 1)
    assert get_experiments(store)[0] == changed and len(get_experiments(store)) == 2


def test_counts_round_trip_through_lists(store: Store) -> None:
    exp = parse_experiment(DOC)
    totals: dict[CountKey, int] = {
        (exp.id, DAY, "blend", "impressions", "top_picks", 0): 1000,
        (exp.id, DAY, "blend", "plays", "top_picks", 0): 100,
        (exp.id, DAY, "fresh", "impressions", "top_picks", 0): 1000,
        (exp.id, DAY, "fresh", "plays", "top_picks", 0): 150,
        (exp.id, DAY, "fresh", "viewers", "all", 0): 400,
        (exp.id, DAY, "blend", "viewers", "all", 0): 410,
        (exp.id, DAY, "holdout", "viewers", "all", 0): 190,
    }
    touched = {k[:4] for k in totals}
    store.put_lists(counts_lists(totals, touched, NOW))  # type: ignore[arg-type]
    keys = count_keys(exp, NOW, ("impressions", "plays", "completes", "viewers"))
    counts = counts_from_lists(store.get_lists(keys).values())
    assert counts == totals
    doc = results_document(exp, counts, NOW)
    by_arm = {v["variant"]: v for v in doc["variants"]}
    assert by_arm["fresh"]["play_rate"]["value"] == 0.15
    assert by_arm["fresh"]["play_rate"]["low"] < 0.15 < by_arm["fresh"]["play_rate"]["high"]
    (plays,) = [c for c in doc["comparisons"] if c["metric"] == "play_rate"]
    assert plays["variant"] == "fresh" and abs(plays["lift"] - 0.5) < 1e-9 and plays["significant"]
    assert not doc["sample_ratio"]["mismatch"]
    assert doc["windows"][0]["start"] == DAY / 1000


def test_results_flag_a_skewed_split() -> None:
    exp = parse_experiment({**DOC, "holdout": 0.0})
    counts: dict[CountKey, int] = {(exp.id, DAY, "blend", "viewers", "all", 0): 5_400,
                                   (exp.id, DAY, "fresh", "viewers", "all", 0): 4_600}
    assert results_document(exp, counts, NOW)["sample_ratio"]["mismatch"]
