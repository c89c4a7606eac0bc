"""Loaders for rating logs: MovieLens ``ratings.csv`` / ``ratings.dat`` / ``u.data`` and MovieTweetings.

Layouts (``LogFormat``):

- ``csv``: ``userId,movieId,rating,timestamp`` with a header line (ml-latest-small; CRLF allowed);
- ``dat``: ``user::item::rating::timestamp`` (ml-1m, ml-10m, MovieTweetings);
- ``udata``: tab-separated ``user item rating timestamp``, no header (ml-100k).

``load_log(path, fmt=None)`` takes a file or a folder holding one of ``ratings.csv``,
``ratings.dat`` or ``u.data``; the layout is detected from the first line unless given. Ids stay
the strings written in the file (MovieTweetings' ``0104257`` keeps its zero). Timestamps are Unix
seconds in every layout and become epoch milliseconds. Title metadata (``movies.csv``,
``movies.dat``) beside the ratings is read into a catalog when present.
"""

from __future__ import annotations

import csv
import enum
from dataclasses import dataclass, field
from pathlib import Path

from streamrec.events.model import CatalogItem, EventType, UserEvent

RATING_FILES = ("ratings.csv", "ratings.dat", "u.data")


class LogFormat(str, enum.Enum):
    CSV = "csv"
    DAT = "dat"
    UDATA = "udata"


class RatingLogError(ValueError):
    """A rating log that cannot be read; the message names the file, line, field and reason."""


@dataclass(frozen=True, slots=True)
class Rating:
    user: str
    item: str
    rating: float
    timestamp_ms: int


@dataclass(slots=True)
class RatingLog:
    """A whole rating log in file order, plus the titles' metadata when the data set ships it."""

    name: str
    path: Path
    format: LogFormat
    ratings: list[Rating]
    catalog: dict[str, CatalogItem] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ratings)


def to_event(r: Rating) -> UserEvent:
    """The rating as the product's event: a ``rate`` of that title at that time."""
    return UserEvent(
        event_id=f"{r.user}:{r.item}:{r.timestamp_ms}",
        event_type=EventType.RATE,
        user_id=r.user,
        timestamp=r.timestamp_ms,
        video_id=r.item,
        rating=r.rating,
    )


def find_ratings_file(path: Path) -> Path:
    """``path`` itself if it is a file, else the first known ratings file inside the folder."""
    if path.is_file():
        return path
    if path.is_dir():
        for name in RATING_FILES:
            if (path / name).is_file():
                return path / name
        raise RatingLogError(f"{path}: no rating file found (looked for {', '.join(RATING_FILES)})")
    raise RatingLogError(f"{path}: no such file or folder")


def detect_format(first_line: str) -> LogFormat:
    """Tell the layout from the first line of the file."""
    if "::" in first_line:
        return LogFormat.DAT
    if "\t" in first_line:
        return LogFormat.UDATA
    if "," in first_line:
        return LogFormat.CSV
    raise RatingLogError(f"cannot detect the layout from the first line {first_line[:80]!r}")


def _split(line: str, fmt: LogFormat) -> list[str]:
    if fmt is LogFormat.DAT:
        return line.split("::")
    if fmt is LogFormat.UDATA:
        return line.split("\t")
    return line.split(",")


def parse_line(line: str, fmt: LogFormat, where: str) -> Rating:
    """One rating from one line; ``where`` ("file:line") prefixes any error."""
    parts = [p.strip() for p in _split(line, fmt)]
    if len(parts) < 4:
        raise RatingLogError(f"{where}: expected 4 fields (user, item, rating, timestamp), got {len(parts)}")
    user, item, rating_text, ts_text = parts[:4]
    if not user:
        raise RatingLogError(f"{where}: field 'user' is empty")
    if not item:
        raise RatingLogError(f"{where}: field 'item' is empty")
    try:
        rating = float(rating_text)
    except ValueError:
        raise RatingLogError(f"{where}: field 'rating' is not a number: {rating_text!r}") from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise RatingLogError(f"{where}: field 'timestamp' is not whole Unix seconds: {ts_text!r}") from None
    if ts < 0:
        raise RatingLogError(f"{where}: field 'timestamp' is negative: {ts}")
    return Rating(user=user, item=item, rating=rating, timestamp_ms=ts * 1000)


def _is_header(line: str) -> bool:
    first = line.split(",", 1)[0].strip().lower()
    return first in {"userid", "user_id", "user"}


def read_ratings(path: Path, fmt: LogFormat | None = None) -> tuple[LogFormat, list[Rating]]:
    """All ratings of one file, in file order."""
    text = path.read_text(encoding="utf-8", errors="strict")
    lines = text.splitlines()  # handles CRLF and LF alike
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise RatingLogError(f"{path}: the file holds no ratings")
    fmt = fmt or detect_format(first)
    ratings: list[Rating] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if fmt is LogFormat.CSV and not ratings and _is_header(line):
            continue
        ratings.append(parse_line(line, fmt, f"{path}:{number}"))
    if not ratings:
        raise RatingLogError(f"{path}: the file holds no ratings")
    return fmt, ratings


def read_catalog(folder: Path) -> dict[str, CatalogItem]:
    """Titles and genres from ``movies.csv`` or ``movies.dat`` beside the ratings; empty if neither."""
    catalog: dict[str, CatalogItem] = {}
    csv_path, dat_path = folder / "movies.csv", folder / "movies.dat"
    if csv_path.is_file():
        with open(csv_path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                genres = tuple(g for g in row.get("genres", "").split("|") if g and g != "(no genres listed)")
                catalog[row["movieId"]] = CatalogItem(video_id=row["movieId"], title=row["title"], genres=genres)
    elif dat_path.is_file():
        for line in dat_path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("::")
            if len(parts) >= 2 and parts[0]:
                genres = tuple(g for g in (parts[2] if len(parts) > 2 else "").split("|") if g)
                catalog[parts[0]] = CatalogItem(video_id=parts[0], title=parts[1], genres=genres)
    return catalog


def load_log(path: str | Path, fmt: LogFormat | str | None = None) -> RatingLog:
    """Read a rating log (file or folder); ``fmt`` forces a layout, else it is detected."""
    ratings_file = find_ratings_file(Path(path))
    given = LogFormat(fmt) if fmt is not None else None
    detected, ratings = read_ratings(ratings_file, given)
    folder = ratings_file.parent
    name = folder.name if ratings_file.name in RATING_FILES else ratings_file.stem
    return RatingLog(name=name, path=ratings_file, format=detected, ratings=ratings, catalog=read_catalog(folder))
