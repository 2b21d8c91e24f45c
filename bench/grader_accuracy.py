"""Accuracy and speed of our math grader beside Math-Verify, on the same labelled cases.

Each case is ``{"gold", "response", "equal", "note"}`` (default: tests/cases/math_equiv.jsonl).
Both graders see the gold and the whole response (each does its own extraction) and run in
P worker processes (default 2):

* ours: ``evals.grading.math_compare.grade_math_answer`` through ``GradingPool`` (hard per-call
  limit, ``--timeout``);
* Math-Verify: ``parse(gold)``, ``parse(response)``, ``verify(...)`` in a
  ``multiprocessing`` pool (``spawn``), with Math-Verify's own ``parsing_timeout`` and
  ``timeout_seconds`` (signal-based; fine in a worker's main thread).

Workers are started and warmed before the clock starts, on MATH-500 reference solutions
whose gold answers do not occur in the case file (up to ``--warm`` of them), so imports,
ANTLR's lazily built parser tables and first-call costs do not count; then every case is
graded once. Printed: accuracy,
false positives (judged equal, labelled not equal), false negatives, cases/s, and the
throughput ratio. Needs the ``bench`` extra (``pip install math-verify``).

    python bench/grader_accuracy.py [--cases FILE] [--processes 2] [--timeout 5] [--show-errors]

The case file is ours (written for this project, the grader tuned on it), so its figures
are in-sample. ``--math500-solutions`` grades instead every MATH-500 reference solution
(the full worked solution, ending in its ``\\boxed{}``) against its own gold answer: 500
cases neither grader was tuned on, all labelled equal (a check of false negatives).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ROOT / "tests" / "cases" / "math_equiv.jsonl"
MATH500 = ROOT.parent / "shared" / "data" / "math500" / "test.jsonl"
WARM_UP = [
    ("\\frac{1}{2}", "So the answer is $\\boxed{0.5}$."),
    ("(2,\\infty)", "\\boxed{x > 2}"),
    ("\\sqrt{2}", "Final Answer: The final answer is $1.4142$. I hope it is correct."),
    ("x^2+1", "\\boxed{(x+i)(x-i)}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}"),
]


def math_verify_grade(args: tuple[str, str, float]) -> bool | str:
    """One Math-Verify verdict (module level, so a pool can pickle it)."""
    from math_verify import parse, verify

    gold, response, timeout = args
    try:
        gold_parsed = parse(f"${gold}$", parsing_timeout=int(timeout))
        answer_parsed = parse(response, parsing_timeout=int(timeout))
        return bool(verify(gold_parsed, answer_parsed, timeout_seconds=int(timeout)))
    except Exception as exc:  # noqa: BLE001 - a crash counts as "not equal", reported
        return f"error: {type(exc).__name__}"


def _score(name: str, verdicts: Sequence[object], cases: Sequence[dict[str, Any]],
           seconds: float) -> dict[str, Any]:
    fp = fn = errors = 0
    wrong: list[tuple[dict[str, Any], object]] = []
    for case, verdict in zip(cases, verdicts, strict=True):
        judged = verdict is True
        if not isinstance(verdict, bool):
            errors += 1
        if judged != case["equal"]:
            wrong.append((case, verdict))
            if judged:
                fp += 1
            else:
                fn += 1
    return {"grader": name, "accuracy": 1 - (fp + fn) / len(cases), "fp": fp, "fn": fn,
            "errors": errors, "seconds": seconds, "rate": len(cases) / seconds,
            "wrong": wrong}


def warm_up_items(cases: Sequence[dict[str, Any]], limit: int) -> list[tuple[str, str]]:
    """A few fixed pairs, then MATH-500 solutions whose golds the case file does not use."""
    items = list(WARM_UP)
    if MATH500.is_file():
        golds = {c["gold"] for c in cases}
        for line in MATH500.read_text().splitlines():
            row = json.loads(line)
            if row["answer"] not in golds and len(items) < limit:
                items.append((row["answer"], row["solution"]))
    return items


def run_ours(cases: Sequence[dict[str, Any]], processes: int, timeout: float,
             warm: Sequence[tuple[str, str]]) -> dict[str, Any]:
    from evals.grading.math_compare import grade_math_answer
    from evals.grading.pool import GradingPool

    with GradingPool(processes, timeout_s=timeout) as pool:
        pool.start()
        pool.map_sync(grade_math_answer, list(warm) + WARM_UP * processes)
        start = time.perf_counter()
        results = pool.map_sync(grade_math_answer, [(c["gold"], c["response"]) for c in cases])
        seconds = time.perf_counter() - start
    verdicts: list[object] = []
    for result in results:
        if isinstance(result, dict):
            verdicts.append(bool(result["correct"]))
        else:  # GradingTimeout or a crash: graded wrong, reported
            verdicts.append(f"error: {type(result).__name__}")
    return _score("ours (evals.grading)", verdicts, cases, seconds)


def run_math_verify(cases: Sequence[dict[str, Any]], processes: int, timeout: float,
                    warm: Sequence[tuple[str, str]]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        pool.map(math_verify_grade,
                 [(g, r, timeout) for g, r in list(warm) + WARM_UP * processes], chunksize=1)
        start = time.perf_counter()
        verdicts = pool.map(math_verify_grade,
                            [(c["gold"], c["response"], timeout) for c in cases], chunksize=1)
        seconds = time.perf_counter() - start
    return _score("Math-Verify", verdicts, cases, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--processes", "-P", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--warm", type=int, default=200,
                        help="warm-up calls before timing (default 200)")
    parser.add_argument("--show-errors", action="store_true",
                        help="list every case a grader got wrong")
    parser.add_argument("--math500-solutions", action="store_true",
                        help="grade MATH-500's reference solutions against their golds")
    args = parser.parse_args(argv)
    if args.math500_solutions:
        rows500 = [json.loads(line) for line in MATH500.read_text().splitlines() if line]
        cases = [{"gold": r["answer"], "response": r["solution"], "equal": True,
                  "note": r["unique_id"]} for r in rows500]
        args.cases = MATH500
    else:
        cases = [json.loads(line) for line in args.cases.read_text().splitlines()
                 if line.strip()]
    traps = sum(not c["equal"] for c in cases)
    print(f"{len(cases)} cases ({traps} labelled not equal) from {args.cases}; "
          f"{args.processes} processes each; timeout {args.timeout:g} s\n")
    warm = warm_up_items(cases, args.warm)
    rows = [run_ours(cases, args.processes, args.timeout, warm),
            run_math_verify(cases, args.processes, args.timeout, warm)]
    print(f"{'grader':<22} {'accuracy':>9} {'FP':>4} {'FN':>4} {'errors':>6} "
          f"{'seconds':>8} {'cases/s':>8}")
    for row in rows:
        print(f"{row['grader']:<22} {row['accuracy']:>9.1%} {row['fp']:>4} {row['fn']:>4} "
              f"{row['errors']:>6} {row['seconds']:>8.2f} {row['rate']:>8.0f}")
    print(f"\nthroughput ratio (ours / Math-Verify): {rows[0]['rate'] / rows[1]['rate']:.1f}x")
    for row in rows:
        if row["errors"]:
            print(f"{row['grader']}: {row['errors']} calls ended in an error or a timeout "
                  "(counted as 'not equal'; their wall time is included)")
    if args.show_errors:
        for row in rows:
            print(f"\n-- {row['grader']}: {len(row['wrong'])} wrong")
            for case, verdict in row["wrong"]:
                print(f"  expected {case['equal']!s:<5} got {verdict!s:<5} gold={case['gold']!r} "
                      f"note={case['note']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
