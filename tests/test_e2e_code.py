"""Code tasks end to end: real data, the simulated server over HTTP, the real sandbox.

The simulated model writes a program that passes every known test when it means to be
right, and a wrong or crashing one otherwise; its reasoning says "not fully sure" exactly
when it means to be wrong, so every grade can be checked against the intent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import benchmark_path
from helpers import run_sync

from evals.runner import RunConfig, run

LCB_SAMPLE = "livecodebench/code_generation_lite_sample.jsonl"  # via benchmark_path
HUMANEVAL = "humaneval/HumanEval.jsonl"
_REASON = re.compile(r"passed \d+/\d+|(wrong answer|runtime error) on test \d+")


@pytest.mark.parametrize(("task", "data", "limit"),
                         [("livecodebench", LCB_SAMPLE, 12), ("humaneval", HUMANEVAL, 12)])
def test_simulated_run_grades_every_attempt_as_the_model_meant(simulator, tmp_path, task,
                                                               data, limit, needs_sandbox):
    data = benchmark_path(data)
    with simulator({task: data}, accuracy=0.6, reasoning_format="reasoning_content",
                   seed=5) as sim:
        cfg = RunConfig(tasks=(task,), model="sim-coder", provider="simulator",
                        base_url=sim.base_url, n=3, limit=limit, data=((task, data),),
                        seed=11, out=tmp_path / "run", concurrency=16)
        result = run_sync(run(cfg))
    df = pd.read_parquet(Path(result.out_dir) / "samples.parquet")
    assert len(df) == 3 * limit and (df["outcome"] == "answered").all()
    meant = ~df["reasoning"].str.contains("not fully sure")
    assert meant.any() and (~meant).any()
    assert (df["correct"] == meant).all(), df.loc[df["correct"] != meant,
                                                  ["sample_id", "reason", "details"]]
    assert df["reason"].str.fullmatch(_REASON).all(), df["reason"].unique()
    details = [json.loads(d) for d in df["details"]]
    # (both rounded to 3 decimals)
    assert all(d["time_limit_s"] >= d["calibration"] * 3.0 - 1e-6 for d in details)
    assert all(d["kind"] in ("stdin", "functional", "humaneval") for d in details)
    failed = [d for d, ok in zip(details, df["correct"]) if not ok]
    assert all("test" in d and ("error" in d or "expected" in d or "detail" in d)
               for d in failed)

    summary = result.summary
    row = summary[summary["subset"] == ""].iloc[0]
    assert row.problems == limit and row.scored == 3 * limit
    assert row.score == pytest.approx(meant.mean())
    assert row.ci_low <= 0.6 <= row.ci_high
    # pass@k columns: pass@1 is the score; pass@k grows with k.
    assert row["pass@1"] == pytest.approx(row.score)
    assert row["pass@1"] <= row["pass@2"] <= row["pass@3"]
    per_problem = df.groupby("sample_id")["correct"].any().mean()
    assert row["pass@3"] == pytest.approx(per_problem)
    assert "pass@3" in (Path(result.out_dir) / "summary.md").read_text()
    if task == "livecodebench":
        subsets = set(summary["subset"]) - {""}
        assert subsets == {"difficulty", "platform"}
        assert set(summary.loc[summary["subset"] == "platform", "value"]) <= {"atcoder",
                                                                              "leetcode"}


def test_without_bubblewrap_a_code_run_stops_before_any_request(simulator, tmp_path,
                                                                 monkeypatch):
    from helpers import read_log

    from evals.errors import ConfigError

    empty = tmp_path / "bin"
    empty.mkdir()
    humaneval = benchmark_path(HUMANEVAL)
    with simulator({"humaneval": humaneval}) as sim:
        monkeypatch.setenv("PATH", str(empty))
        monkeypatch.delenv("EVALS_BWRAP", raising=False)
        cfg = RunConfig(tasks=("humaneval",), model="sim-coder", base_url=sim.base_url,
                        n=1, limit=2, data=(("humaneval", humaneval),), out=tmp_path / "run")
        with pytest.raises(ConfigError, match=r"apt-get install -y bubblewrap.*"
                                              r"--unsafe-no-sandbox") as caught:
            run_sync(run(cfg))
        monkeypatch.undo()
        assert read_log(sim.request_log) == []  # refused before any request was paid for
    assert "bubblewrap" in str(caught.value)


def test_unsafe_no_sandbox_runs_code_knowingly(simulator, tmp_path):
    from evals.grading.context import GradingOptions

    humaneval = benchmark_path(HUMANEVAL)
    with simulator({"humaneval": humaneval}, accuracy=1.0) as sim:
        cfg = RunConfig(tasks=("humaneval",), model="sim-coder", base_url=sim.base_url,
                        n=1, limit=3, data=(("humaneval", humaneval),), out=tmp_path / "run",
                        grading=GradingOptions(unsafe_no_sandbox=True))
        result = run_sync(run(cfg))
    assert result.summary_rows[0]["score"] == 1.0
    assert result.manifest["config"]["grading"]["unsafe_no_sandbox"] is True
