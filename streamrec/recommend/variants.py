"""Ranking variants: named :class:`~streamrec.recommend.ranking.RankingConfig` an experiment can
give a share of the traffic (``streamrec.experiments``). ``blend`` is the hand-tuned control.

Add a variant here (a name and its configuration); an experiment naming a variant that is not in
this table is refused when it is set.
"""

from __future__ import annotations

from streamrec.recommend.ranking import DEFAULT_CONFIG, RankingConfig

CONTROL = "blend"

VARIANTS: dict[str, RankingConfig] = {
    # The evaluated blend (the defaults of RankingConfig).
    CONTROL: DEFAULT_CONFIG,
    # What is popular now weighs more: trending from 0.05 to 0.4, the co-watch evidence as is.
    "fresh": RankingConfig(weights={**DEFAULT_CONFIG.weights, "trending": 0.4}),
}


def ranking_config(variant: str | None) -> RankingConfig:
    """The ranking of ``variant``; the control's for ``None``, a holdout or a name no longer known
    (an experiment outlives a variant removed in a deploy: its viewers get the control)."""
    return VARIANTS.get(variant or CONTROL, DEFAULT_CONFIG)
