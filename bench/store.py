"""The run store's cost per committed answer: group commit beside the 50 ms window it replaced.

Feeds ``--answers`` answers (an AIME-sized request and a simulator-sized response each) to
``Store.commit_soon`` at a steady rate, the way a run's workers do (each answer counted by
its ``then`` callback once committed), on the event loop the CLI uses, and prints per
design and rate:

* inserts/s: answers committed per second of wall time, first answer to last commit;
* CPU us per answer: the process's CPU (every thread: the loop and the store's
  checkpointer), less that of the same feed into a store that does nothing;
* rows per transaction, and the commit delay (from ``commit_soon`` to its callback):
  median and 99th percentile. The delay is what a SIGKILL can lose: answers received but
  not yet committed.

Designs: ``group`` is ``evals.store.Store`` (group commit: the answers of one turn of
the event loop share a transaction, committed at the end of the turn; those that arrive
meanwhile form the next; no timer); ``window`` is the design it replaced, kept here
verbatim for the comparison (answers within 50 ms share one transaction). Ratios are
group / window, measured in the same run. Rates: answers per second (``max``: as fast as
the loop can queue them, 64 a turn). Figures are medians of ``--repeats`` runs. Usage:

    python bench/store.py [--answers 20000] [--rates 300,2000,max] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from evals.records import Response, Usage
from evals.store import _INSERT, _SCHEMA, Store, _encode, request_key


class WindowStore:
    """The store before the group commit (the commit path only): answers queued within
    ``window`` seconds share one transaction, committed in the loop's thread by a timer."""

    def __init__(self, path: Path, window: float = 0.05, max_batch: int = 256) -> None:
        import sqlite3

        self.window, self.max_batch = window, max_batch
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)
        self._rows: dict[str, int | None] = {}
        self._pending: list[tuple[Any, ...]] = []
        self._then: list[Callable[[], object]] = []
        self._committed: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def commit_soon(self, key: str, *, task: str, sample_id: str, repeat: int, seed: int,
                    request: Mapping[str, Any], response: Response,
                    then: Callable[[], object] | None = None) -> asyncio.Future[None]:
        self._pending.append((key, task, sample_id, repeat, seed, orjson.dumps(request),
                              _encode(response), time.time()))
        if then is not None:
            self._then.append(then)
        if self._committed is None:
            loop = asyncio.get_running_loop()
            self._committed = loop.create_future()
            self._timer = loop.call_later(self.window, self._flush)
        elif len(self._pending) >= self.max_batch:
            future = self._committed
            self._flush()
            return future
        return self._committed

    def _flush(self) -> None:
        rows, then, future = self._pending, self._then, self._committed
        self._pending, self._then, self._committed = [], [], None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert future is not None
        self._db.execute("BEGIN")
        self._db.executemany(_INSERT, rows)
        self._db.execute("COMMIT")
        self._rows.update(dict.fromkeys([row[0] for row in rows]))
        for callback in then:
            callback()
        if not future.done():
            future.set_result(None)

    def close(self) -> None:
        if self._pending:
            self._flush()
        self._db.close()


class NullStore:
    """Counts each answer at once: the feed's own cost, subtracted from the others."""

    def __init__(self, path: Path) -> None:
        pass

    def commit_soon(self, key: str, *, task: str, sample_id: str, repeat: int, seed: int,
                    request: Mapping[str, Any], response: Response,
                    then: Callable[[], object] | None = None) -> asyncio.Future[None]:
        orjson.dumps(request), _encode(response)  # the encoding both designs do
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        if then is not None:
            asyncio.get_running_loop().call_soon(then)
        return future

    def close(self) -> None:
        pass


DESIGNS: dict[str, Callable[[Path], Any]] = {"null": NullStore, "window": WindowStore,
                                             "group": Store}

PROMPT = ("Find the sum of all integer bases $b>9$ for which $17_b$ is a divisor of $97_b$. "
          * 4) + "Please reason step by step, and put your final answer within \\boxed{}."
RESPONSE = Response(text="We need 17_b | 97_b ... so the answer is \\boxed{70}. " * 3,
                    reasoning="Let me think. " * 60, finish_reason="stop",
                    usage=Usage(120, 400, 300), latency_s=0.2)


