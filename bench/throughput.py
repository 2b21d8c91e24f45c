"""Throughput of `evals run` against the simulated server, beside a bare aiohttp loop.

Drives `evals simulate` (another process) at 0 ms and 200 ms latency with 2,000 attempts
(AIME 2025, 25 problems x 80 repeats) at concurrency 64 and 256, and prints for each:

* start-up: from launching `evals run` to the first request reaching the server;
* attempts/s and CPU ms per attempt: the harness's CPU during its request phase, every
  thread, storing and grading included, less the one-time Arrow import a helper thread does
  meanwhile (manifest ``timing``); and the whole process's CPU, imports and all;
* whole-command efficiency = ideal / wall, request-phase efficiency = ideal / (last answer
  - first request), where ideal = attempts x latency / concurrency;

and the same figures for a bare aiohttp loop measured in the same run (the baseline).

On a machine with two cores or more the simulator is pinned to the last core and the
client under test (the harness, or the bare loop) to the others (``--no-pin`` to let the
scheduler place them). In real use the endpoint is another machine; sharing the cores with
the simulator makes the processes evict each other's caches and raises every client's CPU
(compare the two placements: the README lists both).

Figures are medians of --repeats runs; the last lines compare them with the targets of
issue 14 (the transport): whole-command efficiency >= 0.85 at 200 ms and 64 in flight,
request-phase efficiency at 256 in flight >= 0.85 of the bare loop's, CPU per attempt
within 3x the bare loop's; and issue 2's start-up bound. Usage:

    python bench/throughput.py [--repeats 3] [--n 80] [--limit 25] [--no-pin] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aime2025" / "aime2025.jsonl"

BARE_LOOP = r'''
import asyncio, json, sys, time
import aiohttp, orjson
url, conc, total, prompts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
async def main():
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=conc)
    async with aiohttp.ClientSession(connector=conn) as s:
        it = iter(range(total))
        async def worker():
            for i in it:
                body = {"model": "bare", "messages": [{"role": "user", "content": prompts[i % len(prompts)]}], "seed": i}
                async with s.post(url, data=orjson.dumps(body), headers={"content-type": "application/json"}) as r:
                    orjson.loads(await r.read())
        c0, w0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}))
asyncio.run(main())
'''


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _pinned(cores: set[int] | None) -> Any:
    """A ``preexec_fn`` that confines the child to ``cores`` (None: no confinement)."""
    if not cores:
        return None
    return lambda: os.sched_setaffinity(0, cores)


def core_sets(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """(simulator cores, client cores): the last core, and the others."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not pin or len(cores) < 2:
        return None, None
    return {cores[-1]}, set(cores[:-1])


def start_simulator(data: Path, latency_ms: float, log: Path, cores: set[int] | None = None
                    ) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "evals.cli", "simulate", "--task", "aime2025", "--data",
           str(data), "--port", "0", "--latency-ms", str(latency_ms), "--request-log", str(log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                            preexec_fn=_pinned(cores))  # noqa: PLW1509 (no threads here)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+/v1)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, match.group(1)


def run_harness(url: str, data: Path, conc: int, n: int, limit: int, log: Path,
                latency_s: float, cores: set[int] | None = None,
                before: int = 0) -> dict[str, float]:
    """One ``evals run``; ``before``: lines the request log already has."""
    out = Path(tempfile.mkdtemp(prefix="bench-run-"))
    cmd = [sys.executable, "-m", "evals.cli", "run", "aime2025", "--model", "sim",
           "--base-url", url, "--data", str(data), "--n", str(n), "--limit", str(limit),
           "--concurrency", str(conc), "--out", str(out / "run")]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    launched = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False,
                            preexec_fn=_pinned(cores))
    wall = time.time() - launched
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"evals run failed: {result.stderr[-2000:]}")
    lines = _log_lines(log)[before:]
    manifest = json.loads((out / "run" / "manifest.json").read_text())
    attempts = manifest["attempts"]
    first = min(r["t"] for r in lines)
    last = max(r["done"] for r in lines)
    ideal = attempts * latency_s / conc
    return {
        "startup_s": first - launched,
        "wall_s": wall,
        "phase_s": last - first,
        "attempts_per_s": attempts / (last - first),
        "cpu_ms_per_attempt": 1000 * manifest["timing"]["requests_cpu_s"] / attempts,
        "process_cpu_ms_per_attempt": 1000 * ((usage1.ru_utime - usage0.ru_utime)
                                              + (usage1.ru_stime - usage0.ru_stime)) / attempts,
        "whole_eff": ideal / wall if ideal else float("nan"),
        "phase_eff": ideal / (last - first) if ideal else float("nan"),
        "requests": len(lines),
        "attempts": attempts,
    }


