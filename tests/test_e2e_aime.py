"""AIME end to end: real AIME data, the real simulated server over HTTP, the real store."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pandas as pd
import pytest
from helpers import read_log, run_sync

import evals
from evals.errors import AuthError, UnknownModelError
from evals.regrade import GradeConfig, grade_responses
from evals.runner import RunConfig, run


def _config(base_url: str, data: Path, out: Path, **kw: object) -> RunConfig:
    defaults: dict[str, object] = {
        "tasks": ("aime2025",), "model": "sim-reasoner", "provider": "simulator", "base_url": base_url,
        "n": 8, "data": (("aime2025", data),), "seed": 1234, "out": out, "concurrency": 32,
    }
    defaults.update(kw)
    return RunConfig(**defaults)  # type: ignore[arg-type]


def _table(out: Path) -> pd.DataFrame:
    return evals.read_attempts(out)  # the public reader, exercised


def test_interval_contains_simulated_accuracy(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, accuracy=0.7) as sim:
        result = run_sync(run(_config(sim.base_url, aime2025_path, tmp_path / "run")))
    df = _table(result.out_dir)
    assert len(df) == 240
    assert df.groupby(["sample_id", "repeat"]).size().max() == 1
    row = result.summary[result.summary["subset"] == ""].iloc[0]
    assert row.problems == 30 and row.repeats == 8 and row.scored == 240
    assert row.ci_low <= 0.7 <= row.ci_high, (row.ci_low, row.score, row.ci_high)
    # The interval is a real one: clustered SE from 30 problems, not zero, not huge.
    assert 0.01 < row.se < 0.1
    # Every reasoning format of the simulator was separated from the answer.
    assert df["reasoning"].notna().sum() >= 180
    assert not df["response"].str.contains("<think>|\\[THINK\\]", regex=True).any()
    assert (df["seed"].nunique()) == 240
    summary_md = (result.out_dir / "summary.md").read_text()
    assert "SIMULATED" in summary_md
    manifest = orjson.loads((result.out_dir / "manifest.json").read_bytes())
    assert manifest["status"] == "complete" and manifest["simulated"] is True
    assert manifest["datasets"]["aime2025"]["rows"] == 30


def test_rerun_requests_nothing_already_answered(simulator, aime2025_path, tmp_path):
    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, accuracy=0.5) as sim:
        cfg = _config(sim.base_url, aime2025_path, out, n=2)
        first = run_sync(run(cfg))
        asked = len(read_log(sim.request_log))
        second = run_sync(run(cfg))
        assert len(read_log(sim.request_log)) == asked == 60
    df = _table(second.out_dir)
    assert df["cached"].all() and len(df) == 60
    timing = [c for c in first.summary.columns
              if c.startswith(("mean_latency_s", "latency_s_", "ttft_s_", "output_tps_"))]
    assert list(second.summary["resumed"]) == list(second.summary["attempts"])
    assert not first.summary["resumed"].any()
    pd.testing.assert_frame_equal(
        first.summary.drop(columns=[*timing, "resumed"]),
        second.summary.drop(columns=[*timing, "resumed"]),
    )


def test_faults_every_attempt_completes_exactly_once(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, accuracy=0.7, fault_429=0.10,
                   fault_500=0.05, fault_drop=0.05, retry_after_s=0.05, seed=7) as sim:
        cfg = _config(sim.base_url, aime2025_path, tmp_path / "run", max_retries=10)
        result = run_sync(run(cfg))
        log = read_log(sim.request_log)
    faults = pd.Series([r["fault"] for r in log]).value_counts()
    # The faults really happened ...
    assert faults.get("429", 0) >= 10 and faults.get("500", 0) >= 5 and faults.get("drop", 0) >= 5
    # ... and every attempt still completed, exactly once.
    df = _table(result.out_dir)
    assert len(df) == 240
    assert df.groupby(["sample_id", "repeat"]).size().eq(1).all()
    assert (df["outcome"] == "answered").all()
    assert result.manifest["client"]["rate_limited"] == faults.get("429", 0)
    assert df["retries"].sum() == result.manifest["client"]["retries"] > 0


def test_failed_requests_are_errors_and_a_rerun_retries_exactly_those(
    simulator, aime2025_path, tmp_path
):
    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, accuracy=0.7, fault_500=0.3, seed=3) as sim:
        cfg = _config(sim.base_url, aime2025_path, out, n=2, max_retries=0)
        first = run_sync(run(cfg))
    df = _table(out)
    errored = set(df.loc[df["outcome"] == "error", "seed"])
    assert errored, "with 30% 500s and no retries some attempts must fail"
    row = first.summary.iloc[0]
    assert row.error == len(errored) and row.scored == 60 - len(errored)
    assert df.loc[df["outcome"] == "error", "correct"].isna().all()
    with simulator({"aime2025": aime2025_path}, accuracy=0.7) as sim:
        cfg2 = _config(sim.base_url, aime2025_path, out, n=2, max_retries=0)
        second = run_sync(run(cfg2))
        asked = {r["seed"] for r in read_log(sim.request_log)}
    assert asked == errored
    assert (_table(out)["outcome"] == "answered").all() and second.summary.iloc[0].error == 0


def test_grade_recorded_responses_matches_the_run(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, accuracy=0.6) as sim:
        result = run_sync(run(_config(sim.base_url, aime2025_path, tmp_path / "run", n=3)))
    df = _table(result.out_dir)
    responses = tmp_path / "responses.jsonl"
    with responses.open("wb") as fh:
        for r in df.itertuples():
            fh.write(orjson.dumps({"id": r.sample_id, "repeat": r.repeat,
                                   "response": r.response, "reasoning": r.reasoning}) + b"\n")
    graded = run_sync(grade_responses(GradeConfig(task="aime2025", responses=responses,
                                                  data=aime2025_path, out=tmp_path / "graded")))
    regraded = pd.read_parquet(graded.out_dir / "samples.parquet")
    left = df.set_index(["sample_id", "repeat"])[["correct", "extracted", "reason"]].sort_index()
    right = regraded.set_index(["sample_id", "repeat"])[["correct", "extracted", "reason"]]
    pd.testing.assert_frame_equal(left, right.sort_index())
    assert graded.summary.iloc[0].score == result.summary.iloc[0].score


def test_wrong_key_gives_auth_error_naming_the_variable(simulator, aime2025_path, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("SIM_KEY", "sk-wrong-0123456789")
    with simulator({"aime2025": aime2025_path}, api_key="sk-right-abcdef") as sim:
        cfg = _config(sim.base_url, aime2025_path, tmp_path / "run", api_key_env="SIM_KEY")
        with pytest.raises(AuthError) as info:
            run_sync(run(cfg))
    message = str(info.value)
    assert "SIM_KEY" in message and "401" in message
    assert "sk-wrong-0123456789" not in message


def test_unknown_model_lists_the_models_offered(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, models=("magistral-small-2509", "qwen3-8b")
                   ) as sim:
        cfg = _config(sim.base_url, aime2025_path, tmp_path / "run", model="magistral-smal")
        with pytest.raises(UnknownModelError) as info:
            run_sync(run(cfg))
    assert "magistral-smal" in str(info.value)
    assert "magistral-small-2509, qwen3-8b" in str(info.value)


def test_api_key_value_reaches_no_file_of_the_run(simulator, aime2025_path, tmp_path,
                                                   monkeypatch):
    secret = "sk-live-SECRET-7f3a9c"
    monkeypatch.setenv("SIM_KEY", secret)
    with simulator({"aime2025": aime2025_path}, api_key=secret) as sim:
        cfg = _config(sim.base_url, aime2025_path, tmp_path / "run", api_key_env="SIM_KEY",
                      n=2, stream=True)
        result = run_sync(run(cfg))
    assert (_table(result.out_dir)["outcome"] == "answered").all()
    files = [p for p in result.out_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "samples.parquet", "samples.jsonl",
                                       "summary.csv", "summary.md", "store.sqlite"}
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


def test_streaming_records_time_to_first_token(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, latency_ms=40, stream_chunks=6) as sim:
        result = run_sync(run(_config(sim.base_url, aime2025_path, tmp_path / "run", n=1,
                                      stream=True)))
    df = _table(result.out_dir)
    assert df["ttft_s"].notna().all()
    assert (df["ttft_s"] < df["latency_s"]).all() and (df["ttft_s"] > 0.015).all()
    assert df["completion_tokens"].notna().all() and df["reasoning_tokens"].notna().all()


def test_truncated_answers_are_scored_and_counted(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, accuracy=1.0, truncate=0.3) as sim:
        result = run_sync(run(_config(sim.base_url, aime2025_path, tmp_path / "run", n=4)))
    df = _table(result.out_dir)
    truncated = df[df["outcome"] == "truncated"]
    assert 10 < len(truncated) < 70
    assert (truncated["finish_reason"] == "length").all()
    assert not truncated["correct"].any()
    row = result.summary.iloc[0]
    assert row.scored == 120 and row.truncated == len(truncated)
    assert row.truncation_rate == pytest.approx(len(truncated) / 120)


@pytest.mark.slow
def test_sigkill_halfway_then_rerun_loses_nothing_committed(simulator, aime2025_path,
                                                             tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "evals.cli", "run", "aime2025", "--model", "sim",
               "--n", "8", "--data", str(aime2025_path), "--seed", "99", "--out", str(out),
               "--concurrency", "8"]
    with simulator({"aime2025": aime2025_path}, accuracy=0.7, latency_ms=60) as sim:
        full = [*command, "--base-url", sim.base_url]
        stderr = tmp_path / "stderr.txt"
        with stderr.open("wb") as err:
            proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 120
        while len(read_log(sim.request_log)) < 120:
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)  # requests in flight at the kill finish on the server side
        with sqlite3.connect(out / "store.sqlite") as db:
            committed = {row[0] for row in db.execute("SELECT seed FROM responses")}
        before = read_log(sim.request_log)
        assert 60 < len(committed) < 240
        rerun = subprocess.run(full, capture_output=True, text=True, timeout=300, check=False)
        assert rerun.returncode == 0, rerun.stderr
        after = read_log(sim.request_log)[len(before):]
    asked_again = {r["seed"] for r in after}
    assert not asked_again & committed
    asked_before = {r["seed"] for r in before}
    # Only what was in flight at the kill (asked, never committed) is asked twice.
    assert asked_again & asked_before <= asked_before - committed
    df = _table(out)
    assert len(df) == 240 and df.groupby(["sample_id", "repeat"]).size().eq(1).all()
    assert (df["outcome"] == "answered").all()
    assert df["cached"].sum() == len(committed)


def test_server_that_dies_mid_run_stops_the_run_and_keeps_what_was_answered(
    simulator, aime2025_path, tmp_path
):
    import threading

    from evals.errors import EndpointError

    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, latency_ms=20) as sim:
        # It never comes back: the run waits --max-downtime for it (a restart), then stops.
        cfg = _config(sim.base_url, aime2025_path, out, concurrency=4, max_retries=1,
                      max_downtime=2.0)
        threading.Timer(0.6, sim.stop).start()  # the server dies 0.6 s in
        started = time.monotonic()
        with pytest.raises(EndpointError) as info:
            run_sync(run(cfg))
    assert time.monotonic() - started < 30
    assert sim.base_url in str(info.value) and "rerun the same command" in str(info.value)
    with sqlite3.connect(out / "store.sqlite") as db:
        committed = db.execute("SELECT count(*) FROM responses").fetchone()[0]
    assert 0 < committed < 240
    assert orjson.loads((out / "manifest.json").read_bytes())["status"] == "failed"


def test_grade_separates_think_tags_as_a_live_run_does(aime2025_path, tmp_path):
    from evals.parsing import parse_completion

    first_id = orjson.loads(aime2025_path.read_text().splitlines()[0])["id"]
    content = "<think>try 5, then 7</think>\n So \\boxed{7} "
    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(orjson.dumps({"id": str(first_id), "response": content,
                                        "reasoning": "from the field"}) + b"\n")
    graded = run_sync(grade_responses(GradeConfig(task="aime2025", responses=responses,
                                                  data=aime2025_path, out=tmp_path / "g")))
    row = pd.read_parquet(graded.out_dir / "samples.parquet").iloc[0]
    live = parse_completion({"choices": [{"message": {
        "content": content, "reasoning_content": "from the field"}}]})
    assert (row.response, row.reasoning) == (live.text, live.reasoning)
    assert row.reasoning == "from the field"  # the tag text is not appended a second time