def _bodies(n: int) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for i in range(n):
        body = {"model": "m", "messages": [{"role": "user", "content": PROMPT}],
                "temperature": 0.7, "max_tokens": 32768, "seed": i}
        out.append((request_key(body, i % 64), body))
    return out


async def _feed(store: Any, bodies: list[tuple[str, dict[str, Any]]], rate: float | None
                ) -> dict[str, float]:
    done = asyncio.Event()
    delays: list[float] = []
    futures: set[asyncio.Future[None]] = set()
    counted = 0

    def counter(started: float) -> Callable[[], None]:
        def then() -> None:
            nonlocal counted
            delays.append(time.perf_counter() - started)
            counted += 1
            if counted == len(bodies):
                done.set()
        return then

    cpu0, wall0 = time.process_time(), time.perf_counter()
    sent = 0
    while sent < len(bodies):
        if rate is None:
            due = sent + 64
        else:  # steady arrivals: as many as are due by now
            due = int((time.perf_counter() - wall0) * rate) + 1
        for key, body in bodies[sent:min(due, len(bodies))]:
            future = store.commit_soon(key, task="aime2025", sample_id="1", repeat=0,
                                       seed=body["seed"], request=body, response=RESPONSE,
                                       then=counter(time.perf_counter()))
            futures.add(future)
        sent = min(due, len(bodies))
        # Wake when the next answer is due, or a millisecond later at high rates (the
        # loop's timer resolution), or at once to queue the next 64 as fast as possible.
        await asyncio.sleep(0.0 if rate is None else max(0.001, 1 / rate))
    await done.wait()
    wall = time.perf_counter() - wall0
    store.close()
    cpu = time.process_time() - cpu0
    delays.sort()
    return {"wall_s": wall, "cpu_s": cpu, "transactions": len(futures),
            "delay_p50_ms": 1000 * delays[len(delays) // 2],
            "delay_p99_ms": 1000 * delays[int(len(delays) * 0.99)]}


def _run_one(design: str, n: int, rate: float | None) -> dict[str, float]:
    bodies = _bodies(n)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        store = DESIGNS[design](Path(tmp) / "store.sqlite")
        main = _feed(store, bodies, rate)
        try:
            import uvloop

            return uvloop.run(main)
        except ImportError:
            return asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=20000)
    parser.add_argument("--rates", default="300,2000,max",
                        help="answers per second, comma-separated; max: as fast as possible")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rates = [None if r == "max" else float(r) for r in args.rates.split(",")]
    print(f"{args.answers} answers a run, medians of {args.repeats}; python {sys.version.split()[0]}")
    header = (f"{'rate':>6} {'design':>7} {'inserts/s':>10} {'CPU us/answer':>14} "
              f"{'rows/txn':>9} {'delay p50 ms':>13} {'delay p99 ms':>13}")
    print(header)
    for rate in rates:
        results: dict[str, list[dict[str, float]]] = {d: [] for d in DESIGNS}
        for _ in range(args.repeats):  # interleaved, so drift hits every design alike
            for design in DESIGNS:
                results[design].append(_run_one(design, args.answers, rate))
        null_cpu = statistics.median(r["cpu_s"] for r in results["null"])
        row: dict[str, dict[str, float]] = {}
        for design in ("window", "group"):
            runs = results[design]
            row[design] = {
                "ips": statistics.median(args.answers / r["wall_s"] for r in runs),
                "cpu_us": statistics.median(
                    1e6 * (r["cpu_s"] - null_cpu) / args.answers for r in runs),
                "per_txn": statistics.median(args.answers / r["transactions"] for r in runs),
                "p50": statistics.median(r["delay_p50_ms"] for r in runs),
                "p99": statistics.median(r["delay_p99_ms"] for r in runs),
            }
            f = row[design]
            label = "max" if rate is None else f"{rate:g}"
            print(f"{label:>6} {design:>7} {f['ips']:>10.0f} {f['cpu_us']:>14.1f} "
                  f"{f['per_txn']:>9.1f} {f['p50']:>13.2f} {f['p99']:>13.2f}")
        g, w = row["group"], row["window"]
        print(f"{'':>6} {'ratio':>7} {g['ips'] / w['ips']:>10.2f} "
              f"{g['cpu_us'] / w['cpu_us']:>14.2f}   (group / window)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
