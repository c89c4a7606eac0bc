"""Every answer body of the service, declared once (pydantic v2) for ``serving.openapi``.

The handlers build these answers as plain dicts (the feed's bytes are cached and served as they
are); the contract test (``tests/serving/test_contract.py``) checks every answer against the
schemas generated from here.
"""

from __future__ import annotations

import uuid
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

RowType = Literal["continue_watching", "top_picks", "because_you_watched", "trending_now", "new_releases", "genre"]
#: The rows of a feed, in page order.
ROW_TYPES: tuple[str, ...] = get_args(RowType)


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldProblem(_Answer):
    index: int | None = Field(None, description="The event's place in the batch")
    field: str
    reason: str


class EventOutcome(_Answer):
    index: int
    event_id: uuid.UUID
    status: Literal["accepted", "retry", "refused"] = Field(description=(
        "accepted: in Kafka; retry: not acknowledged in time (resend it with the same event_id); "
        "refused: refused by the broker for good"))
    reason: str | None = None


class Error(_Answer):
    error: str = Field(description="A machine-readable code")
    message: str
    errors: list[FieldProblem] | None = None
    accepted: int | None = Field(None, description="503/502 of POST /v1/events: events already in Kafka")
    events: list[EventOutcome] | None = Field(None, description="503/502 of POST /v1/events: every event's outcome")


class EventsAccepted(_Answer):
    accepted: int
    event_ids: list[uuid.UUID]
    events: list[EventOutcome]


class PreferencesAccepted(_Answer):
    accepted: Literal[1]
    event_id: uuid.UUID
    genres: list[str]


class Explanation(_Answer):
    """Why a top pick is there (``explain=true``)."""

    ranker: Literal["learned", "blend"]
    model_version: int | None = Field(None, description="the learned ranker's model version that scored it")
    contributions: dict[str, float] = Field(
        description="each feature's part of the score (learned: weight x feature; blend: weight x source score)")


class Item(_Answer):
    video_id: str
    thumbnail: str | None = None
    title: str | None = None
    genres: list[str] | None = None
    year: int | None = None
    type: str | None = None
    maturity: str | None = None
    match_score: float | None = Field(None, ge=0, le=1)
    progress_sec: int | None = None
    duration_sec: int | None = None
    score: float | None = None
    explain: Explanation | None = None


class Row(_Answer):
    type: RowType
    title: str
    seed_video_id: str | None = None
    genre: str | None = None
    items: list[Item]


class Feed(_Answer):
    user_id: str
    region: str
    generated_at: int = Field(description="Unix seconds")
    degraded: bool = Field(description="true: the last feed built or trending, the store was slow or down")
    rows: list[Row]
    experiment: str | None = Field(None, description="The experiment that ranked this feed (absent: none runs)")
    variant: str | None = Field(None, description="The viewer's variant in it (a ranking variant, or holdout)")


class Similar(_Answer):
    video_id: str
    title: str | None
    items: list[Item]


class Trending(_Answer):
    region: str
    window: str
    list_region: str | None = Field(description="Whose list it is: the region's, else global")
    window_end: float | None = Field(description="Unix seconds")
    updated_at: float | None = Field(description="Unix seconds")
    degraded: bool
    items: list[Item]


class Alive(_Answer):
    status: Literal["ok"]


class Ready(_Answer):
    ready: bool
    checks: dict[str, Literal["ok", "unavailable", "empty"]]


# -- GET /v1/experiments/{experiment_id} (streamrec.experiments.results) -------------------------


class Rate(_Answer):
    value: float | None = Field(description="successes / impressions (null: no impressions)")
    low: float = Field(ge=0, le=1, description="Wilson 95 % interval, lower end")
    high: float = Field(ge=0, le=1, description="Wilson 95 % interval, upper end")


class Counts(_Answer):
    impressions: int = Field(ge=0, description="Titles shown (one per title per feed row)")
    plays: int = Field(ge=0, description="Plays credited to those impressions (at most one per impression)")
    completes: int = Field(ge=0)
    play_rate: Rate
    complete_rate: Rate


class RowCounts(Counts):
    row: str


class PositionCounts(Counts):
    position: int = Field(ge=0, description="0-based place in the row (the last one: that place and beyond)")


class VariantResults(Counts):
    variant: str
    viewers: int = Field(ge=0, description="Viewer-days: viewers shown a feed, counted once per day")
    rows: list[RowCounts]
    positions: list[PositionCounts]


class Comparison(_Answer):
    variant: str
    metric: Literal["play_rate", "complete_rate"]
    lift: float | None = Field(description="rate / control rate - 1 (null: the control's rate is 0)")
    difference: float = Field(description="rate - control rate")
    z: float | None = Field(description="Pooled two-proportion z statistic")
    p_value: float | None = Field(description="Two-sided p-value (null: not enough data)")
    significant: bool = Field(description="p_value < 0.05")


class SampleRatio(_Answer):
    unit: Literal["viewer-days"]
    observed: dict[str, int]
    expected_shares: dict[str, float]
    chi_square: float
    dof: int
    p_value: float | None
    alpha: float
    mismatch: bool = Field(description="p_value < alpha: the split is not what was configured; distrust the lift")


class WindowVariant(_Answer):
    variant: str
    impressions: int
    plays: int
    completes: int
    viewers: int


class Window(_Answer):
    start: float = Field(description="Unix seconds (UTC day)")
    variants: list[WindowVariant]


class ExperimentVariant(_Answer):
    name: str
    share: float


class ExperimentConfig(_Answer):
    id: str
    salt: str
    control: str
    holdout: float
    start: float = Field(description="Unix seconds")
    stop: float | None = Field(description="Unix seconds (null: open-ended)")
    variants: list[ExperimentVariant]


class ExperimentResults(_Answer):
    experiment: ExperimentConfig
    running: bool
    control: str
    generated_at: float = Field(description="Unix seconds")
    variants: list[VariantResults]
    comparisons: list[Comparison]
    sample_ratio: SampleRatio
    windows: list[Window]
