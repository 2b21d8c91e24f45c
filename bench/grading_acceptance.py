"""Grading fidelity on the acceptance sets: is an answer read wherever it is stated?

The acceptance sets (``bench/acceptance/*.jsonl``) are kept apart from the unit tests: the
graders' rules were written from the tests (``tests/test_grading_fidelity.py`` and
``tests/cases/``), and these rows measure whether the rules generalise. Each row names its
category, its provenance (``source``, and for math a ``note`` naming the MATH-500 gold it
uses) and the expected outcome:

* ``choice.jsonl``: ``response``, ``letters``, ``options`` (may be empty), ``gold`` and
  ``expected``, the letter ``extract_choice`` must find (``null``: no answer must be
  found). A *wrong letter* is a found letter other than the expected one (the precision
  the grader must keep: where a response is ambiguous, no answer).
* ``math.jsonl``: ``gold``, ``response`` and ``equal``, the verdict of
  ``grade_math_answer``. A *false positive* is judged equal but labelled not equal.

Printed: per category, the rows, the accuracy, and the wrong letters / false positives.

    python bench/grading_acceptance.py [--show-failures]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "acceptance"


def _rows(name: str) -> list[dict[str, Any]]:
    text = (HERE / name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _table(title: str, bad_name: str, results: dict[str, list[tuple[bool, bool]]]) -> None:
    print(f"{title:<20} {'rows':>5} {'accuracy':>9} {bad_name:>14}")
    total = [r for rows in results.values() for r in rows]
    for category, rows in [*sorted(results.items()), ("all", total)]:
        right = sum(ok for ok, _ in rows)
        bad = sum(b for _, b in rows)
        print(f"{category:<20} {len(rows):>5} {right / len(rows):>8.1%} {bad:>14}")
    print()


def run_choice(show: bool) -> None:
    from evals.grading.choice import extract_choice

    results: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for row in _rows("choice.jsonl"):
        found = extract_choice(row["response"], row["letters"], row["options"])
        ok = found.letter == row["expected"]
        wrong_letter = found.letter is not None and found.letter != row["expected"]
        results[row["category"]].append((ok, wrong_letter))
        if show and not ok:
            print(f"  [{row['category']}] {row['note']}: expected {row['expected']!r}, "
                  f"found {found.letter!r} ({found.how})")
    _table("multiple choice", "wrong letters", results)


def run_math(show: bool) -> None:
    from evals.grading.math_compare import grade_math_answer

    results: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for row in _rows("math.jsonl"):
        verdict = grade_math_answer(row["gold"], row["response"])
        ok = verdict["correct"] is row["equal"]
        false_positive = bool(verdict["correct"]) and not row["equal"]
        results[row["category"]].append((ok, false_positive))
        if show and not ok:
            print(f"  [{row['category']}] {row['note']}: gold {row['gold']!r}, extracted "
                  f"{verdict['extracted']!r} ({verdict['how']}), reason {verdict['reason']!r}")
    _table("math", "false positives", results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show-failures", action="store_true",
                        help="print every row the graders get wrong")
    args = parser.parse_args()
    run_choice(args.show_failures)
    run_math(args.show_failures)


if __name__ == "__main__":
    main()
