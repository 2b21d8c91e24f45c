"""Multiple choice end to end: GPQA-format and MMLU-Pro data, the simulated server over real
HTTP, shuffled prompts per attempt, the run store, resume and ``evals grade``.

Data: ``fixtures/gpqa_fixture.csv`` (GPQA's columns, twelve questions written for this
project), ``mmlu_pro_sample/`` of the test data (200 MMLU-Pro test rows, and the same rows in
GPQA's column names). No GPQA text is used.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from conftest import benchmark_path
from helpers import read_log, run_sync

import evals
from evals.errors import DataError
from evals.regrade import GradeConfig, grade_responses
from evals.runner import RunConfig, run

HERE = Path(__file__).parent
GPQA_FIXTURE = HERE / "fixtures" / "gpqa_fixture.csv"
MMLU_PRO = "mmlu_pro_sample/mmlu_pro_test_stem_sample.jsonl"  # via benchmark_path
GPQA_SHAPED = "mmlu_pro_sample/gpqa_shaped_from_mmlu_pro.jsonl"


def _config(base_url: str, task: str, data: Path, out: Path, **kw: Any) -> RunConfig:
    defaults: dict[str, Any] = {
        "tasks": (task,), "model": "sim-reasoner", "provider": "simulator",
        "base_url": base_url, "n": 4, "data": ((task, data),), "seed": 2024, "out": out,
        "concurrency": 32,
    }
    defaults.update(kw)
    return RunConfig(**defaults)


def _table(out: Path) -> pd.DataFrame:
    return evals.read_attempts(out)  # the public reader, exercised


def _check_score(row: Any, accuracy: float, attempts: int) -> None:
    """The measured score is within 4 standard errors of the simulator's accuracy.

    Each simulated answer is right with probability ``accuracy``, independently of the
    others, so the binomial SE sqrt(p(1-p)/attempts) is the yardstick (a fair run falls
    outside 4 SE with probability 6e-5). The run's own SE, clustered by problem, estimates
    the same quantity from as few as 12 problems, so it is only checked to be of the same
    order.
    """
    se = math.sqrt(accuracy * (1 - accuracy) / attempts)
    assert abs(row.score - accuracy) < 4 * se, (row.score, accuracy, se)
    assert 0.3 * se < row.se < 3 * se, (row.se, se)


def _prompts(out: Path) -> dict[tuple[str, int], str]:
    """The user message each attempt sent, from the run store."""
    with sqlite3.connect(out / "store.sqlite") as db:
        rows = db.execute("SELECT sample_id, repeat, request FROM responses").fetchall()
    return {(sid, rep): orjson.loads(body)["messages"][-1]["content"] for sid, rep, body in rows}


def test_gpqa_fixture_shuffled_scored_broken_down_and_resumed(simulator, tmp_path):
    out = tmp_path / "run"
    with simulator({"gpqa_diamond": GPQA_FIXTURE}, accuracy=0.7) as sim:
        cfg = _config(sim.base_url, "gpqa_diamond", GPQA_FIXTURE, out, n=24)
        result = run_sync(run(cfg))
        asked = len(read_log(sim.request_log))
        again = run_sync(run(cfg))
        # Resume: the rerun sends nothing, so every shuffled prompt was byte-identical.
        assert len(read_log(sim.request_log)) == asked == 12 * 24
    df = _table(out)
    assert len(df) == 288 and (df["outcome"] == "answered").all()
    assert df.groupby(["sample_id", "repeat"]).size().eq(1).all()
    assert (_table(again.out_dir)["cached"]).all()
    # Every answer the simulator wrote was read: the grader never missed a letter.
    assert df["extracted"].notna().all()
    details = df["details"].map(json.loads)
    meta = df["metadata"].map(json.loads)
    assert (details.map(lambda d: d["gold_letter"]) == df["target"]).all()
    assert (meta.map(lambda m: m["gold_letter"]) == df["target"]).all()
    assert (details.map(lambda d: json.dumps(d["permutation"], separators=(",", ":")))
            == meta.map(lambda m: m["permutation"])).all()
    # The correct answer (first in the data) lands on every letter, and each prompt shows
    # the choices in its attempt's recorded order.
    assert set(df["target"]) == set("ABCD")
    prompts = _prompts(out)
    for r, m in zip(df.itertuples(), meta, strict=True):
        choices = json.loads(m["choices"])
        order = json.loads(m["permutation"])
        block = "\n".join(f"{'ABCD'[i]}) {choices[j]}" for i, j in enumerate(order))
        assert prompts[(r.sample_id, r.repeat)].endswith(block)
    summary = result.summary
    overall = summary[summary["subset"] == ""].iloc[0]
    _check_score(overall, 0.7, 288)
    domains = summary[summary["subset"] == "domain"]
    assert set(domains["value"]) == {"Physics", "Chemistry", "Biology"}
    assert domains["scored"].sum() == 288
    assert len(summary[summary["subset"] == "subdomain"]) == 11
    timing = [c for c in summary.columns
              if c.startswith(("mean_latency_s", "latency_s_", "ttft_s_", "output_tps_"))]
    assert again.summary["resumed"].equals(again.summary["attempts"])
    pd.testing.assert_frame_equal(summary.drop(columns=[*timing, "resumed"]),
                                  again.summary.drop(columns=[*timing, "resumed"]))


def test_mmlu_pro_sample_in_dataset_order_then_shuffled(simulator, tmp_path):
    mmlu_pro = benchmark_path(MMLU_PRO)
    with simulator({"mmlu_pro": mmlu_pro}, accuracy=0.6) as sim:
        plain = run_sync(run(_config(sim.base_url, "mmlu_pro", mmlu_pro, tmp_path / "plain",
                                     n=2)))
        shuffled_cfg = _config(sim.base_url, "mmlu_pro", mmlu_pro, tmp_path / "shuffled",
                               n=2, options=(("shuffle", "true"),))
        shuffled = run_sync(run(shuffled_cfg))
        asked = len(read_log(sim.request_log))
        run_sync(run(shuffled_cfg))
        assert len(read_log(sim.request_log)) == asked == 800
    rows = {str(r["question_id"]): r for r in map(json.loads, mmlu_pro.read_text().splitlines())}
    for result, ordered in ((plain, True), (shuffled, False)):
        df = _table(result.out_dir)
        assert len(df) == 400 and df["extracted"].notna().all()
        meta = df["metadata"].map(json.loads)
        identity = meta.map(lambda m: m["permutation"] == json.dumps(
            list(range(len(json.loads(m["choices"])))), separators=(",", ":")))
        gold_as_published = df["target"] == df["sample_id"].map(lambda s: rows[s]["answer"])
        if ordered:
            assert identity.all() and gold_as_published.all()
        else:
            assert identity.mean() < 0.05 and gold_as_published.mean() < 0.3
        summary = result.summary
        _check_score(summary[summary["subset"] == ""].iloc[0], 0.6, 400)
        categories = summary[summary["subset"] == "category"]
        assert dict(zip(categories["value"], categories["problems"], strict=True)) == {
            "biology": 60, "chemistry": 70, "physics": 70}


def test_gpqa_shaped_mmlu_pro_through_the_gpqa_task(simulator, tmp_path):
    gpqa_shaped = benchmark_path(GPQA_SHAPED)
    with simulator({"gpqa_diamond": gpqa_shaped}, accuracy=0.8) as sim:
        result = run_sync(run(_config(sim.base_url, "gpqa_diamond", gpqa_shaped,
                                      tmp_path / "run", n=3)))
    df = _table(result.out_dir)
    assert len(df) == 600 and df["extracted"].notna().all()
    counts = df["target"].value_counts()
    assert set(counts.index) == set("ABCD") and counts.min() > 100  # 150 expected each
    summary = result.summary
    _check_score(summary[summary["subset"] == ""].iloc[0], 0.8, 600)
    assert set(summary.loc[summary["subset"] == "domain", "value"]) == {
        "Physics", "Chemistry", "Biology"}


def _responses(path: Path, df: pd.DataFrame, with_permutation: bool) -> Path:
    with path.open("wb") as fh:
        for r in df.itertuples():
            line: dict[str, Any] = {"id": r.sample_id, "repeat": r.repeat,
                                    "response": r.response, "reasoning": r.reasoning}
            if with_permutation:
                line["permutation"] = json.loads(json.loads(r.metadata)["permutation"])
            fh.write(orjson.dumps(line) + b"\n")
    return path


def test_grade_with_and_without_the_permutation_column(simulator, tmp_path):
    with simulator({"gpqa_diamond": GPQA_FIXTURE}, accuracy=0.6) as sim:
        result = run_sync(run(_config(sim.base_url, "gpqa_diamond", GPQA_FIXTURE,
                                      tmp_path / "run", n=6)))
    df = _table(result.out_dir)
    key = ["sample_id", "repeat"]
    columns = ["correct", "extracted", "reason", "target", "details"]

    # With the permutation each line was asked with: the same grades as the run.
    graded = run_sync(grade_responses(GradeConfig(
        task="gpqa_diamond", data=GPQA_FIXTURE, out=tmp_path / "with",
        responses=_responses(tmp_path / "with.jsonl", df, with_permutation=True))))
    regraded = _table(graded.out_dir)
    pd.testing.assert_frame_equal(df.set_index(key)[columns].sort_index(),
                                  regraded.set_index(key)[columns].sort_index())
    assert graded.summary.iloc[0].score == result.summary.iloc[0].score

    # Without it, the responses are graded against the dataset's order (the gold is A).
    plain = run_sync(grade_responses(GradeConfig(
        task="gpqa_diamond", data=GPQA_FIXTURE, out=tmp_path / "without",
        responses=_responses(tmp_path / "without.jsonl", df, with_permutation=False))))
    unshuffled = _table(plain.out_dir).set_index(key).sort_index()
    assert (unshuffled["target"] == "A").all()
    assert (unshuffled["correct"] == (unshuffled["extracted"] == "A")).all()
    assert (unshuffled["extracted"] == df.set_index(key).sort_index()["extracted"]).all()
    assert unshuffled["details"].map(lambda d: json.loads(d)["permutation"] == [0, 1, 2, 3]).all()

    # A malformed permutation is refused, naming the line and the value.
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({"id": "fx-bio-01", "response": "Answer: A",
                                  "permutation": [0, 1, 1, 3]}) + b"\n")
    with pytest.raises(DataError) as info:
        run_sync(grade_responses(GradeConfig(task="gpqa_diamond", data=GPQA_FIXTURE,
                                             responses=bad, out=tmp_path / "bad")))
    assert "line 1" in str(info.value) and "[0, 1, 1, 3]" in str(info.value)
