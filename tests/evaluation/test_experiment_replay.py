"""The offline experiment: users split by the experiment's assignment, each arm ranked by its
variant, the same results document as the live route (``streamrec eval --experiment FILE``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.methods import EvalContext
from evaluation.protocol import build_schedule, run_experiment, run_method
from evaluation.streamrec_method import StreamrecMethod
from streamrec.experiments.config import assign, parse_experiment
from streamrec.recommend.variants import ranking_config
from streamrec_cli.evaluate import main as cli_main
from tests.evaluation.logs import as_log, random_ratings, write_csv

EXPERIMENT = {"id": "offline", "salt": "o", "start": 0,
              "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}


def test_each_arm_is_scored_on_its_own_users_with_the_live_routes_document() -> None:
    log = as_log(random_ratings(seed=3, users=30, events=500, days=30))
    schedule = build_schedule(log)
    context = EvalContext(dataset=log.name, catalog=log.catalog, seed=0)
    experiment = parse_experiment(EXPERIMENT)

    def factory_for(arm: str):  # type: ignore[no-untyped-def]
        return lambda ctx: StreamrecMethod(ctx, ranking_config=ranking_config(arm))

    document, results = run_experiment(schedule, experiment, factory_for, context, progress=False)
    by_arm = {v["variant"]: v for v in document["variants"]}  # type: ignore[attr-defined]
    for arm in ("blend", "fresh"):
        users = {g.user for g in schedule.groups if g.scored and g.targets and not g.cold}
        mine = {u for u in users if assign(experiment, u) == arm}
        # One impression per title served, one play per hit: the counts are the replay's own.
        assert by_arm[arm]["plays"] == int((results[arm].ranks > 0).sum() + (results[arm].cold_ranks > 0).sum())
        assert by_arm[arm]["impressions"] >= by_arm[arm]["plays"]
        assert mine and by_arm[arm]["viewers"] >= len(mine)
    # The blend arm's replay equals the plain replay of the blend restricted to its users.
    plain = run_method(schedule, lambda ctx: StreamrecMethod(ctx, ranking_config=ranking_config("blend")), context,
                       progress=False, only=lambda u: assign(experiment, u) == "blend")
    assert list(plain.ranks) == list(results["blend"].ranks)
    assert document["sample_ratio"]["unit"] == "viewer-days"  # type: ignore[index]
    assert set(document["offline"]) == {"blend", "fresh"}  # type: ignore[arg-type]


def test_the_command_prints_the_document_and_names_a_bad_field(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "tinylens"
    data.mkdir()
    write_csv(data / "ratings.csv", random_ratings(seed=4, events=300, days=30))
    spec = tmp_path / "experiment.json"
    spec.write_text(json.dumps(EXPERIMENT))
    assert cli_main(["--dataset", str(data), "--experiment", str(spec), "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dataset"] == "tinylens" and [v["variant"] for v in printed["variants"]] == ["blend", "fresh"]
    spec.write_text(json.dumps({**EXPERIMENT, "variants": [{"name": "blend", "share": 0.7}]}))
    assert cli_main(["--dataset", str(data), "--experiment", str(spec), "--no-progress"]) == 1
    assert "variants: shares must sum to 1" in capsys.readouterr().err
