"""Peak memory (RSS) of the harness: it must not grow with the release or the run.

Two measurements, each at two sizes, each size in a fresh process (peak RSS is the
process's ``ru_maxrss``), printed as a ratio to the smaller size measured in the same run
(bounded means a ratio near 1, not near the ratio of the sizes):

* ``lcb``: load and grade a generated LiveCodeBench-shaped release (``--problems 50,400``
  problems with ``--private-mb 2`` MB of private tests each, base64 + zlib + pickle as in
  ``code_generation_lite``), from a cold cache (``datasets`` prepares it, the harness
  writes its row cache), then one correct program per problem graded in the real sandbox
  (``--grading-processes`` at once). Sandboxed programs are other processes: what is
  measured is the harness's own memory.
* ``run``: a simulated run of AIME 2025 against ``evals simulate`` (another process) at
  ``--attempts 2000,20000`` attempts (30 problems x n), peak RSS of the ``evals run``
  process.

Usage:

    python bench/memory.py [--only lcb|run] [--problems 50,400] [--private-mb 2]
                           [--attempts 2000,20000] [--data AIME2025.jsonl]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AIME = ROOT.parent / "shared" / "data" / "aime2025" / "aime2025.jsonl"
SOLUTION = "import sys\nprint(len(sys.stdin.read().split()) - 1)\n"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_release(path: Path, problems: int, private_mb: float, tests: int = 8,
                  seed: int = 0) -> int:
    """A LiveCodeBench-shaped JSONL file; returns its size in bytes. Each problem: count
    the numbers on the second line; the private tests are random numbers (about 10
    characters each), ``private_mb`` MB per problem, decoded."""
    from evals.grading.lcb import TestCase, encode_private_tests

    rng = random.Random(seed)
    per_test = int(private_mb * 1e6 / tests)
    pool = " ".join(str(rng.randrange(10**9)) for _ in range(2 * per_test // 10 + 10))
    with path.open("w") as fh:
        for i in range(problems):
            private = []
            for _ in range(tests):
                start = pool.index(" ", rng.randrange(len(pool) - per_test - 1)) + 1
                body = pool[start:start + per_test].rsplit(" ", 1)[0]
                private.append(TestCase(f"{body.count(' ') + 1}\n{body}\n",
                                        f"{body.count(' ') + 1}\n", "stdin"))
            public = [TestCase("3\n1 2 3\n", "3\n", "stdin")]
            fh.write(json.dumps({
                "question_title": f"Count {i}", "platform": "atcoder",
                "question_content": f"Problem {i}: print how many numbers the second line has.",
                "question_id": f"gen{i:04d}", "contest_id": f"gen{i // 7}",
                "contest_date": f"2024-{1 + i % 12:02d}-0{1 + i % 9}T00:00:00",
                "starter_code": "", "difficulty": ("easy", "medium", "hard")[i % 3],
                "public_test_cases": json.dumps([t._asdict() for t in public]),
                "private_test_cases": encode_private_tests(private),
                "metadata": "{}",
            }) + "\n")
    return path.stat().st_size


def child_lcb(path: Path, processes: int) -> dict[str, Any]:
    """Load and grade ``path`` in this (fresh) process; the figures as a dict."""
    import evals_tasks.code as code_task

    from evals.data import load_task_data
    from evals.grading.context import GradingContext, GradingOptions

    decodes = 0
    real = code_task.decode_private_tests

    def counting(field: str, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return real(field, **kwargs)

    code_task.decode_private_tests = counting
    started = time.perf_counter()
    task = code_task.livecodebench_task(code_task.ProblemBank())
    samples = load_task_data(task, path).samples
    loaded_s, after_load = time.perf_counter() - started, _peak_mb()

    async def grade_all() -> list[Any]:
        slots = asyncio.Semaphore(max(8, 4 * processes))

        async def one(sample: Any) -> Any:
            async with slots:
                return await task.grader(f"```python\n{SOLUTION}```", sample)

        async with GradingContext(GradingOptions(processes=processes)) as grading:
            grading.executor()
            return await asyncio.gather(*(one(s) for s in samples))

    started = time.perf_counter()
    grades = asyncio.run(grade_all())
    return {"problems": len(samples), "passed": sum(bool(g.correct) for g in grades),
            "reasons": sorted({g.reason for g in grades if not g.correct})[:3],
            "decodes": decodes, "load_s": round(loaded_s, 1),
            "grade_s": round(time.perf_counter() - started, 1),
            "peak_after_load_mb": round(after_load), "peak_mb": round(_peak_mb())}


def _fresh_env(folder: Path) -> dict[str, str]:
    return {**os.environ, "EVALS_CACHE_DIR": str(folder / "evals-cache"),
            "HF_DATASETS_CACHE": str(folder / "hf-cache"), "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                        os.environ.get("PYTHONPATH")]))}


def _child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_lcb(sizes: list[int], private_mb: float, processes: int) -> list[dict[str, Any]]:
    results = []
    for problems in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            folder = Path(tmp)
            path = folder / "test5.jsonl"
            size = write_release(path, problems, private_mb)
            figures = _child(["--child", "lcb", str(path), str(processes)], _fresh_env(folder))
            figures["file_mb"] = round(size / 1e6)
            results.append(figures)
    return results


def child_run(url: str, data: Path, n: int, out: Path) -> dict[str, Any]:
    import evals.runner
    from evals.runner import RunConfig, run

    before_finalize: list[float] = []
    finalize = evals.runner.finalize  # type: ignore[attr-defined]

    def measured_finalize(*args: Any, **kwargs: Any) -> Any:
        before_finalize.append(_peak_mb())  # the request phase's peak
        return finalize(*args, **kwargs)

    evals.runner.finalize = measured_finalize  # type: ignore[attr-defined]
    cfg = RunConfig(tasks=("aime2025",), model="sim", provider="simulator", base_url=url,
                    n=n, data=(("aime2025", data),), out=out, concurrency=64)
    started = time.perf_counter()
    result = asyncio.run(run(cfg))
    wall = time.perf_counter() - started
    attempts = int(result.manifest["attempts"])
    return {"attempts": attempts, "wall_s": round(wall, 1),
            "attempts_per_s": round(attempts / wall),
            "peak_before_finalize_mb": round(before_finalize[0]), "peak_mb": round(_peak_mb())}


def bench_run(attempts: list[int], data: Path) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        env = _fresh_env(folder)
        sim = subprocess.Popen([sys.executable, "-m", "evals.cli", "simulate", "--task",
                                "aime2025", "--data", str(data), "--port", "0"],
                               stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert sim.stdout is not None
            line = sim.stdout.readline()
            match = re.search(r"(http://\S+/v1)", line)
            if not match:
                raise SystemExit(f"simulator did not start: {line!r}")
            problems = sum(1 for line in data.read_text().splitlines() if line.strip())
            for total in attempts:
                n = max(1, round(total / problems))
                results.append(_child(["--child", "run", match.group(1), str(data), str(n),
                                       str(folder / f"run-{total}")], env))
        finally:
            sim.terminate()
            sim.wait(timeout=30)
    return results


def _report(title: str, key: str, results: list[dict[str, Any]]) -> None:
    base = results[0]["peak_mb"]
    print(f"\n{title}")
    for figures in results:
        ratio = figures["peak_mb"] / base
        print(f"  {key} {figures[key]:>7}: peak RSS {figures['peak_mb']:>5} MB "
              f"(x{ratio:.2f} of the smallest)  {json.dumps(figures)}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, rest = sys.argv[2], sys.argv[3:]
        if kind == "lcb":
            figures = child_lcb(Path(rest[0]), int(rest[1]))
        else:
            figures = child_run(rest[0], Path(rest[1]), int(rest[2]), Path(rest[3]))
        print(json.dumps(figures))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("lcb", "run"))
    parser.add_argument("--problems", default="50,400")
    parser.add_argument("--private-mb", type=float, default=2.0)
    parser.add_argument("--grading-processes", type=int, default=4)
    parser.add_argument("--attempts", default="2000,20000")
    parser.add_argument("--data", type=Path, default=DEFAULT_AIME)
    args = parser.parse_args()
    if args.only in (None, "lcb"):
        sizes = [int(x) for x in args.problems.split(",")]
        _report(f"LiveCodeBench-shaped release, {args.private_mb} MB of private tests per "
                "problem: load + grade", "problems",
                bench_lcb(sizes, args.private_mb, args.grading_processes))
    if args.only in (None, "run"):
        _report("Simulated AIME 2025 run, concurrency 64", "attempts",
                bench_run([int(x) for x in args.attempts.split(",")], args.data))


if __name__ == "__main__":
    main()
