"""Code grading on Ray (``--executor ray``): same sandbox, same verdicts, lost workers regraded.

One local Ray instance (2 CPUs, no dashboard) serves the whole module; it takes about
5 s to start. Programs really run under bubblewrap on Ray's worker processes. The
LiveCodeBench rows come from livecodebench/ of the test data (``benchmark_file``); the
programs are the simulated model's (right, wrong, crashing: ``answer_writer`` of the
task) and our own real solutions (tests/cases/lcb_solutions.jsonl).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evals.data import load_task_data
from evals.errors import ConfigError
from evals.grading.code import CodeProblem, grade_program
from evals.grading.context import GradingContext, GradingOptions
from evals.grading.lcb import TestCase as Case
from evals.records import Grade, Sample
from evals.registry import Registry

LCB_SAMPLE = "livecodebench/code_generation_lite_sample.jsonl"
SOLUTIONS = Path(__file__).parent / "cases" / "lcb_solutions.jsonl"
#: Grade details that measure the run rather than decide the verdict.
TIMINGS = {"cpu_s", "wall_s", "first_try", "rerun"}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A local Ray instance for the module; its GCS address (what --ray-address takes)."""
    ray = pytest.importorskip("ray", reason='needs Ray: pip install -e ".[ray]"')
    if ray.is_initialized():  # another module's instance: start our own, known one
        ray.shutdown()
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(context.address_info["gcs_address"])
    finally:
        ray.shutdown()


def _ray_executor(**kwargs: Any) -> Any:
    import ray

    from evals.grading.ray_executor import RayExecutor

    return RayExecutor(ray, **kwargs)


# -- the same verdicts as the local pool -------------------------------------------------


def _attempts(task: Any, samples: list[Sample]) -> list[tuple[str, str, Sample]]:
    """(label, response text, sample): per problem, one right and two wrong answers of the
    simulated model, then our real solutions, a syntax error and an answer without code."""
    assert task.answer_writer is not None
    out = []
    for i, sample in enumerate(samples):
        for repeat, correct in enumerate((True, False, False)):
            _, text = task.answer_writer(sample, correct, random.Random(1000 * i + repeat), "")
            out.append((f"{sample.id}/sim-{correct}-{repeat}", text, sample))
    by_id = {s.id: s for s in samples}
    for line in SOLUTIONS.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            text = f"Done.\n\n```python\n{row['code']}\n```\n"
            out.append((f"{row['question_id']}/solution", text, by_id[row["question_id"]]))
    out.append(("syntax", "```python\nclass Solution:\n    def f(self:\n```", samples[0]))
    out.append(("no code", "I would sort the array first.", samples[1]))
    return out


async def _grade_all(options: GradingOptions, task: Any,
                     attempts: list[tuple[str, str, Sample]]) -> tuple[list[Grade], str]:
    async with GradingContext(options) as ctx:
        executor = type(ctx.executor()).__name__
        grades = await asyncio.gather(*(task.grader(text, sample)
                                        for _, text, sample in attempts))
    return list(grades), executor


def _verdict(grade: Grade) -> tuple[Any, ...]:
    details = {k: v for k, v in grade.details.items() if k not in TIMINGS}
    return grade.correct, grade.reason, grade.extracted, json.dumps(details, sort_keys=True)


@pytest.mark.slow
def test_ray_gives_the_local_pools_verdicts_on_the_livecodebench_sample(
        ray_address, benchmark_file, needs_sandbox):
    task = Registry().get("livecodebench")
    samples = load_task_data(task, benchmark_file(LCB_SAMPLE)).samples
    attempts = _attempts(task, samples)

    started = time.perf_counter()
    local, local_kind = asyncio.run(_grade_all(GradingOptions(), task, attempts))
    local_s = time.perf_counter() - started
    remote, remote_kind = asyncio.run(_grade_all(GradingOptions(executor="ray"), task,
                                                 attempts))
    remote_s = time.perf_counter() - started - local_s
    print(f"{len(attempts)} attempts: local {local_s:.1f} s, ray {remote_s:.1f} s")

    assert (local_kind, remote_kind) == ("BwrapExecutor", "RayExecutor")
    differ = [(label, _verdict(a), _verdict(b))
              for (label, _, _), a, b in zip(attempts, local, remote, strict=True)
              if _verdict(a) != _verdict(b)]
    assert differ == []
    # Every kind of verdict was compared, on every problem of the sample.
    reasons = {g.reason.split(" on ")[0].split(" ")[0] for g in remote}
    assert {"passed", "wrong", "runtime", "syntax", "no"} <= reasons, reasons
    assert len({s.id for _, _, s in attempts}) == len(samples) == 60
    assert sum(g.correct is True for g in remote) >= 60
    assert all(g.correct is not None for g in remote)  # nothing "could not grade"


# -- the command line --------------------------------------------------------------------


