"""Tables, JSON and plots of a prequential run, and the ``docs/quality.md`` page.

A run's summary is a plain dict (the JSON ``streamrec eval --format json`` prints)::

    {"dataset", "events", "scored", "cold_scored", "warmup_cut", "methods": {name: {"hr@10",
     "ndcg@10", "mrr", "cold_hr@10", "coverage", "seconds"}}, "notes": [...]}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.metrics import rolling_hit_rate
from evaluation.protocol import MethodResult, Schedule

COLUMNS = ("hr@10", "ndcg@10", "mrr", "cold_hr@10", "coverage", "seconds")

# Targets of issue 15 for the served top picks, checked on every data set against the baselines:
# every method but streamrec and random.
TARGET_VS_BEST = 1.2
TARGET_SECONDS_PER_100K = 60.0
NOT_BASELINES = ("streamrec", "random")

def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def summarise(dataset: str, schedule: Schedule, results: Sequence[MethodResult], notes: Sequence[str]) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "events": len(schedule.events),
        "scored": schedule.scored_warm,
        "cold_scored": schedule.scored_cold,
        "warmup_cut": _iso(schedule.cut_ms),
        "methods": {r.name: r.summary(schedule.n_items) for r in results},
        "notes": list(notes),
    }


def _cell(value: float | None, column: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if column == "seconds" else f"{value:.4f}"


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The methods as rows, metrics as columns; the best HR@10 in bold."""
    methods: Mapping[str, Mapping[str, float | None]] = summary["methods"]
    best = max((m["hr@10"] for m in methods.values() if m["hr@10"] is not None), default=None)
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for name, values in methods.items():
        cells = [_cell(values[c], c) for c in COLUMNS]
        if best is not None and values["hr@10"] == best:
            cells[0] = f"**{cells[0]}**"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(summary: Mapping[str, Any], plot_name: str | None = None) -> str:
    """One data set's section: what was replayed, the table, the plot, the notes."""
    parts = [
        f"### {summary['dataset']}",
        "",
        (f"{summary['events']:,} events; learn-only before {summary['warmup_cut']}; "
        f"{summary['scored']:,} warm events scored, {summary['cold_scored']:,} cold."),
        "",
        markdown_table(summary),
    ]
    if plot_name:
        parts += ["", f"![rolling HR@10 on {summary['dataset']}]({plot_name})"]
    for note in summary.get("notes", []):
        parts += ["", f"Note: {note}"]
    return "\n".join(parts) + "\n"


def _check(dataset: str, text: str, got: float | None, need: float | None, unit: str = "") -> str:
    if got is None or need is None:
        return f"- {dataset}: {text}: nothing scored, not checked"
    met = "met" if got >= need else "NOT met"
    return f"- {dataset}: {text}: {got:.4f} vs {need:.4f}{unit} — **{met}**"


def target_lines(summary: Mapping[str, Any]) -> list[str]:
    """Which of issue 15's targets the served top picks meet on this data set, with the figures."""
    dataset = summary["dataset"]
    methods: Mapping[str, Mapping[str, float | None]] = summary["methods"]
    ours = methods.get("streamrec")
    if ours is None:
        return [f"- {dataset}: streamrec was not evaluated, no target can be checked."]
    baselines = {name: values for name, values in methods.items() if name not in NOT_BASELINES}
    lines = []
    for metric, label in (("hr@10", "HR@10"), ("ndcg@10", "NDCG@10")):
        scored = {name: v[metric] for name, v in baselines.items() if v[metric] is not None}
        if not scored:
            lines.append(f"- {dataset}: {label} ≥ {TARGET_VS_BEST}× the best baseline: no baseline scored, not checked")
            continue
        best = max(scored, key=lambda name: scored[name] or 0.0)
        need = TARGET_VS_BEST * (scored[best] or 0.0)
        lines.append(_check(dataset, f"{label} ≥ {TARGET_VS_BEST}× the best baseline ({best}, {scored[best]:.4f})",
                            ours[metric], need))
    for other, metric, text in (("trending", "cold_hr@10", "cold HR@10 ≥ trending's"),
                                ("itemknn_stream", "coverage", "coverage ≥ itemknn_stream's")):
        if other in methods:
            lines.append(_check(dataset, text, ours[metric], methods[other][metric]))
    seconds, events = ours["seconds"], summary.get("events") or 0
    if seconds is not None and events:
        per_100k = seconds * 100_000 / events
        met = "met" if per_100k <= TARGET_SECONDS_PER_100K else "NOT met"
        lines.append(f"- {dataset}: streamrec replay ≤ {TARGET_SECONDS_PER_100K:.0f} s per 100k events: "
                     f"{per_100k:.1f} s per 100k ({seconds:.1f} s for {events:,}) — **{met}**")
    return lines

