"""Scores from the per-attempt table: mean over repeats, clustered standard error, interval.

The score of a task is the mean over problems of each problem's fraction of correct scored
attempts (pass@1 averaged over n repeats). Its standard error treats problems as clusters:
the sample standard deviation of the per-problem means over the square root of the number of
problems, so n repeats of one problem are never counted as n independent draws. The 95%
interval is score +/- 1.96 SE, clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from evals.records import OUTCOMES, SCORED_OUTCOMES

__all__ = ["Z95", "clustered_score", "pass_at_k", "summarize"]

Z95 = 1.959963984540054


def clustered_score(per_problem: list[float]) -> tuple[float, float, float, float]:
    """(mean, standard error, low, high) of per-problem scores.

    One problem gives SE 0 and an interval of just the mean (nothing to cluster over);
    no problems give NaNs.
    """
    k = len(per_problem)
    if k == 0:
        nan = float("nan")
        return nan, nan, nan, nan
    mean = sum(per_problem) / k
    if k == 1:
        return mean, 0.0, mean, mean
    var = sum((p - mean) ** 2 for p in per_problem) / (k - 1)
    se = math.sqrt(var / k)
    return mean, se, max(0.0, mean - Z95 * se), min(1.0, mean + Z95 * se)


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of pass@k from ``n`` attempts of which ``c`` are correct:
    ``1 - C(n-c, k) / C(n, k)`` (Chen et al. 2021, arXiv:2107.03374), computed as a running
    product so large ``n`` neither overflows nor loses precision.

    Raises:
        ValueError: ``k`` is not within 1..n, or ``c`` not within 0..n.

    Example:
        >>> round(pass_at_k(10, 3, 2), 4)
        0.5333
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n (n = {n})")
    if not 0 <= c <= n:
        raise ValueError(f"c = {c} correct out of n = {n} attempts")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


class _Group:
    """Running totals of one (task, subset value) group."""

    __slots__ = ("attempts", "cost", "outcomes", "problems", "repeats", "sums")

    def __init__(self) -> None:
        self.attempts = 0
        self.repeats = 0
        self.problems: dict[str, list[int]] = {}  # id -> [correct, scored]
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.sums = {c: [0.0, 0] for c in _MEANS}
        self.cost: float | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.attempts += 1
        self.repeats = max(self.repeats, int(row["repeat"]) + 1)
        outcome = row["outcome"]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        tally = self.problems.setdefault(row["sample_id"], [0, 0])
        if outcome in SCORED_OUTCOMES:
            tally[1] += 1
            tally[0] += bool(row["correct"])
        if outcome != "error":
            for column in _MEANS:
                value = row.get(column)
                if value is not None:
                    self.sums[column][0] += value
                    self.sums[column][1] += 1
            if row.get("cost") is not None:
                self.cost = (self.cost or 0.0) + row["cost"]

    def result(self, with_pass_at_k: bool = False) -> dict[str, Any]:
        per_problem = [c / n for c, n in self.problems.values() if n]
        mean, se, low, high = clustered_score(per_problem)
        scored = sum(n for _, n in self.problems.values())
        answered = self.attempts - self.outcomes["error"]
        out: dict[str, Any] = {
            "problems": len(self.problems),
            "attempts": self.attempts,
            "repeats": self.repeats,
            "scored": scored,
            "correct": sum(c for c, _ in self.problems.values()),
            "score": mean,
            "se": se,
            "ci_low": low,
            "ci_high": high,
            **self.outcomes,
            "truncation_rate": self.outcomes["truncated"] / answered if answered else _NAN,
        }
        for column, (total, count) in self.sums.items():
            out[f"mean_{column}"] = total / count if count else _NAN
        out["cost"] = self.cost if self.cost is not None else _NAN
        if with_pass_at_k:
            # Over the problems with at least k scored attempts; k up to the largest n.
            most = max((n for _, n in self.problems.values()), default=0)
            for k in range(1, most + 1):
                values = [pass_at_k(n, c, k) for c, n in self.problems.values() if n >= k]
                out[f"pass@{k}"] = sum(values) / len(values) if values else _NAN
        return out


_MEANS = ("completion_tokens", "reasoning_tokens", "latency_s", "ttft_s")
_NAN = float("nan")


def summarize(rows: Iterable[dict[str, Any]], subsets: dict[str, tuple[str, ...]] | None = None,
              pass_k: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """One row per task (``subset`` empty) and one per task x subset value.

    Args:
        rows: per-attempt rows (task, sample_id, repeat, outcome, correct, tokens, latency,
            cost, metadata as a JSON string).
        subsets: per task, the metadata fields to break down by.
        pass_k: tasks whose rows also get ``pass@k`` for every k up to their repeats.

    Returns:
        Summary rows as dicts, sorted by task, then subset and value; no pandas needed, so
        the command line does not pay for importing it.
    """
    import orjson

    groups: dict[tuple[str, str, str], _Group] = {}
    for row in rows:
        task = row["task"]
        groups.setdefault((task, "", ""), _Group()).add(row)
        fields = (subsets or {}).get(task, ())
        if fields:
            meta = orjson.loads(row["metadata"]) if row.get("metadata") else {}
            for name in fields:
                if meta.get(name) is not None:
                    groups.setdefault((task, name, str(meta[name])), _Group()).add(row)
    return [{"task": t, "subset": sub, "value": val,
             **groups[(t, sub, val)].result(t in pass_k)}
            for t, sub, val in sorted(groups)]