@pytest.mark.slow
def test_a_cli_run_with_executor_ray_grades_every_attempt_as_the_model_meant(
        ray_address, simulator, benchmark_file, tmp_path, needs_sandbox):
    data = benchmark_file(LCB_SAMPLE)
    out = tmp_path / "run"
    with simulator({"livecodebench": data}, accuracy=0.5, reasoning_format="reasoning_content",
                   seed=3) as sim:
        done = subprocess.run(
            [sys.executable, "-m", "evals.cli", "run", "livecodebench", "--model", "sim-coder",
             "--provider", "simulator", "--base-url", sim.base_url, "--data", str(data),
             "--n", "2", "--limit", "8", "--seed", "4", "--out", str(out),
             "--executor", "ray", "--ray-address", ray_address],
            capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    df = pd.read_parquet(out / "samples.parquet")
    assert len(df) == 16 and (df["outcome"] == "answered").all()
    meant = ~df["reasoning"].str.contains("not fully sure")
    assert meant.any() and (~meant).any()
    assert (df["correct"] == meant).all(), df.loc[df["correct"] != meant, ["reason", "details"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["grading"]["executor"] == "ray"
    assert manifest["config"]["grading"]["ray_address"] == ray_address


def test_an_unreachable_ray_address_stops_the_run_fast_before_any_request(
        simulator, benchmark_file, tmp_path):
    pytest.importorskip("ray", reason='needs Ray: pip install -e ".[ray]"')
    from helpers import read_log

    data = benchmark_file(LCB_SAMPLE)
    with simulator({"livecodebench": data}) as sim:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "evals.cli", "run", "livecodebench", "--model", "m",
             "--base-url", sim.base_url, "--data", str(data), "--limit", "1",
             "--out", str(tmp_path / "run"), "--executor", "ray", "--ray-address",
             "127.0.0.1:1"], capture_output=True, text=True, timeout=120, check=False)
        assert read_log(sim.request_log) == []
    assert time.monotonic() - started < 60
    assert done.returncode == 2
    assert "Could not connect to Ray at 127.0.0.1:1" in done.stderr, done.stderr


def test_ray_address_without_executor_ray_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"--ray-address .* goes with --executor ray"):
        GradingOptions(ray_address="10.0.0.5:6379")


def test_without_ray_installed_the_error_gives_the_install_command(monkeypatch):
    from evals.grading.ray_executor import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[ray\]"'):
        import_ray()
    with pytest.raises(ConfigError, match="not installed"):
        GradingContext(GradingOptions(executor="ray")).executor()


def test_a_worker_without_bubblewrap_refuses_naming_the_node(monkeypatch, tmp_path):
    from evals.grading import ray_executor
    from evals.sandbox import SandboxUnavailable

    monkeypatch.setattr(ray_executor, "_WORKER_EXECUTORS", {})
    monkeypatch.setenv("EVALS_BWRAP", str(tmp_path / "no-bwrap"))
    with pytest.raises(SandboxUnavailable, match=r"^On Ray node .*EVALS_BWRAP="):
        ray_executor._probe_worker(False)


# -- lost workers ----------------------------------------------------------------------------


def _proc(pid: int) -> tuple[str, int, str]:
    """(comm, parent pid, cmdline) of a process."""
    base = Path(f"/proc/{pid}")
    stat = (base / "stat").read_text()
    ppid = int(stat[stat.rindex(")") + 2:].split()[1])
    cmdline = (base / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return (base / "comm").read_text().strip(), ppid, cmdline


def _sandboxed_workers() -> set[int]:
    """Pids of the Ray worker processes that have a sandbox (bubblewrap) running now."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, ppid, _ = _proc(int(entry.name))
            if comm == "bwrap" and _proc(ppid)[2].startswith("ray::"):
                found.add(ppid)
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return found


# A stdin problem whose one test takes the program two seconds of sleep (no CPU time):
# long enough to kill the worker that runs it.
SLOW_PROBLEM = CodeProblem("stdin", (Case("3\n", "6\n", "stdin"),))
SLOW_PROGRAM = "import time\nn = int(input())\ntime.sleep(2)\nprint(2 * n)\n"


async def _grade_killing_workers(executor: Any, kills: int) -> tuple[Grade, list[int], set[int]]:
    """Grade SLOW_PROGRAM, SIGKILLing the worker running it ``kills`` times; return the grade,
    the workers killed and every worker seen running it."""
    job = asyncio.create_task(grade_program(SLOW_PROGRAM, SLOW_PROBLEM, extracted=SLOW_PROGRAM,
                                            how="python block", executor=executor))
    killed: list[int] = []
    seen: set[int] = set()
    deadline = time.monotonic() + 90
    while not job.done():
        assert time.monotonic() < deadline, "the attempt never finished"
        running = _sandboxed_workers()
        seen |= running
        for pid in running - set(killed):
            if len(killed) < kills:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        await asyncio.sleep(0.05)
    return job.result(), killed, seen


@pytest.mark.slow
def test_a_worker_killed_mid_grading_has_its_attempt_regraded_elsewhere(ray_address,
                                                                         needs_sandbox):
    executor = _ray_executor()
    grade, killed, seen = asyncio.run(_grade_killing_workers(executor, kills=1))
    assert len(killed) == 1
    assert grade.correct is True and grade.reason == "passed 1/1", grade.details
    # The verdict came from another worker process; the killed one is gone, its sandbox too.
    assert seen - set(killed), "no other worker ran the attempt"
    assert not Path(f"/proc/{killed[0]}").exists()
    assert not _sandboxed_workers()


@pytest.mark.slow
def test_an_attempt_whose_workers_all_die_is_not_graded_rather_than_wrong(ray_address,
                                                                          needs_sandbox):
    executor = _ray_executor(max_retries=1)
    grade, killed, _ = asyncio.run(_grade_killing_workers(executor, kills=2))
    assert len(killed) == 2
    assert grade.correct is None and grade.reason == "could not run the tests"
    assert "worker lost" in grade.details["error"]
    assert "lost 2 times" in grade.details["error"]
