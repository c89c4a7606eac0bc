"""Rating logs: the one reader (one ``Rating``, one star rule, one event-id scheme) for the demo,
the backfill, the benches and the evaluation, and ratings turned into realistic watch events.

A rating says "this viewer watched this title and thought this of it". The replay expands each
rating into the session a player would have reported: ``play``, a few ``heartbeat``s, then
``complete`` when the rating is good (``stars >= policy.complete_at``) or a ``pause`` halfway when
it is not, then ``rate``, and ``like``/``dislike`` for strong opinions. Dataset ids are kept as
they are (MovieLens user ``1``, title ``318``) so anyone can find a viewer or a film they know.

Everything here is pure and deterministic: the same rating always gives the same events with the
same ``event_id`` (a UUID5 of the rating), so replaying a log twice never double-counts in a
pipeline that de-duplicates by id. Regions, devices and title durations are derived from the ids
with CRC-32 (stable across processes, unlike ``hash``).

Layouts (:class:`LogFormat`, detected from the first line): MovieLens ``ratings.csv``
(``userId,movieId,rating,timestamp``, 0.5–5 stars), ``ratings.dat`` (``user::item::rating::ts``:
MovieLens 1M/10M on 1–5, MovieTweetings on 0–10) and ``u.data`` (ml-100k, tab-separated); titles
from ``movies.csv`` (``movieId,title,genres``, the title ending in ``(year)``) or ``movies.dat``
(``item::title (year)::genres``). Every rating becomes 1–5 stars in half steps (:func:`to_stars`).
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.events.model import CatalogItem, EventType, UserEvent

#: Regions the demo spreads viewers over (one per viewer, from the user id).
REGIONS: tuple[str, ...] = ("US", "GB", "DE", "BR", "IN")
DEVICES: tuple[str, ...] = ("tv", "web", "mobile", "tablet")
#: Namespace of the deterministic event ids (UUID5 over the rating and the event's place in it).
EVENT_NAMESPACE = uuid.UUID("6f1d3c2a-52f4-4d8e-9a53-7b1e0c6d9e41")

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:[–-]\d{0,4})?\)\s*$")
# MovieLens moves leading articles to the end: "Shawshank Redemption, The".
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+?), (?P<article>The|A|An|La|Le|Les|Il|Das|Der|Die|El)(?P<aka> \(.+\))?$"
)


class DatasetError(ValueError):
    """A dataset folder or one of its lines cannot be read; the message names file, line and field."""


@dataclass(frozen=True, slots=True)
class Rating:
    """One line of a rating log, on a 1–5 star scale whatever the source scale was."""

    user_id: str
    video_id: str
    stars: float
    timestamp: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How a rating becomes a viewing session.

    ``session_ms`` is the event-time span of one whole session: the replay compresses a film of
    ~100 minutes into this many milliseconds, so a live replay shows many sessions per second.
    """

    complete_at: float = 3.0  # stars at or above: watched to the end; below: stopped halfway
    like_at: float = 4.5  # stars at or above also send a like
    dislike_at: float = 2.0  # stars at or below also send a dislike (as recommend.state reads a rating)
    heartbeats: int = 3  # heartbeats over the watched part
    stop_fraction: float = 0.5  # where a viewer who did not like it stops
    session_ms: int = 2_000

    def __post_init__(self) -> None:
        if not 1.0 <= self.dislike_at < self.complete_at <= self.like_at <= 5.0:
            raise ValueError(
                "thresholds: need 1 <= dislike_at < complete_at <= like_at <= 5, "
                f"got dislike_at={self.dislike_at}, complete_at={self.complete_at}, like_at={self.like_at}"
            )
        if self.heartbeats < 0:
            raise ValueError(f"heartbeats: must be >= 0, got {self.heartbeats}")
        if not 0.0 < self.stop_fraction < 1.0:
            raise ValueError(f"stop_fraction: must be in (0, 1), got {self.stop_fraction}")
        if self.session_ms < 0:
            raise ValueError(f"session_ms: must be >= 0, got {self.session_ms}")


DEFAULT_POLICY = SessionPolicy()


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def region_for(user_id: str, regions: Sequence[str] = REGIONS) -> str:
    """The viewer's region: fixed per user id, spread evenly over ``regions``."""
    return regions[_stable(user_id) % len(regions)]


def device_for(user_id: str) -> str:
    return DEVICES[_stable("device:" + user_id) % len(DEVICES)]


def title_duration_sec(video_id: str) -> float:
    """A plausible feature length (80–150 minutes, whole minutes), fixed per title."""
    return float(60 * (80 + _stable("duration:" + video_id) % 71))


