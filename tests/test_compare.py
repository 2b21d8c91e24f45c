"""Run comparison: the CI gate on real simulated runs of AIME 2025, paired by problem.

The simulator decides whether an answer is right from the request's seed and prompt, so two
runs with the same run seed draw the same random number per attempt: the run at accuracy
0.70 is the run at 0.85 with about 15 points of its right answers turned wrong (a coupled,
known drop). The rerun uses another run seed (fresh draws) at the same accuracy.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from evals import api
from evals.cli_reports import compare
from evals.comparison import bootstrap_mean_interval
from evals.errors import DataError
from evals.runner import RunConfig, run
from evals.simulator import AnswerBook, SimConfig, SimulatorThread


def _make_run(out: Path, data: Path, accuracy: float, run_seed: int, sim_seed: int,
              n: int = 4, model: str = "sim-reasoner") -> Path:
    book = AnswerBook.from_tasks(["aime2025"], {"aime2025": data})
    with SimulatorThread(SimConfig(accuracy=accuracy, seed=sim_seed), book) as sim:
        cfg = RunConfig(tasks=("aime2025",), model=model, provider="simulator",
                        base_url=sim.base_url, n=n, data=(("aime2025", data),),
                        seed=run_seed, out=out, concurrency=32)
        asyncio.run(run(cfg))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, aime2025_path: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    return {
        "base": _make_run(root / "base", aime2025_path, 0.85, run_seed=11, sim_seed=1),
        "worse": _make_run(root / "worse", aime2025_path, 0.70, run_seed=11, sim_seed=2),
        "rerun": _make_run(root / "rerun", aime2025_path, 0.85, run_seed=12, sim_seed=3),
    }


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(compare, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_run_15_points_worse_fails_the_gate(runs):
    code, out, _ = _invoke(str(runs["base"]), str(runs["worse"]), "--fail-on-drop", "5")
    assert code == 1, out
    assert "FAIL" in out and "aime2025" in out
    row = api.compare(runs["base"], runs["worse"]).tasks.iloc[0]
    assert -22 < row.delta < -8 and row.ci_high < 0
    assert row.problems == 30 and row.unpaired == 0


def test_a_rerun_at_the_same_accuracy_passes(runs):
    code, out, _ = _invoke(str(runs["base"]), str(runs["rerun"]), "--fail-on-drop", "5")
    assert code == 0, out
    assert "pass" in out
    row = api.compare(runs["base"], runs["rerun"]).tasks.iloc[0]
    assert row.ci_low <= 0 <= row.ci_high


def test_without_fail_on_drop_a_drop_still_exits_0(runs):
    code, out, _ = _invoke(str(runs["base"]), str(runs["worse"]))
    assert code == 0 and "Gate" not in out


def test_the_flipped_problems_are_the_ones_that_differ_in_the_two_tables(runs):
    left = pd.read_parquet(runs["base"] / "samples.parquet")
    right = pd.read_parquet(runs["worse"] / "samples.parquet")
    both = left.merge(right, on=["task", "sample_id", "repeat"], suffixes=("_b", "_n"))
    differ = both[both["correct_b"] != both["correct_n"]]
    result = api.compare(runs["base"], runs["worse"])
    assert set(result.flipped["sample_id"]) == set(differ["sample_id"])
    lost = differ[differ["correct_b"]].groupby("sample_id").size()
    assert result.flipped.set_index("sample_id")["lost"].to_dict() == lost.to_dict()
    # The coupled draws only turn right answers wrong: every flip is a loss.
    assert set(result.flipped["direction"]) == {"worse"}
    assert result.tasks.iloc[0].worse == len(set(differ["sample_id"]))
    # ... and the command lists exactly those problems.
    _, out, _ = _invoke(str(runs["base"]), str(runs["worse"]))
    for sid in differ["sample_id"].unique():
        assert f"aime2025/{sid} " in out
    same = both[both["correct_b"] == both["correct_n"]]["sample_id"]
    for sid in set(same) - set(differ["sample_id"]):
        assert f"aime2025/{sid} " not in out


def test_flips_each_way_on_the_rerun(runs):
    result = api.compare(runs["base"], runs["rerun"])
    directions = set(result.flipped["direction"])
    assert {"worse", "better"} <= directions
    row = result.tasks.iloc[0]
    assert row.lost == result.flipped["lost"].sum() and row.gained == result.flipped[
        "gained"].sum()
    # The run seed differs, and so does the simulator's port: both are listed.
    settings = set(result.settings["setting"])
    assert {"seed", "endpoint.base_url"} <= settings


def test_markdown_for_a_pull_request_comment(runs):
    code, out, _ = _invoke(str(runs["base"]), str(runs["worse"]), "--format", "md",
                           "--fail-on-drop", "5")
    assert code == 1
    assert out.startswith("## Run comparison")
    assert "| task | problems |" in out and "|---|" in out
    assert "**Gate (--fail-on-drop 5 points): FAIL" in out


def test_the_interval_is_the_same_on_every_call(runs):
    a = api.compare(runs["base"], runs["rerun"]).tasks
    b = api.compare(runs["base"], runs["rerun"]).tasks
    pd.testing.assert_frame_equal(a, b)


def test_runs_of_different_tasks_are_one_clear_error(runs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    base = pd.read_parquet(runs["base"] / "samples.parquet")
    base.assign(task="math500").to_parquet(other / "samples.parquet")
    (other / "manifest.json").write_text((runs["base"] / "manifest.json").read_text())
    code, out, err = _invoke(str(runs["base"]), str(other), "--fail-on-drop", "1")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nothing to pair" in lines[0] and "math500" in lines[0]


def test_a_folder_that_is_not_a_run_is_one_clear_error(runs, tmp_path):
    code, _, err = _invoke(str(runs["base"]), str(tmp_path / "missing"))
    assert code == 2 and "not a run folder" in err and len(err.strip().splitlines()) == 1


def test_a_drop_smaller_than_the_threshold_passes(runs):
    result = api.compare(runs["base"], runs["worse"])
    drop = -float(result.tasks.iloc[0].delta)
    assert result.dropped(drop - 0.01) == ["aime2025"]
    assert result.dropped(drop + 0.01) == []


def test_a_run_compared_with_itself_has_no_flip_and_no_difference(runs):
    result = api.compare(runs["base"], runs["base"])
    row = result.tasks.iloc[0]
    assert row.delta == 0 and row.ci_low == 0 and row.ci_high == 0
    assert result.flipped.empty and result.settings.empty and result.dropped(0) == []


@pytest.mark.parametrize(("diffs", "expected"), [
    pytest.param([0.0, 0.0, 0.0], (0.0, 0.0), id="no-difference-gives-a-point-interval"),
    pytest.param([-0.5], (-0.5, -0.5), id="one-problem-gives-a-point-interval"),
])
def test_bootstrap_edge_cases(diffs, expected):
    assert bootstrap_mean_interval(np.array(diffs), 1000, 0) == expected


def test_bootstrap_covers_the_mean_and_is_seeded():
    diffs = np.random.default_rng(5).normal(-0.1, 0.3, 200)
    low, high = bootstrap_mean_interval(diffs, 4000, 7)
    assert low < diffs.mean() < high
    assert (low, high) == bootstrap_mean_interval(diffs, 4000, 7)
    # Close to the normal interval of the mean.
    se = diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_compare_names_a_missing_run(tmp_path):
    with pytest.raises(DataError, match="not a run folder"):
        api.compare(tmp_path, tmp_path)
