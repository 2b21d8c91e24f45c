"""Reproducing a model card: metrics by hand, verdicts end to end, stop sequences, cost.

The end-to-end tests run the command line as a user does, against the simulated server
over real HTTP, and read what it wrote.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest

from evals.metrics import clustered_score, maj_at_k, majority_vote, pass_at_k, summarize
from tests.helpers import read_log

EVALS = [sys.executable, "-m", "evals.cli"]
MMLU_PRO = "mmlu_pro_sample/mmlu_pro_test_stem_sample.jsonl"  # via benchmark_path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["COLUMNS"] = "250"
    return env


def _evals(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVALS, *args], capture_output=True, text=True, env=_env(),
                          timeout=timeout, check=False)


# -- metrics against values computed by hand ------------------------------------------------

@pytest.mark.parametrize(("n", "c", "k", "expected"), [
    (10, 3, 1, 3 / 10),                                   # pass@1 is the fraction correct
    (10, 3, 2, 1 - (7 * 6) / (10 * 9)),                   # 1 - C(7,2)/C(10,2) = 0.5333...
    (5, 1, 5, 1.0),                                       # one right among all five drawn
    (5, 0, 3, 0.0),
    (16, 4, 8, 1 - math.comb(12, 8) / math.comb(16, 8)),  # 1 - 495/12870
    (4, 2, 3, 1.0),                                       # n - c < k: always a right one
], ids=["k1", "k2", "k-equals-n", "none-right", "n16-k8", "n-minus-c-below-k"])
def test_pass_at_k_against_combinations(n: int, c: int, k: int, expected: float) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_clustered_standard_error_on_a_small_table() -> None:
    # Three problems, four repeats each: 4/4, 2/4, 0/4 correct. Per-problem means 1, .5, 0;
    # mean .5; sample variance ((.5)^2 + 0 + (.5)^2) / 2 = .25; SE = sqrt(.25 / 3).
    rows = [{"task": "t", "sample_id": pid, "repeat": r, "outcome": "answered",
             "correct": r < right, "extracted": "1" if r < right else "2", "metadata": None}
            for pid, right in (("a", 4), ("b", 2), ("c", 0)) for r in range(4)]
    (row,) = summarize(rows)
    se = math.sqrt(0.25 / 3)
    assert row["score"] == pytest.approx(0.5)
    assert row["se"] == pytest.approx(se)
    assert row["ci_low"] == 0.0  # 0.5 - 1.96 * 0.2887 = -0.066, clipped at 0
    assert row["ci_high"] == 1.0  # clipped at 1 likewise
    # The four repeats counted as independent draws would give a much smaller SE:
    assert se > math.sqrt(0.25 / 12)
    # maj@4: a's majority is right, b ties 2-2 (the first answer seen, "1", is right),
    # c's is wrong: 2/3.
    assert row["maj@4"] == pytest.approx(2 / 3)
    assert clustered_score([1.0]) == (1.0, 0.0, 1.0, 1.0)


def test_majority_vote_by_hand() -> None:
    assert majority_vote([("7", False), ("9", True), ("9", True)]) is True
    assert majority_vote([("7", False), ("7", False), ("9", True)]) is False
    assert majority_vote([(None, False), (None, False), ("9", True)]) is True  # no vote
    assert majority_vote([(None, False)]) is False
    # Two groups of two: ("1","1") right, ("2","1") ties -> first seen "2" wrong.
    assert maj_at_k([("1", True), ("1", True), ("2", False), ("1", True)], 2) == 0.5
    with pytest.raises(ValueError, match="maj@4 needs at least 4"):
        maj_at_k([("1", True)], 4)


# -- a suite end to end, with the published verdict ------------------------------------------

def _suite(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\n'
        'description = "AIME 2025 of the Magistral Small 1.2 card"\n'
        'model = "mistralai/Magistral-Small-2509"\n'
        '[[task]]\nname = "aime2025"\nn = 8\n'
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize(("accuracy", "verdict"), [(0.7734, "consistent"), (0.5234, "below")],
                         ids=["at-the-card", "25-points-lower"])
def test_suite_run_gives_the_verdict_against_the_card(simulator, aime2025_path, tmp_path,
                                                      accuracy, verdict):
    suite = _suite(tmp_path, "card-check")
    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, accuracy=accuracy, seed=3) as sim:
        done = _evals("run", "--suite", str(suite), "--base-url", sim.base_url, "--data",
                      str(aime2025_path), "--out", str(out), "--concurrency", "32")
    assert done.returncode == 0, done.stderr
    summary = pd.read_csv(out / "summary.csv")
    row = summary[summary["subset"].isna()].iloc[0]
    assert row["published"] == pytest.approx(77.34)
    assert "huggingface.co/mistralai/Magistral-Small-2509" in row["published_source"]
    assert row["verdict"] == verdict
    assert row["delta"] == pytest.approx(100 * row["score"] - 77.34, abs=0.01)
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    card = [c for c in manifest["published_comparison"] if c["published"] == 77.34]
    assert card and card[0]["verdict"] == verdict
    # The profile chosen from the model name set what was sent, and the manifest says so.
    assert manifest["profile"]["name"] == "magistral-1.2"
    sent = manifest["request_settings"]["aime2025"]
    assert sent["temperature"] == {"value": 0.7, "origin": "profile magistral-1.2",
                                   "source": sent["temperature"]["source"]}
    assert manifest["request_body"]["aime2025"]["max_tokens"] == 131072
    assert manifest["config"]["suite"] == "card-check"
    text = (out / "summary.md").read_text()
    assert "## Published scores" in text and "77.34" in text and verdict in text
    assert "Published scores" in done.stdout and verdict in done.stdout


def test_a_flag_overrides_the_profile_and_the_manifest_says_so(simulator, aime2025_path,
                                                               tmp_path):
    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, accuracy=1.0) as sim:
        done = _evals("run", "aime2025", "--model", "magistral-small-2509", "--base-url",
                      sim.base_url, "--data", str(aime2025_path), "--out", str(out), "--n", "1",
                      "--limit", "3", "--temperature", "0.3", "--stop", "</answer>")
        bodies = read_log(sim.request_log)
    assert done.returncode == 0, done.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    sent = manifest["request_settings"]["aime2025"]
    assert sent["temperature"]["value"] == 0.3 and sent["temperature"]["origin"] == "flag"
    assert sent["top_p"]["origin"] == "profile magistral-1.2"
    assert len(bodies) == 3
    assert all(b["sampling"] == {"temperature": 0.3, "top_p": 0.95, "max_tokens": 131072,
                                 "stop": ["</answer>"]} for b in bodies)
    # Not the Mistral API: the [THINK] prompt goes as plain text.
    assert all("[THINK]" in b["system"] for b in bodies)


# -- stop sequences when grading recorded responses -----------------------------------------

def test_grade_stop_cuts_a_few_shot_response_that_runs_on(tmp_path, benchmark_file):
    mmlu_pro = benchmark_file(MMLU_PRO)
    row = orjson.loads(mmlu_pro.read_bytes().splitlines()[0])
    gold = row["answer"]
    wrong = "A" if gold != "A" else "B"
    # A base model's few-shot continuation: it answers, then invents the next question and
    # answers that too. The last stated answer is the invented question's.
    text = (f"Let's think step by step. The relevant law gives the result directly. "
            f"The answer is ({gold}).\n\nQuestion: Which of the following is a prime?\n"
            f"Options: A. 4\nB. 6\nC. 9\nD. 7\nAnswer: Let's think step by step. 7 is prime. "
            f"The answer is ({wrong}).")
    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(orjson.dumps({"id": row["question_id"], "response": text}) + b"\n")

    def graded(*extra: str) -> pd.Series:
        out = tmp_path / ("cut" if extra else "whole")
        done = _evals("grade", "mmlu_pro", "--responses", str(responses), "--data",
                      str(mmlu_pro), "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
        return pd.read_parquet(out / "samples.parquet").iloc[0]

    cut = graded("--stop", "Question:")
    assert cut["extracted"] == gold and bool(cut["correct"])
    whole = graded()
    assert whole["extracted"] == wrong and not bool(whole["correct"])


# -- cost: a dry run sends nothing; a budget stops, and a rerun completes --------------------

def test_dry_run_sends_nothing_and_plans_the_interval(simulator, aime2025_path, tmp_path):
    out = tmp_path / "never"
    with simulator({"aime2025": aime2025_path}, accuracy=0.7) as sim:
        done = _evals("run", "aime2025", "--model", "magistral-small-2509", "--provider",
                      "vllm", "--base-url", sim.base_url, "--data", str(aime2025_path),
                      "--n", "4", "--out", str(out), "--dry-run", "--target-ci", "3")
        assert read_log(sim.request_log) == []
    assert done.returncode == 0, done.stderr
    assert not out.exists()
    assert "120" in done.stdout  # 30 problems x 4 repeats
    assert "77.34" in done.stdout  # the card's score is the basis of the interval
    assert "out of reach at any n" in done.stdout  # 30 problems cannot give +-3 points


def test_max_cost_stops_at_the_budget_and_a_rerun_completes(simulator, aime2025_path,
                                                            tmp_path):
    prices = tmp_path / "prices.csv"
    prices.write_text("provider,model,input_per_m,output_per_m,reasoning_per_m,source,date\n"
                      "custom,sim-model,1000,1000,,test price,2026-12\n")
    out = tmp_path / "run"
    args = ["run", "aime2025", "--model", "sim-model", "--data", str(aime2025_path), "--n",
            "2", "--out", str(out), "--concurrency", "2", "--prices", str(prices)]
    with simulator({"aime2025": aime2025_path}, accuracy=0.7) as sim:
        stopped = _evals(*args, "--base-url", sim.base_url, "--max-cost", "2")
        first = read_log(sim.request_log)
        finished = _evals(*args, "--base-url", sim.base_url)
        everything = read_log(sim.request_log)
    assert stopped.returncode == 3, stopped.stderr
    assert "Budget reached" in stopped.stdout
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert finished.returncode == 0, finished.stderr
    assert 0 < len(first) < 60
    # Each attempt costs about 0.1-0.3 USD here: the run stopped near the budget (requests in
    # flight when it was reached may finish), not after everything.
    assert len(first) <= 2 / 0.05 + 2
    assert len(everything) == 60  # the rerun asked only what was not answered
    assert len({(b["sample_id"], b["seed"]) for b in everything}) == 60
    assert manifest["status"] == "complete" and manifest["attempts"] == 60
    table = pd.read_parquet(out / "samples.parquet")
    assert table["cached"].sum() == len(first) and table["cost"].notna().all()
