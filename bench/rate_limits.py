"""The harness's client against a provider's rate limits, beside a bare retry-after loop.

Starts `evals simulate` (another process) with 200 ms latency and, in turn, each limit a
provider enforces: ``--limit-concurrent 32`` (a 429 with Retry-After to a request beyond 32
in flight) and ``--limit-rps 100`` (a 429 beyond 100 requests accepted in one second). For
each, 2,000 attempts are asked with 64 and with 256 requests allowed in flight:

* by the harness's client (``evals.client.ChatClient``, driven by that many workers as
  ``evals run`` drives it), which learns the limit from where the 429s begin;
* by a bare aiohttp loop measured in the same run: the same workers, each retrying a 429
  after its Retry-After, with no limit of its own.

For each it prints the wall time, the ideal (attempts x latency / 32 for the concurrency
limit; attempts / 100 s for the rate limit), their ratio, the requests the server accepted
in flight on average (their busy time over the wall time, from the simulator's request log)
and the share of requests answered 429. Issue 13's targets: wall at most 1.1x the ideal with
at most 5% of requests answered 429. Usage:

    python bench/rate_limits.py [--attempts 2000] [--latency-ms 200] [--only concurrent|rps]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals.client import ChatClient, RetryPolicy
from evals.errors import RequestFailed
from evals.providers import Endpoint

LIMITS = {"concurrent": ("--limit-concurrent", 32), "rps": ("--limit-rps", 100)}


def _start(flag: str, value: float, latency_ms: float, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "evals.cli", "simulate", "--task", "demo_math", "--port", "0",
         "--latency-ms", str(latency_ms), flag, str(value), "--request-log", str(log)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.search(r"listening on (http://\S+/v1)", line)
        if found:
            return proc, found.group(1)
    raise RuntimeError(f"the simulator did not start (exit {proc.wait()})")


def _body(i: int) -> dict[str, Any]:
    return {"model": "bench", "messages": [{"role": "user", "content": f"problem {i % 97}"}],
            "seed": i}


async def _harness(url: str, workers: int, total: int) -> float:
    client = ChatClient(Endpoint("simulator", url, None), concurrency=workers,
                        retry=RetryPolicy(max_retries=50))
    todo = iter(range(total))

    async def worker() -> None:
        for i in todo:
            try:
                await client.complete(_body(i))
            except RequestFailed as exc:  # counted by the server's log; should not happen
                print(f"  request {i} failed: {exc}", file=sys.stderr)

    started = time.perf_counter()
    async with client:
        await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started


async def _bare(url: str, workers: int, total: int) -> float:
    """Each worker sends, and on a 429 sleeps what Retry-After asks, then sends again."""
    todo = iter(range(total))
    connector = aiohttp.TCPConnector(limit=workers, limit_per_host=workers)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            for i in todo:
                payload = orjson.dumps(_body(i))
                while True:
                    async with session.post(url + "/chat/completions", data=payload,
                                            headers={"content-type": "application/json"}) as r:
                        await r.read()
                        if r.status != 429:
                            break
                        ms = r.headers.get("retry-after-ms")
                        wait = float(ms) / 1000 if ms else float(r.headers.get("retry-after", 1))
                    await asyncio.sleep(wait)

        await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started


def _server_side(log: Path, wall: float) -> tuple[float, float, int]:
    """(accepted in flight on average, share of requests answered 429, requests)."""
    busy = 0.0
    limited = requests = 0
    for line in log.read_bytes().splitlines():
        entry = orjson.loads(line)
        requests += 1
        if str(entry.get("fault", "")).startswith("limit"):
            limited += 1
        else:
            busy += entry["done"] - entry["t"]
    return busy / wall, limited / max(1, requests), requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--only", choices=sorted(LIMITS))
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    print(f"{args.attempts} attempts at {args.latency_ms:g} ms; ratio = wall / ideal; "
          "in flight = accepted by the server, on average")
    print(f"{'limit':<22}{'asked':>6}  {'client':<8}{'wall s':>8}{'ideal s':>9}{'ratio':>7}"
          f"{'in flight':>11}{'429s':>8}")
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (flag, value) in LIMITS.items():
            if args.only and name != args.only:
                continue
            ideal = (args.attempts * latency / value if name == "concurrent"
                     else args.attempts / value)
            for workers in args.concurrency:
                for kind, drive in (("harness", _harness), ("bare", _bare)):
                    log = Path(tmp) / f"{name}-{workers}-{kind}.jsonl"
                    proc, url = _start(flag, value, args.latency_ms, log)
                    try:
                        wall = asyncio.run(drive(url, workers, args.attempts))
                    finally:
                        proc.terminate()
                        proc.wait(10)
                    inflight, share, _ = _server_side(log, wall)
                    ratio = wall / ideal
                    print(f"{flag + ' ' + str(value):<22}{workers:>6}  {kind:<8}{wall:>8.2f}"
                          f"{ideal:>9.2f}{ratio:>7.2f}{inflight:>11.1f}{share:>8.1%}",
                          flush=True)
                    if kind == "harness":
                        verdicts.append((f"{flag} {value}, {workers} asked", ratio, share))
    print()
    for label, ratio, share in verdicts:
        ok = ratio <= 1.1 and share <= 0.05
        print(f"{'PASS' if ok else 'FAIL'}  {label}: {ratio:.2f}x ideal (target <= 1.10), "
              f"{share:.1%} answered 429 (target <= 5%)")


if __name__ == "__main__":
    main()