def parse_title(raw: str) -> tuple[str, int | None]:
    """``"Shawshank Redemption, The (1994)"`` -> ``("The Shawshank Redemption", 1994)``."""
    text = raw.strip()
    year: int | None = None
    match = _TITLE_YEAR.match(text)
    if match:
        text, year = match.group("title").strip(), int(match.group("year"))
    article = _TRAILING_ARTICLE.match(text)
    if article:
        text = f"{article.group('article')} {article.group('rest')}{article.group('aka') or ''}"
    return text, year


def parse_genres(raw: str) -> tuple[str, ...]:
    return tuple(g for g in (part.strip() for part in raw.split("|")) if g and g != "(no genres listed)")


# -- reading a rating log ---------------------------------------------------------------------
RATING_FILES = ("ratings.csv", "ratings.dat", "u.data")


class LogFormat(str, enum.Enum):
    """Rating-log layouts: ``csv`` ``userId,movieId,rating,timestamp`` with a header (MovieLens
    latest), ``dat`` ``user::item::rating::timestamp`` (ml-1m/10m, MovieTweetings), ``udata``
    tab-separated without a header (ml-100k)."""

    CSV = "csv"
    DAT = "dat"
    UDATA = "udata"


def find_ratings_file(path: Path) -> Path:
    """``path`` itself if it is a file, else the first known ratings file inside the folder."""
    if path.is_file():
        return path
    if path.is_dir():
        for name in RATING_FILES:
            if (path / name).is_file():
                return path / name
        raise DatasetError(f"{path}: no rating file found (looked for {', '.join(RATING_FILES)})")
    raise DatasetError(f"{path}: no such file or folder")


def detect_format(first_line: str) -> LogFormat:
    """Tell the layout from the first line of the file."""
    if "::" in first_line:
        return LogFormat.DAT
    if "\t" in first_line:
        return LogFormat.UDATA
    if "," in first_line:
        return LogFormat.CSV
    raise DatasetError(f"cannot detect the layout from the first line {first_line[:80]!r}")


def _fields(line: str, fmt: LogFormat, where: str) -> tuple[str, str, float, int]:
    sep = {LogFormat.DAT: "::", LogFormat.UDATA: "\t", LogFormat.CSV: ","}[fmt]
    parts = [p.strip() for p in line.split(sep)]
    if len(parts) < 4:
        raise DatasetError(f"{where}: expected 4 fields (user, item, rating, timestamp), got {len(parts)}")
    user, item, value, ts = parts[:4]
    if not user:
        raise DatasetError(f"{where}: field 'user' is empty")
    if not item:
        raise DatasetError(f"{where}: field 'item' is empty")
    try:
        raw = float(value)
    except ValueError:
        raise DatasetError(f"{where}: field 'rating' is not a number: {value!r}") from None
    try:
        seconds = int(ts)
    except ValueError:
        raise DatasetError(f"{where}: field 'timestamp' is not whole Unix seconds: {ts!r}") from None
    if seconds < 0:
        raise DatasetError(f"{where}: field 'timestamp' is negative: {seconds}")
    if not 0.0 <= raw <= 10.0:
        raise DatasetError(f"{where}: field 'rating' is outside 0..10: {raw}")
    return user, item, raw, seconds