def run_bare(url: str, conc: int, total: int, prompts: list[str], latency_s: float,
             cores: set[int] | None = None) -> dict[str, float]:
    launched = time.time()
    result = subprocess.run([sys.executable, "-c", BARE_LOOP, url + "/chat/completions",
                             str(conc), str(total), json.dumps(prompts)],
                            capture_output=True, text=True, check=True,
                            preexec_fn=_pinned(cores))
    wall = time.time() - launched
    inner = json.loads(result.stdout)
    ideal = total * latency_s / conc
    return {
        "startup_s": float("nan"),
        "wall_s": wall,
        "phase_s": inner["wall_s"],
        "attempts_per_s": total / inner["wall_s"],
        "cpu_ms_per_attempt": 1000 * inner["cpu_s"] / total,
        "process_cpu_ms_per_attempt": float("nan"),
        "whole_eff": ideal / wall if ideal else float("nan"),
        "phase_eff": ideal / inner["wall_s"] if ideal else float("nan"),
        "requests": total,
        "attempts": total,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=80, help="repeats per problem")
    parser.add_argument("--limit", type=int, default=25, help="problems")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--latencies", default="0,200")
    parser.add_argument("--concurrency", default="64,256")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the simulator and the clients to separate cores")
    args = parser.parse_args()
    sim_cores, client_cores = core_sets(not args.no_pin)

    from evals.data import load_task_data
    from evals.registry import Registry

    task = Registry().get("aime2025")
    samples = load_task_data(task, args.data, args.limit).samples
    prompts = [s.messages[-1][1] for s in samples]
    total = args.n * len(samples)

    placement = (f"simulator on core(s) {sorted(sim_cores)}, clients on {sorted(client_cores)}"
                 if sim_cores and client_cores else "not pinned")
    print(f"{total} attempts per run ({len(samples)} problems x {args.n}), "
          f"medians of {args.repeats} runs, {os.cpu_count()} cores, {placement}")
    header = (f"{'latency':>7} {'conc':>5} {'who':>8} {'start s':>8} {'att/s':>8} "
              f"{'cpu ms/att':>10} {'proc cpu':>9} {'whole eff':>9} {'phase eff':>9} "
              f"{'sim cpu ms/req':>14}")
    print(header)
    results: dict[tuple[float, int], dict[str, float]] = {}
    baseline: dict[tuple[float, int], dict[str, float]] = {}
    for latency_ms in (float(x) for x in args.latencies.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "requests.jsonl"
            sim, url = start_simulator(args.data, latency_ms, log, sim_cores)
            try:
                for conc in (int(x) for x in args.concurrency.split(",")):
                    harness, bare, sim_cpu = [], [], []
                    for _ in range(args.repeats):
                        c0, logged = _proc_cpu(sim.pid), len(_log_lines(log))
                        harness.append(run_harness(url, args.data, conc, args.n, args.limit,
                                                   log, latency_ms / 1000, client_cores,
                                                   before=logged))
                        sim_cpu.append(1000 * (_proc_cpu(sim.pid) - c0)
                                       / max(1, harness[-1]["requests"]))
                        bare.append(run_bare(url, conc, total, prompts, latency_ms / 1000,
                                             client_cores))
                    for who, runs in (("evals", harness), ("aiohttp", bare)):
                        m = median_of(runs)
                        (results if who == "evals" else baseline)[(latency_ms, conc)] = m
                        print(f"{latency_ms:>7.0f} {conc:>5} {who:>8} {m['startup_s']:>8.2f} "
                              f"{m['attempts_per_s']:>8.0f} {m['cpu_ms_per_attempt']:>10.3f} "
                              f"{m['process_cpu_ms_per_attempt']:>9.3f} {m['whole_eff']:>9.2f} "
                              f"{m['phase_eff']:>9.2f} "
                              f"{statistics.median(sim_cpu) if who == 'evals' else float('nan'):>14.3f}",
                              flush=True)
            finally:
                sim.terminate()
                sim.wait(10)
    report_targets(results, baseline)


def report_targets(results: dict[tuple[float, int], dict[str, float]],
                   baseline: dict[tuple[float, int], dict[str, float]]) -> None:
    """Issue 14's targets (and issue 2's start-up bound), beside the medians above."""
    nan = float("nan")
    phase_256 = results.get((200.0, 256), {}).get("phase_eff", nan)
    bare_256 = baseline.get((200.0, 256), {}).get("phase_eff", nan)
    cpu_ratio = max((m["cpu_ms_per_attempt"] / baseline[k]["cpu_ms_per_attempt"]
                     for k, m in results.items() if k in baseline), default=nan)
    checks = [
        ("start-up to the first request <= 1.5 s (worst setting)",
         max((m["startup_s"] for m in results.values()), default=nan), "<=", 1.5),
        ("whole-command efficiency >= 0.85 at 200 ms, concurrency 64",
         results.get((200.0, 64), {}).get("whole_eff", nan), ">=", 0.85),
        ((f"request-phase efficiency at 200 ms, concurrency 256 ({phase_256:.2f}) >= 0.85 of "
         f"the bare loop's ({bare_256:.2f}): ratio"), phase_256 / bare_256, ">=", 0.85),
        ("CPU per attempt <= 3x the bare loop's (worst setting): ratio", cpu_ratio, "<=", 3.0),
    ]
    print()
    for label, value, op, bound in checks:
        met = value <= bound if op == "<=" else value >= bound
        state = "n/a" if math.isnan(value) else ("met" if met else "NOT met")
        print(f"{label}: {value:.3f} -> {state}")


if __name__ == "__main__":
    main()
