"""Scale: a LiveCodeBench-shaped release with megabytes of tests per problem, long runs.

Structural facts only (memory itself is measured by ``bench/memory.py``, not asserted
here): private tests are not decoded when the data loads, they are decoded once per
problem when its attempts are graded, and they are not held once grading is over; the
summary of a run is computed from the stored table with its long answers identified by a
digest rather than kept.

The generated problems are ``stdin`` problems of this file's own making ("print the sum
of the numbers"), shaped like ``livecodebench/code_generation_lite`` rows: public tests as
JSON, private tests base64 + zlib + pickle of JSON, as in the later shards.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import evals_tasks.code as code_task
import pytest
from helpers import run_sync

from evals.data import LazyField, load_task_data
from evals.grading.lcb import TestCase as Case
from evals.grading.lcb import encode_private_tests
from evals.metrics import _Group, summarize
from evals.output import AttemptWriter, finalize
from evals.records import Grade, Sample

SOLUTION = "import sys\nnums = sys.stdin.read().split()\nprint(sum(map(int, nums[1:])))\n"
WRONG = "import sys\nnums = sys.stdin.read().split()\nprint(sum(map(int, nums[1:])) + 1)\n"


def _test(rng: random.Random, numbers: int) -> Case:
    values = [rng.randrange(10**9) for _ in range(numbers)]
    return Case(f"{numbers}\n{' '.join(map(str, values))}\n", f"{sum(values)}\n", "stdin")


def write_release(path: Path, problems: int, private_bytes: int, *, tests: int = 4,
                  seed: int = 0) -> Path:
    """A LiveCodeBench-shaped JSONL file: ``problems`` rows with about ``private_bytes`` of
    private tests each (decoded size), in ``tests`` tests."""
    rng = random.Random(seed)
    per_test = max(1, private_bytes // tests // 10)  # ~10 characters per number
    with path.open("w") as fh:
        for i in range(problems):
            public = [_test(rng, 3)]
            private = [_test(rng, per_test) for _ in range(tests)]
            fh.write(json.dumps({
                "question_title": f"Sum {i}", "question_content": f"Problem {i}: print the "
                "sum of the numbers on the second line.", "platform": "atcoder",
                "question_id": f"gen{i:04d}", "contest_id": f"gen{i // 7}",
                "contest_date": f"2024-{1 + i % 12:02d}-0{1 + i % 9}T00:00:00",
                "starter_code": "", "difficulty": ("easy", "medium", "hard")[i % 3],
                "public_test_cases": json.dumps([t._asdict() for t in public]),
                "private_test_cases": encode_private_tests(private),
                "metadata": "{}",
            }) + "\n")
    return path


class _Counter:
    """Counts the private-test decodes of the task plugin, per encoded field."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        real = code_task.decode_private_tests

        def counting(field: str, **kwargs: Any) -> list[Case]:
            self.calls.append(len(field))
            return real(field, **kwargs)

        monkeypatch.setattr(code_task, "decode_private_tests", counting)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("release")
    return write_release(folder / "test.jsonl", problems=24, private_bytes=400_000)


def _load(release: Path, bank: code_task.ProblemBank) -> tuple[Any, list[Sample]]:
    task = code_task.livecodebench_task(bank)
    return task, load_task_data(task, release).samples


def test_private_tests_are_not_decoded_at_load(release, monkeypatch):
    counter = _Counter(monkeypatch)
    bank = code_task.ProblemBank()
    _, samples = _load(release, bank)
    assert len(samples) == 24
    assert counter.calls == [], "private tests were decoded while the data loaded"
    assert bank.held == ()
    for sample in samples:
        entry = bank.entry(sample.target)
        assert entry is not None and isinstance(entry.private, LazyField)
        assert entry.private.size > 100_000  # the encoded field stays on disk
        assert dict(sample.metadata)["tests"] is None  # unknown until graded
        assert "private tests of" in sample.target and len(sample.target) < 200
    # A second load (from the row cache) reads the same problems, still without decoding.
    _, again = _load(release, code_task.ProblemBank())
    assert [s.target for s in again] == [s.target for s in samples]
    assert [s.metadata for s in again] == [s.metadata for s in samples]
    assert counter.calls == []