def read_ratings(path: Path, fmt: LogFormat | None = None) -> tuple[LogFormat, list[Rating]]:
    """All ratings of one file, in file order, as stars (:func:`to_stars`).

    The source scale: 5 for ``csv`` and ``udata``; for ``dat`` 10 when any rating is above 5
    (MovieTweetings), else 5 (MovieLens 1M/10M).
    """
    lines = path.read_text(encoding="utf-8", errors="strict").splitlines()  # CRLF and LF alike
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise DatasetError(f"{path}: the file holds no ratings")
    fmt = fmt or detect_format(first)
    rows: list[tuple[str, str, float, int]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if fmt is LogFormat.CSV and not rows and line.split(",", 1)[0].strip().lower() in {"userid", "user_id", "user"}:
            continue  # the header
        rows.append(_fields(line, fmt, f"{path}:{number}"))
    if not rows:
        raise DatasetError(f"{path}: the file holds no ratings")
    scale = 10.0 if fmt is LogFormat.DAT and max(r[2] for r in rows) > 5.0 else 5.0
    return fmt, [Rating(user, item, to_stars(raw, scale), ts) for user, item, raw, ts in rows]


def dataset_layout(dataset: Path) -> str:
    """``"movielens"`` or ``"movietweetings"``: a folder the demo can replay (ratings and titles)."""
    if (dataset / "ratings.csv").exists() and (dataset / "movies.csv").exists():
        return "movielens"
    if (dataset / "ratings.dat").exists() and (dataset / "movies.dat").exists():
        return "movietweetings"
    raise DatasetError(
        f"dataset: {dataset} holds neither ratings.csv+movies.csv (MovieLens) "
        "nor ratings.dat+movies.dat (MovieTweetings)"
    )


def load_catalog(dataset: Path) -> list[CatalogItem]:
    """Every title of the dataset folder (``movies.csv`` or ``movies.dat``) as a catalog item, in
    file order."""
    if not (dataset / "movies.csv").is_file() and not (dataset / "movies.dat").is_file():
        dataset_layout(dataset)  # raises, naming what a dataset folder must hold
    items: list[CatalogItem] = []
    if (dataset / "movies.csv").is_file():
        path = dataset / "movies.csv"
        with path.open(newline="", encoding="utf-8") as f:
            for line_no, row in enumerate(csv.DictReader(f), start=2):
                try:
                    items.append(catalog_item(row["movieId"], row["title"], row["genres"]))
                except (KeyError, TypeError) as e:
                    raise DatasetError(f"{path}:{line_no}: missing column {e}") from e
    else:
        path = dataset / "movies.dat"
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                parts = line.rstrip("\n").split("::")
                if len(parts) != 3:
                    raise DatasetError(f"{path}:{line_no}: expected item::title::genres, got {line!r}")
                items.append(catalog_item(*parts))
    return items


def catalog_item(video_id: str, raw_title: str, raw_genres: str) -> CatalogItem:
    if not video_id.strip():
        raise DatasetError("video_id: empty")
    title, year = parse_title(raw_title)
    return CatalogItem(
        video_id=video_id.strip(),
        title=title,
        genres=parse_genres(raw_genres),
        release_year=year,
        duration_sec=title_duration_sec(video_id.strip()),
    )


#: A title of a rating log is added to the catalog this long before its first rating's session
#: starts (logs have no "added" date; the first rating stands for the day it went live).
ADDED_BEFORE_FIRST_MS = 60_000


def first_rated(ratings: Iterable[Rating]) -> dict[str, int]:
    """Each title's first rating time (epoch seconds) in ``ratings``."""
    first: dict[str, int] = {}
    for r in ratings:
        if r.video_id not in first or r.timestamp < first[r.video_id]:
            first[r.video_id] = r.timestamp
    return first


def with_added_at(items: Iterable[CatalogItem], ratings: Iterable[Rating],
                  policy: SessionPolicy | None = None) -> Iterator[CatalogItem]:
    """``items`` with ``added_at`` from ``ratings``: just before the session of each title's first
    rating (:func:`history_events` times); a title not rated there is not released yet (``None``)."""
    session_ms = (policy or DEFAULT_POLICY).session_ms
    first = first_rated(ratings)
    for item in items:
        at = first.get(item.video_id)
        added = None if at is None else at * 1000 - session_ms - ADDED_BEFORE_FIRST_MS
        yield dataclasses.replace(item, added_at=added) if added != item.added_at else item


def load_ratings(dataset: Path, fmt: LogFormat | None = None) -> list[Rating]:
    """Every rating of a log (a file, or the folder holding it), ordered by time (then user, then
    title, so the order is total)."""
    _, ratings = read_ratings(find_ratings_file(Path(dataset)), fmt)
    ratings.sort(key=lambda r: (r.timestamp, r.user_id, r.video_id))
    return ratings


@dataclass(slots=True)
class RatingLog:
    """A whole rating log in file order, with its titles when the data set ships them."""

    name: str
    path: Path
    format: LogFormat
    ratings: list[Rating]
    catalog: dict[str, CatalogItem] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ratings)


def load_log(path: str | Path, fmt: LogFormat | str | None = None) -> RatingLog:
    """A rating log (file or folder) in file order; ``fmt`` forces a layout, else it is detected.
    The catalog is read when a movies file lies beside the ratings (else it is empty)."""
    ratings_file = find_ratings_file(Path(path))
    detected, ratings = read_ratings(ratings_file, LogFormat(fmt) if fmt is not None else None)
    folder = ratings_file.parent
    name = folder.name if ratings_file.name in RATING_FILES else ratings_file.stem
    has_titles = (folder / "movies.csv").is_file() or (folder / "movies.dat").is_file()
    catalog = {item.video_id: item for item in load_catalog(folder)} if has_titles else {}
    return RatingLog(name=name, path=ratings_file, format=detected, ratings=ratings, catalog=catalog)