def plot_rolling_hit_rate(results: Sequence[MethodResult], path: Path, title: str, window: int | None = None) -> Path:
    """PNG of each method's HR@10 over the last ``window`` scored events, against event time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = max((r.ranks.size for r in results), default=0)
    window = window or max(100, scored // 40)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    for result in results:
        if not result.ranks.size:
            continue
        when = np.asarray(result.times_ms, dtype="datetime64[ms]")
        start = window - 1 if result.ranks.size >= window else 0  # a part-filled window only adds noise
        ax.plot(when[start:], rolling_hit_rate(result.ranks, window)[start:], label=result.name, linewidth=1.2)
    ax.set_title(f"{title}: HR@10 over the last {window:,} scored events")
    ax.set_xlabel("event time")
    ax.set_ylabel("rolling HR@10")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


#: What the streamrec row's replay spends its time on (profiled; issue 13), for the page's head.
STREAMREC_COST = """Where the streamrec replay's time goes (issue 13), sampled over whole replays of ml-latest-small
with py-spy (25 samples/s of wall time; cProfile, 200 s for a replay of ~85 s, overstated the
co-watch loop by timing each of its ~150 M `dict.get` and 60 M `max` calls). Before issue 13's work:
ranking 61 % of the samples (the candidates' features 49 %, of them the co-watch and content
sources 22 % and the recency and genre columns 11 %; the learned ranking and its diversity
re-rank 11 %), learning 35 % (the state machine copying and re-indexing a user's state per batch
8 %, the co-watch writes 10 %, the ranker's examples and fit 10 %). Changed since, every list,
example and metric bit for bit the same (tests/recommend/test_fast_paths.py holds each fast path to
its readable form): one state machine (`LiveUser`) kept per user, the recency and genre columns
elementwise, the excluded titles once per request, the co-watch and content sources as array
steps: 3,301 samples (126 s) -> 2,687 (102 s), the state machine 271 -> 88 samples, the features
1,613 -> 1,339, the sources 713 -> 632 (with a few hundred candidates per request, numpy's cost
per call is about the loops' cost). What limits it now: each request still touches every one of
its ~260-500 candidates in several dictionaries (counts, catalog, each source's scores) and sorts
their ids (the features are 50 % of the samples), the diversity re-rank (6 %), the ranker's
examples and fit (13 %), the co-watch writes (10 %). The 60 s target wants the candidates as
interned ids in arrays held between requests (or per-user scores kept up to date), not faster
loops."""


def quality_page(sections: Sequence[tuple[Mapping[str, Any], str | None]], command: str, settings: Mapping[str, Any]) -> str:
    """The whole ``docs/quality.md``: protocol, one section per data set, the targets."""
    head = f"""# Recommendation quality (generated)

Written by `{command}` — do not edit by hand.

Prequential, test-then-learn replay (`evaluation/protocol.py`): ratings sorted by event
time and treated as watches; one user's events sharing a timestamp are scored together against
the state before any of them, then learned. The first 20% of events are only learned. For every
later event of a user with earlier events each method serves its top 10 excluding titles already
watched: HR@10, NDCG@10 and MRR (MRR@10) of the title about to be watched. Users with no earlier
event are scored apart (cold_hr@10). Coverage is the share of the log's titles that appeared in
at least one served list; seconds is the wall time of the method's whole replay on this machine
(2 shared cores, so expect noise).

Baselines (`evaluation/baselines.py`, `recency.py`, `ease.py`, `als.py`): popular so far; trending (last
{settings["trending_days"]:g} days of event time, ties by popularity); trending_tuned (watch counts
decayed with a half-life of 1 h, 6 h, 1 d, 3 d, 7 d, 30 d or ∞, served with the half-life whose
HR@10 was best so far, measured by the method itself test-then-learn on every group before learning
it, so never on an event it has not learned); streaming item-kNN (co-watch
with the user's last {settings["knn_window"]} titles, cosine-normalised, recency weight
{settings["knn_decay"]:g}^(groups since watched)); nightly EASE (λ = {settings["ease_lambda"]:g}, the
{settings["ease_items"]:,} most watched titles, retrained at every day boundary of event time on
everything before it — exactly, by low-rank Woodbury updates, with the title set re-picked at every
20% growth of the log — and scored with the user's current history); nightly ALS (the `implicit`
library: {settings["als_factors"]} factors, λ = {settings["als_regularization"]:g}, a watch's confidence
α = {settings["als_alpha"]:g}, {settings["als_iterations"]} sweeps from a seeded start at every 20% growth of the log and, on
every other day boundary, the day's users then the day's titles re-solved against the other side;
scored with the user's current history folded in); random (seed {settings["seed"]}). streamrec is the served
top-picks row through `streamrec.recommend` (`evaluation/streamrec_method.py`).

{STREAMREC_COST}

"""
    body = []
    targets: list[str] = []
    for summary, plot in sections:
        body.append(markdown_report(summary, plot))
        targets += target_lines(summary)
    return head + "## Results\n\n" + "\n".join(body) + "\n## Targets (issue 15)\n\n" + "\n".join(targets) + "\n"
