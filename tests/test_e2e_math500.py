"""MATH-500 end to end: real data, the simulated server over HTTP, the sympy worker pool."""

from __future__ import annotations

import time

import orjson
import pandas as pd
import pytest
from conftest import benchmark_path
from helpers import run_sync

from evals.grading.context import GradingOptions
from evals.regrade import GradeConfig, grade_responses
from evals.runner import RunConfig, run

MATH500 = "math500/test.jsonl"  # via benchmark_path


def test_simulated_math500_run_scores_what_the_server_meant(simulator, tmp_path):
    math500 = benchmark_path(MATH500)
    with simulator({"math500": math500}, accuracy=0.6,
                   reasoning_format="reasoning_content") as sim:
        cfg = RunConfig(tasks=("math500",), model="sim", base_url=sim.base_url, n=2,
                        limit=60, data=(("math500", math500),), out=tmp_path / "run",
                        seed=7, grading=GradingOptions(processes=2))
        result = run_sync(run(cfg))
    df = pd.read_parquet(result.out_dir / "samples.parquet")
    assert len(df) == 120 and (df["outcome"] == "answered").all()
    # The simulator writes the gold verbatim when it means to be right and changes a
    # digit otherwise: the grader must agree with it on every attempt.
    intended = df["reasoning"].str.extract(r"I get (.*)\. Let me verify", expand=False)
    assert (intended.notna()).all()
    agree = (intended == df["target"]) == df["correct"]
    assert agree.all(), df.loc[~agree, ["target", "extracted", "reason"]].head().to_dict("records")
    top = result.summary[result.summary["subset"] == ""].iloc[0]
    assert top.ci_low - 0.1 <= 0.6 <= top.ci_high + 0.1
    subsets = set(result.summary["subset"])
    assert {"subject", "level"} <= subsets
    # Every verdict can be audited: normalised forms and the reason are in the table.
    details = [orjson.loads(d) for d in df["details"]]
    assert all("gold_norm" in d and "answer_norm" in d for d in details)
    assert df["reason"].notna().all()


PATHOLOGICAL = [
    "\\boxed{" + "2^{" * 30 + "2" + "}" * 31,  # a tower of exponents
    "\\boxed{" + "{" * 400_000 + "1" + "}" * 400_000 + "}",  # a megabyte of braces
    "\\boxed{(10^{10^{10}})!}",
]


def test_pathological_answers_cost_at_most_the_limit_and_never_stop_grading(tmp_path):
    math500 = benchmark_path(MATH500)
    rows = [orjson.loads(line) for line in math500.read_bytes().splitlines()[:6]]
    lines = []
    for i, row in enumerate(rows):
        text = PATHOLOGICAL[i] if i < len(PATHOLOGICAL) else f"So \\boxed{{{row['answer']}}}."
        lines.append({"id": row["unique_id"], "response": text})
    responses = tmp_path / "responses.jsonl"
    responses.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    limit = 2.0
    started = time.perf_counter()
    result = run_sync(grade_responses(GradeConfig(
        task="math500", responses=responses, data=math500, out=tmp_path / "graded",
        grading=GradingOptions(timeout_s=limit, processes=2))))
    elapsed = time.perf_counter() - started
    df = pd.read_parquet(result.out_dir / "samples.parquet").set_index("sample_id")
    for row in rows[len(PATHOLOGICAL):]:
        assert df.loc[row["unique_id"], "correct"], df.loc[row["unique_id"]].to_dict()
    for row in rows[: len(PATHOLOGICAL)]:
        graded = df.loc[row["unique_id"]]
        assert graded["correct"] is False or graded["correct"] == False
        assert graded["outcome"] == "answered"
    # Three pathological answers on two workers: at worst two rounds of the limit, plus
    # the pool's start-up; never unbounded.
    assert elapsed < 2 * (limit + 1) + 15, elapsed


@pytest.mark.parametrize("answer", ["\\frac{1}{2}", "0.5", "\\dfrac12", "1/2"])
def test_equivalent_forms_are_graded_right_through_the_pool(answer, tmp_path):
    from evals_tasks.math500 import grade_math500

    from evals.grading.context import GradingContext
    from evals.records import Sample

    async def go() -> bool | None:
        async with GradingContext(GradingOptions(processes=1)):
            sample = Sample("x", (("user", "?"),), "\\frac{1}{2}")
            grade = await grade_math500(f"Thus the answer is $\\boxed{{{answer}}}$.", sample)
            return grade.correct

    assert run_sync(go()) is True
