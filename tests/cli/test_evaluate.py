"""``streamrec eval`` logic end to end on a small log: JSON, markdown, plot, page, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamrec_cli.evaluate import main as cli_main
from tests.evaluation.logs import random_ratings, write_csv

BASELINES = "popular,trending,trending_tuned,itemknn_stream,ease_nightly,als_nightly,random"


def test_json_out_and_quality_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tinylens"
    data.mkdir()
    write_csv(data / "ratings.csv", random_ratings(seed=4, events=400, days=40))
    out, doc = tmp_path / "docs" / "quality", tmp_path / "docs" / "quality.md"
    code = cli_main(["--dataset", str(data), "--format", "json", "--out", str(out), "--doc", str(doc),
                     "--methods", BASELINES, "--no-progress"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dataset"] == "tinylens" and summary["events"] == 400
    assert 0 < summary["scored"] < 400
    assert list(summary["methods"]) == BASELINES.split(",")
    for values in summary["methods"].values():
        assert set(values) == {"hr@10", "ndcg@10", "mrr", "cold_hr@10", "coverage", "seconds"}
        assert 0.0 <= values["hr@10"] <= 1.0 and values["ndcg@10"] <= values["hr@10"]
    assert summary["methods"]["popular"]["hr@10"] > summary["methods"]["random"]["hr@10"]
    assert (out / "tinylens-hr10.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "tinylens.json").read_text()) == summary
    assert "| itemknn_stream |" in (out / "tinylens.md").read_text()
    page = doc.read_text()
    assert "](quality/tinylens-hr10.png)" in page and "| ease_nightly |" in page
    assert "streamrec was not evaluated" in page  # only baselines were asked for


def test_markdown_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_csv(tmp_path / "ratings.csv", random_ratings(seed=2, events=200))
    assert cli_main(["--dataset", str(path), "--methods", "streamrec,popular", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| popular |" in printed and "| streamrec |" in printed


def test_a_method_that_crashes_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a crash of the method under test was swallowed into a note (exit code read off
    the note's text); it must fail the run with its own error."""
    from evaluation import streamrec_method

    def broken(context: object) -> object:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(streamrec_method, "create", broken)
    path = write_csv(tmp_path / "ratings.csv", random_ratings(seed=2, events=200))
    with pytest.raises(RuntimeError, match="adapter bug"):
        cli_main(["--dataset", str(path), "--methods", "streamrec,popular", "--no-progress"])


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "ratings.dat"
    path.write_text("1::2::5::100\n1::3::five::200\n")
    assert cli_main(["--dataset", str(path), "--no-progress"]) == 1
    assert "ratings.dat:2: field 'rating' is not a number" in capsys.readouterr().err
    assert cli_main(["--dataset", str(path), "--methods", "popular,magic"]) == 1
    assert "unknown method(s) magic" in capsys.readouterr().err
