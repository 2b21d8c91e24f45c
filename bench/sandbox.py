"""Start-up cost of a sandboxed program, beside a plain subprocess of the same program.

Runs a trivial Python program (``python -c pass``, with and without ``-S``) N times one
after the other as

* a plain ``subprocess.run`` (the baseline),
* ``UnsafeExecutor`` (the asyncio machinery, rlimits, temporary directory),
* ``BwrapExecutor`` (bubblewrap, namespaces, rlimits),

all in the same run, interleaved so that drift affects each alike, and prints mean and
median wall milliseconds, the sandbox's cost above the baseline (target: at most 15 ms),
and executions per second of a batch run through ``BwrapExecutor`` with the default
pool (``max_parallel`` = cores). The load average is printed before and after: on a busy
machine every variant slows down and the sandbox (more processes, namespaces) most. Usage:

    python bench/sandbox.py [--runs 50] [--batch 200]
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

from evals.sandbox import BwrapExecutor, Limits, UnsafeExecutor, make_executor

TARGET_MS = 15.0


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


def _print_load(cores: int) -> None:
    # Start-up cost grows with contention: every exec and namespace waits for a core.
    load = os.getloadavg()[0]
    note = " -- the machine is busy, figures are inflated" if load > cores / 2 else ""
    print(f"load average (1 min): {load:.2f}{note}")


if __name__ == "__main__":
    asyncio.run(main())
