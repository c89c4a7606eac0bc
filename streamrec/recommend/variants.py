"""Ranking variants: named :class:`~streamrec.recommend.ranking.RankingConfig` an experiment can
give a share of the traffic (``streamrec.experiments``). ``blend`` is the hand-tuned blend,
``learned`` the learned ranker (``streamrec.recommend.learned``), which every viewer outside an
experiment gets (:data:`SERVED`).

Add a variant here (a name and its configuration); an experiment naming a variant that is not in
this table is refused when it is set.
"""

from __future__ import annotations

from streamrec.recommend.ranking import DEFAULT_CONFIG, RankingConfig

CONTROL = "blend"
#: The ranking served outside experiments (and to a holdout, and for a variant no longer known):
#: the learned ranker, ahead of the blend on both shared logs in ``make eval`` (docs/ranking.md).
SERVED = "learned"

VARIANTS: dict[str, RankingConfig] = {
    # The evaluated blend (the defaults of RankingConfig).
    CONTROL: DEFAULT_CONFIG,
    # What is popular now weighs more: trending from 0.05 to 0.4, the co-watch evidence as is.
    "fresh": RankingConfig(weights={**DEFAULT_CONFIG.weights, "trending": 0.4}),
    # The learned ranker, its first model version the blend's weights.
    SERVED: RankingConfig(learned=True),
}


def ranking_config(variant: str | None) -> RankingConfig:
    """The ranking of ``variant``; the served one's for ``None``, a holdout or a name no longer
    known (an experiment outlives a variant removed in a deploy: its viewers get the served one)."""
    return VARIANTS.get(variant or SERVED, VARIANTS[SERVED])
