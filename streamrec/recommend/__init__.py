"""The recommendation maths, once: called by the pipelines, the feed service and the evaluation.

Pure functions over the shared types (:mod:`streamrec.events.model`, :mod:`streamrec.model`),
numpy only, no I/O, deterministic (ties broken by ``video_id``).

- :mod:`.state` - ``apply_event(state, event) -> UserUpdate``: the per-user state machine and the
  side effects the pipeline writes (directed co-watch increments, item counts, new watches,
  "refresh top picks").
- :mod:`.vectors` - the online user-vector rule (decayed fold-in) and item vectors as hashed random
  projections of co-watch rows.
- :mod:`.filters` - the title filter every answer passes (known to the catalog, region, maturity,
  excluded titles): ``title_allowed``, ``TitleFilter``.
- :mod:`.similarity` - co-watch similarity read at request time, content similarity,
  ``similar_titles`` ("more like this").
- :mod:`.trending` - top-N from counts (overall and per genre), decay helpers.
- :mod:`.releases` - new releases: a pool per region on the stream's clock, recency then momentum.
- :mod:`.ranking` - ``top_picks(user, RankingInputs(...), k)``: candidates, blend, filters, MMR.
"""

from streamrec.recommend.filters import (
    MATURITY_ORDER,
    TitleFilter,
    available_in,
    maturity_allowed,
    title_allowed,
)
from streamrec.recommend.ranking import (
    DEFAULT_CONFIG,
    SOURCES,
    RankingConfig,
    RankingInputs,
    blend,
    candidate_titles,
    diversify,
    seed_titles,
    source_scores,
    top_picks,
    user_genres,
)
from streamrec.recommend.releases import (
    ReleasePool,
    merge_releases,
    rank_releases,
    release_score,
)
from streamrec.recommend.similarity import (
    content_similarity,
    cowatch_similarity,
    similar_titles,
)
from streamrec.recommend.state import (
    EVENT_WEIGHTS,
    HISTORY_WEIGHTS,
    StateConfig,
    UserUpdate,
    apply_event,
    apply_events,
    vector_weight,
)
from streamrec.recommend.trending import (
    decay_factor,
    decayed_add,
    top_n,
    top_per_genre,
)
from streamrec.recommend.vectors import (
    VECTOR_DIM,
    fold_in,
    item_basis,
    item_vector,
    item_vector_increments,
    vector_scores,
)

__all__ = [
    "DEFAULT_CONFIG",
    "EVENT_WEIGHTS",
    "HISTORY_WEIGHTS",
    "MATURITY_ORDER",
    "SOURCES",
    "VECTOR_DIM",
    "DecayedCounts",
    "RankingConfig",
    "RankingInputs",
    "ReleasePool",
    "StateConfig",
    "TitleFilter",
    "UserUpdate",
    "apply_event",
    "apply_events",
    "available_in",
    "blend",
    "candidate_titles",
    "content_similarity",
    "cowatch_similarity",
    "decay_factor",
    "decayed_add",
    "diversify",
    "fold_in",
    "item_basis",
    "item_vector",
    "item_vector_increments",
    "maturity_allowed",
    "merge_releases",
    "rank_releases",
    "release_score",
    "seed_titles",
    "similar_titles",
    "source_scores",
    "title_allowed",
    "top_n",
    "top_per_genre",
    "top_picks",
    "user_genres",
    "vector_scores",
    "vector_weight",
]