def to_stars(value: float, scale: float) -> float:
    """A rating on ``0..scale`` as 1–5 stars in half steps (the contract's range)."""
    stars = round(value * 5.0 / scale * 2.0) / 2.0
    return min(5.0, max(1.0, stars))


def split_history(ratings: Sequence[Rating], bootstrap_fraction: float) -> tuple[Sequence[Rating], Sequence[Rating]]:
    """The first ``bootstrap_fraction`` of a time-ordered log (for the backfill) and the rest (live)."""
    if not 0.0 <= bootstrap_fraction <= 1.0:
        raise ValueError(f"bootstrap_fraction: must be in [0, 1], got {bootstrap_fraction}")
    cut = int(len(ratings) * bootstrap_fraction)
    return ratings[:cut], ratings[cut:]


# -- ratings -> events -------------------------------------------------------------------------
def session_events(
    rating: Rating,
    *,
    start_ms: int,
    duration_sec: float | None = None,
    policy: SessionPolicy = DEFAULT_POLICY,
) -> list[UserEvent]:
    """The events one viewing session reports, the first at ``start_ms``, the last (rate, and a
    like/dislike) at ``start_ms + policy.session_ms``; positions cover the real film length."""
    duration = duration_sec if duration_sec is not None else title_duration_sec(rating.video_id)
    if duration <= 0:
        raise ValueError(f"duration_sec: must be > 0, got {duration}")
    finished = rating.stars >= policy.complete_at
    watched = duration if finished else round(duration * policy.stop_fraction)
    span = policy.session_ms
    common = {
        "user_id": rating.user_id,
        "video_id": rating.video_id,
        "region": region_for(rating.user_id),
        "device": device_for(rating.user_id),
    }

    def event(kind: EventType, at_fraction: float, **fields: object) -> UserEvent:
        index = len(events)
        return UserEvent(
            event_id=event_id(rating, index, kind),
            event_type=kind,
            timestamp=start_ms + round(span * at_fraction),
            **common,  # type: ignore[arg-type]
            **fields,  # type: ignore[arg-type]
        )

    events: list[UserEvent] = []
    # The watched part takes 80% of the session; the verdict (rate, like) comes at its end.
    watch_share = 0.8 * (watched / duration)
    events.append(event(EventType.PLAY, 0.0, position_sec=0.0, duration_sec=duration))
    for beat in range(1, policy.heartbeats + 1):
        share = beat / (policy.heartbeats + 1)
        events.append(
            event(
                EventType.HEARTBEAT,
                watch_share * share,
                position_sec=float(round(watched * share)),
                duration_sec=duration,
            )
        )
    end_kind = EventType.COMPLETE if finished else EventType.PAUSE
    events.append(event(end_kind, watch_share, position_sec=float(watched), duration_sec=duration))
    events.append(event(EventType.RATE, 1.0, rating=rating.stars))
    if rating.stars >= policy.like_at:
        events.append(event(EventType.LIKE, 1.0))
    elif rating.stars <= policy.dislike_at:
        events.append(event(EventType.DISLIKE, 1.0))
    return events


def event_id(rating: Rating, index: int, kind: EventType) -> str:
    """The one id scheme of events made from a rating: a UUID5 of the rating and the event's
    place in its session, so the same rating always gives the same ids (a replay is deduplicated)."""
    seed = f"{rating.user_id}|{rating.video_id}|{rating.timestamp}|{index}|{kind.value}"
    return str(uuid.uuid5(EVENT_NAMESPACE, seed))


def rating_event(rating: Rating) -> UserEvent:
    """The rating alone as one ``rate`` event at the rating's time (the evaluation's replay, which
    scores each rating as a watch; the demo and backfill send the whole session instead)."""
    return UserEvent(event_id=event_id(rating, 0, EventType.RATE), event_type=EventType.RATE,
                     user_id=rating.user_id, timestamp=rating.timestamp * 1000, video_id=rating.video_id,
                     rating=rating.stars)


def history_events(
    ratings: Iterable[Rating],
    durations: dict[str, float] | None = None,
    policy: SessionPolicy = DEFAULT_POLICY,
) -> Iterator[UserEvent]:
    """Sessions at their original time: each session ends when its rating was given (backfill)."""
    durations = durations or {}
    for rating in ratings:
        start = rating.timestamp * 1000 - policy.session_ms
        yield from session_events(rating, start_ms=start, duration_sec=durations.get(rating.video_id), policy=policy)