def _fake_grader(monkeypatch: pytest.MonkeyPatch, seen: dict[str, list[int]],
                 bank: code_task.ProblemBank) -> None:
    """``grade_program`` replaced by one that records what it was given (no sandbox): this
    test is about when tests are decoded and held, not about running programs."""

    async def grade_program(program: str | None, problem: Any, *, extracted: str | None,
                            how: str, executor: Any = None) -> Grade:
        key = problem.tests[1].input[:40]  # the first private test identifies the problem
        seen.setdefault(key, []).append(len(problem.tests))
        assert len(bank.held) >= 1
        await asyncio.sleep(0)  # let other grades interleave
        return Grade(extracted, True, "passed")

    monkeypatch.setattr(code_task, "grade_program", grade_program)


@pytest.mark.parametrize("cache_bytes", [0, 1_000_000, 64 << 20])
def test_each_problem_is_decoded_once_when_graded_and_dropped_after(release, monkeypatch,
                                                                   cache_bytes):
    bank = code_task.ProblemBank(cache_bytes=cache_bytes)
    task, samples = _load(release, bank)
    counter = _Counter(monkeypatch)
    seen: dict[str, list[int]] = {}
    _fake_grader(monkeypatch, seen, bank)
    repeats, in_flight = 4, 8

    async def grade_all() -> list[Grade]:
        # As the runner does: all repeats of a problem asked one after the other, graded
        # concurrently as they come back.
        slots = asyncio.Semaphore(in_flight)

        async def one(sample: Sample) -> Grade:
            async with slots:
                return await task.grader(f"```python\n{SOLUTION}```", sample)

        return await asyncio.gather(*(one(s) for s in samples for _ in range(repeats)))

    grades = run_sync(grade_all())
    assert all(g.correct for g in grades)
    assert len(counter.calls) == len(samples), "a problem's private tests decoded twice"
    assert len(seen) == len(samples) and all(v == [5] * repeats for v in seen.values())
    held = bank.held
    if cache_bytes == 0:
        assert held == (), "decoded tests held after grading"
    else:  # only what fits in the cache, the most recently graded
        assert len(held) <= max(1, cache_bytes // 400_000)
        assert all(k in {s.target for s in samples[-len(held):]} for k in held)


def test_a_problem_evicted_from_the_cache_is_decoded_again_not_held(release, monkeypatch):
    bank = code_task.ProblemBank(cache_bytes=0)
    task, samples = _load(release, bank)
    counter = _Counter(monkeypatch)
    seen: dict[str, list[int]] = {}
    _fake_grader(monkeypatch, seen, bank)
    answer = f"```python\n{SOLUTION}```"
    for sample in (samples[0], samples[1], samples[0]):
        run_sync(task.grader(answer, sample))
        assert bank.held == ()
    assert len(counter.calls) == 3


def test_a_bad_private_field_fails_its_grade_not_the_load(tmp_path, monkeypatch):
    path = write_release(tmp_path / "test.jsonl", problems=2, private_bytes=20_000)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["private_test_cases"] = "!" * 10_000  # neither JSON nor base64, and long
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task, samples = _load(path, code_task.ProblemBank())
    assert len(samples) == 2
    with pytest.raises(Exception, match="neither JSON nor base64"):
        run_sync(task.grader(f"```python\n{SOLUTION}```", samples[1]))


@pytest.mark.slow
def test_a_generated_release_grades_in_the_sandbox(tmp_path, monkeypatch, needs_sandbox):
    path = write_release(tmp_path / "test.jsonl", problems=3, private_bytes=1_000_000)
    bank = code_task.ProblemBank(cache_bytes=0)
    task, samples = _load(path, bank)
    counter = _Counter(monkeypatch)

    async def grade_all() -> list[Grade]:
        return await asyncio.gather(*(task.grader(f"```python\n{code}```", s)
                                      for s in samples for code in (SOLUTION, WRONG)))

    grades = run_sync(grade_all())
    assert [g.correct for g in grades] == [True, False] * 3, [g.reason for g in grades]
    assert all(g.reason == "passed 5/5" for g in grades[::2])
    assert all(g.reason == "wrong answer on test 1" for g in grades[1::2])
    assert len(counter.calls) == 3 and bank.held == ()


def test_a_simulated_run_over_lazy_tests_grades_as_the_model_meant(simulator, tmp_path,
                                                                   needs_sandbox):
    import pandas as pd

    from evals.runner import RunConfig, run

    path = write_release(tmp_path / "test.jsonl", problems=4, private_bytes=20_000, tests=2)
    with simulator({"livecodebench": path}, accuracy=0.5, seed=3) as sim:
        cfg = RunConfig(tasks=("livecodebench",), model="sim-coder", provider="simulator",
                        base_url=sim.base_url, n=2, data=(("livecodebench", path),), seed=1,
                        out=tmp_path / "run", concurrency=4)
        result = run_sync(run(cfg))
    df = pd.read_parquet(result.out_dir / "samples.parquet")
    assert len(df) == 8 and (df["outcome"] == "answered").all()
    meant = ~df["reasoning"].str.contains("not fully sure")
    assert (df["correct"] == meant).all(), df[["sample_id", "reason"]]
    assert all(json.loads(d)["tests"] == 3 for d in df["details"])


# -- long runs: the summary from the stored table --------------------------------------------


def _row(i: int, answer: str | None, correct: bool, n: int) -> dict[str, Any]:
    return {"task": "t", "sample_id": f"p{i // n}", "repeat": i % n, "seed": i,
            "model": "m", "outcome": "answered", "correct": correct, "extracted": answer,
            "reason": "r", "details": None, "target": "x", "response": "y" * 500,
            "reasoning": None, "finish_reason": "stop", "prompt_tokens": 10,
            "completion_tokens": 20, "reasoning_tokens": None, "cost": None,
            "latency_s": 0.1 * (i % 7), "ttft_s": None, "retries": 0, "cached": False,
            "error": None, "simulated": True,
            "metadata": json.dumps({"level": str(i % 3)}), "messages": "[]"}


def test_votes_keep_a_digest_of_long_answers_and_vote_the_same():
    programs = [f"def f():\n    return {k}\n" + "#" * 5000 for k in range(3)]
    rows = [_row(i, programs[(i * 7) % 3], (i * 7) % 3 == 0, 8) for i in range(80)]
    group = _Group()
    for row in rows:
        group.add(row)
    assert group.votes is not None
    assert all(isinstance(k, bytes) and len(k) == 16 for k in group.votes.answers)
    short = [{**r, "extracted": str(programs.index(r["extracted"]))} for r in rows]
    assert summarize(rows, pass_k=frozenset(), wanted={"t": ("maj@4",)}) == summarize(
        short, pass_k=frozenset(), wanted={"t": ("maj@4",)})


def test_a_code_task_keeps_no_votes_unless_majority_is_asked():
    rows = [_row(i, f"print({i})" * 100, i % 2 == 0, 4) for i in range(40)]
    (row,) = summarize(rows, pass_k=frozenset({"t"}))
    assert "maj@4" not in row and row["pass@4"] == 1.0


def test_finalize_summarises_from_the_stored_table(tmp_path):
    partial = tmp_path / "attempts.partial.jsonl"
    writer = AttemptWriter(partial)
    rows = [_row(i, str(i % 5), i % 5 == 0, 10) for i in range(20_000)]
    rows[3] = {**rows[3], "response": "z" * (6 << 20)}  # one row longer than a read block
    for row in rows:
        writer.write(row)
    writer.close()
    manifest: dict[str, Any] = {}
    summary = finalize(tmp_path, partial, manifest, {"t": ("level",)})
    expected = summarize(rows, {"t": ("level",)})
    for row in expected:
        row.pop("measured", None)
    assert summary == expected
    assert manifest["attempts"] == 20_000 and manifest["counts"]["answered"] == 20_000
    assert manifest["simulated"] is True
    assert not partial.exists() and (tmp_path / "samples.parquet").is_file()
