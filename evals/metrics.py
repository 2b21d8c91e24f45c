"""Scores from the per-attempt table: mean over repeats, clustered standard error, interval.

The score of a task is the mean over problems of each problem's fraction of correct scored
attempts (pass@1 averaged over n repeats). Its standard error treats problems as clusters:
the sample standard deviation of the per-problem means over the square root of the number of
problems, so n repeats of one problem are never counted as n independent draws. The 95%
interval is score +/- 1.96 SE, clipped to [0, 1].
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from evals.records import OUTCOMES, SCORED_OUTCOMES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Z95", "clustered_score", "summarize"]

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


def _group_summary(df: pd.DataFrame) -> dict[str, Any]:
    scored = df[df["outcome"].isin(list(SCORED_OUTCOMES))]
    per_problem = scored.groupby("sample_id")["correct"].mean().astype(float).tolist()
    mean, se, low, high = clustered_score(per_problem)
    counts = df["outcome"].value_counts()
    row: dict[str, Any] = {
        "problems": int(df["sample_id"].nunique()),
        "attempts": len(df),
        "repeats": int(df["repeat"].max()) + 1 if len(df) else 0,
        "scored": len(scored),
        "correct": int(scored["correct"].fillna(False).astype(bool).sum()),
        "score": mean,
        "se": se,
        "ci_low": low,
        "ci_high": high,
    }
    for outcome in OUTCOMES:
        row[outcome] = int(counts.get(outcome, 0))
    answered = df[df["outcome"] != "error"]
    row["truncation_rate"] = (
        float((answered["outcome"] == "truncated").mean()) if len(answered) else float("nan")
    )
    for column in ("completion_tokens", "reasoning_tokens", "latency_s", "ttft_s"):
        values = answered[column].dropna()
        row[f"mean_{column}"] = float(values.mean()) if len(values) else float("nan")
    cost = answered["cost"].dropna()
    row["cost"] = float(cost.sum()) if len(cost) else float("nan")
    return row


def summarize(df: pd.DataFrame, subsets: dict[str, tuple[str, ...]] | None = None
              ) -> pd.DataFrame:
    """One row per task (``subset`` empty) and one per task x subset value.

    Args:
        df: the per-attempt table (columns task, sample_id, repeat, outcome, correct,
            tokens, latency, metadata as JSON).
        subsets: per task, the metadata fields to break down by.
    """
    import orjson
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for task_name, group in df.groupby("task", sort=True):
        rows.append({"task": task_name, "subset": "", "value": "", **_group_summary(group)})
        fields = (subsets or {}).get(str(task_name), ())
        if not fields:
            continue
        meta = group["metadata"].map(lambda m: orjson.loads(m) if m else {})
        for name in fields:
            values = meta.map(lambda m, n=name: m.get(n))
            if values.isna().all():
                continue
            for value, sub in group.groupby(values.astype(str), sort=True):
                rows.append({"task": task_name, "subset": name, "value": value,
                             **_group_summary(sub)})
    return pd.DataFrame(rows)
