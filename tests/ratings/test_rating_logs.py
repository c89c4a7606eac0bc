"""The one rating-log reader: the three layouts, detection, ids kept as written, stars from every
scale, one event-id scheme, errors that say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec.events.model import EventType
from streamrec.ratings import (
    DatasetError,
    LogFormat,
    detect_format,
    load_log,
    load_ratings,
    rating_event,
    session_events,
)


def test_csv_with_header_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\r\n1,31,2.5,1260759144\r\n1,1029,3.0,1260759179\r\n")
    (tmp_path / "movies.csv").write_bytes(
        b'movieId,title,genres\r\n31,"Dangerous Minds, The (1995)",Drama\r\n1029,Dumbo (1941)|x,(no genres listed)\r\n'
    )
    log = load_log(tmp_path)
    assert log.format is LogFormat.CSV
    assert [(r.user_id, r.video_id, r.stars, r.timestamp) for r in log.ratings] == [
        ("1", "31", 2.5, 1260759144),
        ("1", "1029", 3.0, 1260759179),
    ]
    assert log.catalog["31"].title == "The Dangerous Minds" and log.catalog["31"].release_year == 1995
    assert log.catalog["31"].genres == ("Drama",)
    assert log.catalog["1029"].genres == ()
    assert log.name == tmp_path.name


def test_dat_keeps_ids_as_written(tmp_path: Path) -> None:
    path = tmp_path / "ratings.dat"
    path.write_text("1::0104257::8::1364690142\n2::1074638::7::1365029107\n")
    (tmp_path / "movies.dat").write_text("0104257::A Few Good Men (1992)::Crime|Drama|Mystery\n")
    log = load_log(path)
    assert log.format is LogFormat.DAT
    assert log.ratings[0].video_id == "0104257"
    assert [r.stars for r in log.ratings] == [4.0, 3.5]  # MovieTweetings' 0-10 as half stars
    assert log.catalog["0104257"].genres == ("Crime", "Drama", "Mystery")


def test_udata_tab_separated_without_header(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    log = load_log(tmp_path)
    assert log.format is LogFormat.UDATA
    assert [r.user_id for r in log.ratings] == ["196", "186"]
    assert log.ratings[1].timestamp == 891717742


def test_format_given_overrides_detection(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("7,8,4,100\n")  # no header: a csv that detection also reads, forced here
    assert load_log(path, "csv").ratings[0].video_id == "8"
    with pytest.raises(DatasetError, match="expected 4 fields"):
        load_log(path, LogFormat.DAT)


def test_detect_format() -> None:
    assert detect_format("1::2::3::4") is LogFormat.DAT
    assert detect_format("1\t2\t3\t4") is LogFormat.UDATA
    assert detect_format("userId,movieId,rating,timestamp") is LogFormat.CSV
    with pytest.raises(DatasetError, match="cannot detect"):
        detect_format("1 2 3 4")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1,2,good,100", "field 'rating' is not a number"),
        ("1,2,4,yesterday", "field 'timestamp' is not whole Unix seconds"),
        (",2,4,100", "field 'user' is empty"),
        ("1,,4,100", "field 'item' is empty"),
        ("1,2,4", "expected 4 fields"),
        ("1,2,4,-5", "field 'timestamp' is negative"),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(f"userId,movieId,rating,timestamp\n1,1,4,1\n{line}\n")
    with pytest.raises(DatasetError, match=message) as info:
        load_log(path)
    assert f"{path}:3" in str(info.value)


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_log(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="no rating file found"):
        load_log(tmp_path)
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(DatasetError, match="holds no ratings"):
        load_log(tmp_path)


def test_a_dat_log_on_five_stars_stays_on_five_stars(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::10::5::100\n1::11::1::200\n")  # MovieLens 1M layout
    assert [r.stars for r in load_ratings(tmp_path)] == [5.0, 1.0]


def test_rating_becomes_a_rate_event_with_the_sessions_id_scheme(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("5\t9\t4\t1000\n")
    rating = load_log(tmp_path).ratings[0]
    event = rating_event(rating)
    assert (event.event_type, event.user_id, event.video_id, event.rating, event.timestamp) == (
        EventType.RATE, "5", "9", 4.0, 1_000_000)
    assert event.event_id == rating_event(rating).event_id  # deterministic
    session_ids = {e.event_id for e in session_events(rating, start_ms=0)}
    assert len(session_ids | {event.event_id}) == len(session_ids) + 1  # one scheme, no collision


def test_shared_movielens(movielens_dir: Path) -> None:
    log = load_log(movielens_dir)
    assert len(log) == 100_836
    assert len({r.user_id for r in log.ratings}) == 610
    assert len({r.video_id for r in log.ratings}) == 9_724
    assert all(r.video_id in log.catalog for r in log.ratings)


def test_shared_movietweetings(movietweetings_dir: Path) -> None:
    log = load_log(movietweetings_dir)
    assert len(log) == 100_000
    assert log.format is LogFormat.DAT
    assert any(r.video_id.startswith("0") for r in log.ratings)  # zero-padded IMDb ids survive
    assert min(r.stars for r in log.ratings) == 1.0 and max(r.stars for r in log.ratings) == 5.0
