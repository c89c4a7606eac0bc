"""An experiment's results from its counts: per arm counts and rates with Wilson intervals, the
lift of each variant over the control with a two-proportion z-test, per row and position, per
window, and the sample-ratio check (:mod:`streamrec.experiments.stats`). Pure: the caller reads
the counts (:mod:`streamrec.experiments.storage`) and serves or prints the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamrec.experiments.attribution import CountKey
from streamrec.experiments.config import HOLDOUT, Experiment
from streamrec.experiments.stats import (
    SRM_ALPHA,
    sample_ratio,
    two_proportion_z,
    wilson,
)

SIGNIFICANCE = 0.05
METRICS = ("impressions", "plays", "completes", "viewers")


def _rate(successes: int, trials: int) -> dict[str, float | None]:
    low, high = wilson(min(successes, trials), trials)
    return {"value": successes / trials if trials else None, "low": low, "high": high}


def _arm(counts: Mapping[CountKey, int], arm: str) -> dict[str, Any]:
    totals = dict.fromkeys(METRICS, 0)
    rows: dict[str, dict[str, int]] = {}
    positions: dict[int, dict[str, int]] = {}
    for (_, _, variant, metric, row, position), n in counts.items():
        if variant != arm:
            continue
        totals[metric] = totals.get(metric, 0) + n
        if metric == "viewers":
            continue
        rows.setdefault(row, {"impressions": 0, "plays": 0, "completes": 0})[metric] += n
        positions.setdefault(position, {"impressions": 0, "plays": 0, "completes": 0})[metric] += n

    def described(c: Mapping[str, int]) -> dict[str, Any]:
        return {"impressions": c["impressions"], "plays": c["plays"], "completes": c["completes"],
                "play_rate": _rate(c["plays"], c["impressions"]),
                "complete_rate": _rate(c["completes"], c["impressions"])}

    return {"variant": arm, "viewers": totals["viewers"], **described(totals),
            "rows": [{"row": row, **described(c)} for row, c in sorted(rows.items())],
            "positions": [{"position": p, **described(c)} for p, c in sorted(positions.items())]}


def results_document(experiment: Experiment, counts: Mapping[CountKey, int], now_ms: int) -> dict[str, Any]:
    """The answer of ``GET /v1/experiments/{id}`` and of ``streamrec eval --experiment``."""
    counts = {k: n for k, n in counts.items() if k[0] == experiment.id}
    arms = {arm: _arm(counts, arm) for arm in experiment.arms}
    control = arms[experiment.control]
    comparisons = []
    for arm in experiment.arms:
        if arm in (experiment.control, HOLDOUT):
            continue
        for metric, rate in (("plays", "play_rate"), ("completes", "complete_rate")):
            c = two_proportion_z(arms[arm][metric], arms[arm]["impressions"], control[metric], control["impressions"])
            comparisons.append({"variant": arm, "metric": rate, "lift": c.lift, "difference": c.difference,
                                "z": c.z, "p_value": c.p_value,
                                "significant": c.p_value is not None and c.p_value < SIGNIFICANCE})
    shares = experiment.expected_shares()
    observed = {arm: arms[arm]["viewers"] for arm in experiment.arms}
    srm = sample_ratio(observed, shares)
    windows: dict[int, dict[str, dict[str, int]]] = {}
    for (_, window, variant, metric, _, _), n in counts.items():
        per_arm = windows.setdefault(window, {}).setdefault(variant, dict.fromkeys(METRICS, 0))
        per_arm[metric] = per_arm.get(metric, 0) + n
    return {
        "experiment": experiment.to_dict(),
        "running": experiment.running(now_ms),
        "control": experiment.control,
        "generated_at": now_ms / 1000,
        "variants": list(arms.values()),
        "comparisons": comparisons,
        "sample_ratio": {"unit": "viewer-days", "observed": observed, "expected_shares": shares,
                         "chi_square": srm.chi_square, "dof": srm.dof, "p_value": srm.p_value,
                         "alpha": SRM_ALPHA, "mismatch": srm.mismatch},
        "windows": [{"start": w / 1000, "variants": [{"variant": arm, **c} for arm, c in sorted(per.items())]}
                    for w, per in sorted(windows.items())],
    }
