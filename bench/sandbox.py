"""Start-up cost of a sandboxed program, beside a plain subprocess of the same program.

Runs a trivial Python program (``python -c pass``, with and without ``-S``) N times one
after the other as

* a plain ``subprocess.run`` (the baseline),
* ``UnsafeExecutor`` (the asyncio machinery, rlimits, temporary directory),
* ``BwrapExecutor`` (bubblewrap, namespaces, rlimits),

all in the same run, interleaved so that drift affects each alike, and prints mean and
median wall milliseconds, the sandbox's cost above the baseline (target: at most 15 ms),
executions per second of a batch run through ``BwrapExecutor`` with the default pool
(``max_parallel`` = cores), and test executions per second when grading the solutions of
``tests/cases/lcb_solutions.jsonl`` on the LiveCodeBench sample (``--lcb``) through the
``livecodebench`` task's own grader, all attempts at once, with the default pool. The load average is printed before and after: on a busy
machine every variant slows down and the sandbox (more processes, namespaces) most. Usage:

    python bench/sandbox.py [--runs 50] [--batch 200] [--lcb PATH] [--lcb-rounds 3]
                            [--many-tests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from evals.sandbox import BwrapExecutor, Limits, UnsafeExecutor, make_executor

TARGET_MS = 15.0
ROOT = Path(__file__).resolve().parents[1]
LCB_SAMPLE = ROOT.parent / "shared" / "data" / "livecodebench" / "code_generation_lite_sample.jsonl"
SOLUTIONS = ROOT / "tests" / "cases" / "lcb_solutions.jsonl"


def _plain(argv: list[str]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        # Deliberately blocking: the baseline is a bare subprocess, nothing else running.
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,  # noqa: ASYNC221
                       capture_output=True, env={})
    return run


def _executor(ex: BwrapExecutor | UnsafeExecutor, argv: list[str]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        result = await ex.run(argv, limits=Limits())
        if result.returncode != 0:
            raise SystemExit(f"{type(ex).__name__} failed: {result}")
    return run


async def _timings(cases: dict[str, Callable[[], Awaitable[None]]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for name, case in cases.items():  # warm-up: page cache, probe, imports
        await case()
    for _ in range(runs):
        for name, case in cases.items():
            start = time.perf_counter()
            await case()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="sequential runs per variant")
    parser.add_argument("--batch", type=int, default=200, help="programs in the batch")
    parser.add_argument("--lcb", type=Path, default=LCB_SAMPLE,
                        help="LiveCodeBench rows (code_generation_lite format)")
    parser.add_argument("--lcb-rounds", type=int, default=3,
                        help="times each written solution is graded")
    parser.add_argument("--many-tests", type=int, default=100,
                        help="tests of the one-problem per-test cost measurement")
    args = parser.parse_args()

    bwrap = make_executor()
    assert isinstance(bwrap, BwrapExecutor)
    unsafe = UnsafeExecutor()
    cores = os.cpu_count() or 1
    print(f"python {sys.version.split()[0]} at {sys.executable}; {cores} cores; "
          f"euid {os.geteuid()}; {args.runs} sequential runs each, interleaved")
    _print_load(cores)
    for program in (["-S", "-c", "pass"], ["-c", "pass"]):
        label = "python " + " ".join(program)
        times = await _timings({
            "subprocess.run": _plain([sys.executable, *program]),
            "UnsafeExecutor": _executor(unsafe, ["python", *program]),
            "BwrapExecutor": _executor(bwrap, ["python", *program]),
        }, args.runs)
        base = statistics.median(times["subprocess.run"])
        print(f"\n{label}")
        print(f"  {'variant':<16}{'mean ms':>9}{'median ms':>11}{'median - plain':>16}")
        for name, xs in times.items():
            print(f"  {name:<16}{statistics.fmean(xs):>9.1f}{statistics.median(xs):>11.1f}"
                  f"{statistics.median(xs) - base:>+16.1f}")
        extra = statistics.median(times["BwrapExecutor"]) - base
        verdict = "within" if extra <= TARGET_MS else "ABOVE"
        print(f"  sandbox cost: {extra:+.1f} ms per program ({verdict} the {TARGET_MS:.0f} ms target)")

    for program in (["-S", "-c", "pass"], ["-c", "pass"]):
        start = time.perf_counter()
        results = await asyncio.gather(*(bwrap.run(["python", *program])
                                         for _ in range(args.batch)))
        elapsed = time.perf_counter() - start
        failed = sum(r.returncode != 0 for r in results)
        print(f"\nbatch of {args.batch} x python {' '.join(program)} through BwrapExecutor "
              f"(max_parallel={bwrap.max_parallel}): {args.batch / elapsed:.1f} executions/s"
              f"{f', {failed} FAILED' if failed else ''}")
    await bwrap.aclose()
    await unsafe.aclose()
    _print_load(cores)
    await _lcb_throughput(args.lcb, args.lcb_rounds)
    await _per_test_cost(args.many_tests)
    _print_load(cores)


async def _per_test_cost(count: int) -> None:
    """Wall time per test of one attempt with ``count`` one-line stdin tests (what a
    LiveCodeBench problem with many private tests costs beyond its sandbox)."""
    from evals.grading.code import CodeProblem, grade_program
    from evals.grading.context import GradingContext
    from evals.grading.lcb import TestCase

    tests = tuple(TestCase(f"{i}\n", f"{2 * i}\n", "stdin") for i in range(count))
    problem = CodeProblem("stdin", tests)
    program = "print(2 * int(input()))"
    async with GradingContext():
        await grade_program(program, problem, extracted=program, how="bench")  # warm
        start = time.perf_counter()
        grade = await grade_program(program, problem, extracted=program, how="bench")
        elapsed = time.perf_counter() - start
    print(f"\none attempt, {count} tests: {grade.reason}, {elapsed:.2f} s, "
          f"{1000 * elapsed / count:.1f} ms per test (sandbox start-up included once)")


async def _lcb_throughput(data: Path, rounds: int) -> None:
    """Grade the written LiveCodeBench solutions (all at once) with the default pool."""
    import orjson

    from evals.data import load_task_data
    from evals.grading.context import GradingContext
    from evals.registry import Registry

    task = Registry().get("livecodebench")
    samples = {s.id: s for s in load_task_data(task, data).samples}
    solutions = [orjson.loads(line) for line in SOLUTIONS.read_bytes().splitlines() if line]
    work = [(samples[s["question_id"]], f"```python\n{s['code']}\n```")
            for s in solutions if s["question_id"] in samples] * rounds
    async with GradingContext() as context:
        context.executor()
        start = time.perf_counter()
        grades = await asyncio.gather(*(task.grader(text, sample) for sample, text in work))
        elapsed = time.perf_counter() - start
    tests = sum(int(g.details.get("passed", 0)) + (not g.correct) for g in grades)
    failed = sum(not g.correct for g in grades)
    print(f"\nLiveCodeBench sample: {len(work)} attempts ({len(solutions)} written solutions x "
          f"{rounds}), {tests} test executions in {elapsed:.1f} s with the default pool "
          f"({context.options.workers()} parallel): {tests / elapsed:.1f} test executions/s, "
          f"{len(work) / elapsed:.1f} attempts/s"
          f"{f', {failed} attempts FAILED' if failed else ''}")


def _print_load(cores: int) -> None:
    # Start-up cost grows with contention: every exec and namespace waits for a core.
    load = os.getloadavg()[0]
    note = " -- the machine is busy, figures are inflated" if load > cores / 2 else ""
    print(f"load average (1 min): {load:.2f}{note}")


if __name__ == "__main__":
    asyncio.run(main())
