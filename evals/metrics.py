"""Scores from the per-attempt table: mean over repeats, clustered standard error, interval.

The score of a task is the mean over problems of each problem's fraction of correct scored
attempts (pass@1 averaged over n repeats). Its standard error treats problems as clusters:
the sample standard deviation of the per-problem means over the square root of the number of
problems, so n repeats of one problem are never counted as n independent draws. The 95%
interval is score +/- 1.96 SE, clipped to [0, 1].

``summarize`` reads the table as a stream of rows and keeps only running totals: per
problem a few counters and, where majority voting is reported, one 64-bit integer per
attempt (its repeat, an id of its extracted answer and its verdict; long answers such as
programs are identified by a digest, not kept), so a run of millions of attempts is
summarised in bounded memory.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from evals.records import OUTCOMES, SCORED_OUTCOMES

__all__ = ["Z95", "clustered_score", "majority_vote", "pass_at_k", "percentile", "summarize"]

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


def majority_vote(votes: Sequence[tuple[Hashable | None, bool]]) -> bool:
    """Whether the majority answer of one problem's attempts is correct.

    Args:
        votes: ``(extracted answer, correct)`` per attempt, in repeat order. An attempt
            with no extracted answer does not vote.

    Returns:
        The verdict of the answer given most often; a tie goes to the answer among the
        tied ones that appeared first (deterministic, and what a reader of the attempts
        in order would pick). No vote at all is wrong. Answers are compared as extracted
        strings, so two spellings of one value (``1/2``, ``\\frac12``) are two votes.

    Example:
        >>> majority_vote([("3", False), ("5", True), ("5", True)])
        True
    """
    counts: dict[Hashable, list[int]] = {}  # answer -> [count, first position, correct]
    for position, (answer, correct) in enumerate(votes):
        if answer is None:
            continue
        entry = counts.setdefault(answer, [0, position, int(bool(correct))])
        entry[0] += 1
    if not counts:
        return False
    best = min(counts.values(), key=lambda e: (-e[0], e[1]))
    return bool(best[2])


def maj_at_k(votes: Sequence[tuple[Hashable | None, bool]], k: int) -> float:
    """maj@k of one problem: the mean, over the ``len(votes) // k`` disjoint groups of
    ``k`` consecutive repeats, of whether the group's majority answer is correct.

    Raises:
        ValueError: fewer than ``k`` votes (the metric is not defined then).
    """
    groups = len(votes) // k
    if k < 1 or groups < 1:
        raise ValueError(f"maj@{k} needs at least {k} attempts (got {len(votes)})")
    return sum(majority_vote(votes[g * k:(g + 1) * k]) for g in range(groups)) / groups


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation between the
    closest ranks (numpy's default); NaN for no values."""
    if not values:
        return _NAN
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


#: Extracted answers longer than this are identified by a digest in the votes.
_SHORT_ANSWER = 64


class _Votes:
    """One group's scored attempts for majority voting, packed: per problem an array of
    ``repeat << 33 | answer id << 1 | correct`` (answer id 0: no answer)."""

    __slots__ = ("answers", "by_problem")

    def __init__(self) -> None:
        self.answers: dict[str | bytes, int] = {}
        self.by_problem: dict[str, array[int]] = {}

    def add(self, sample_id: str, repeat: int, answer: str | None, correct: bool) -> None:
        ident = 0
        if answer is not None:
            key: str | bytes = (answer if len(answer) <= _SHORT_ANSWER else
                                hashlib.blake2b(answer.encode("utf-8", "surrogatepass"),
                                                digest_size=16).digest())
            ident = self.answers.setdefault(key, len(self.answers) + 1)
        packed = self.by_problem.get(sample_id)
        if packed is None:
            packed = self.by_problem[sample_id] = array("q")
        packed.append(repeat << 33 | ident << 1 | int(correct))

    def problems(self) -> Iterable[list[tuple[int | None, bool]]]:
        """Each problem's votes in repeat order, as ``(answer id or None, correct)``."""
        for packed in self.by_problem.values():
            yield [((v >> 1) & 0xFFFFFFFF or None, bool(v & 1)) for v in sorted(packed)]


class _Group:
    """Running totals of one (task, subset value) group."""

    __slots__ = ("attempts", "cached", "cost", "outcomes", "per_problem", "problems", "repeats",
                 "retries", "samples", "sums", "votes")

    def __init__(self, votes: bool = True) -> None:
        self.attempts = 0
        self.repeats = 0
        self.cached = 0
        self.retries = 0
        self.problems: dict[str, list[int]] = {}  # id -> [correct, scored]
        self.per_problem: dict[str, int] = {}  # id -> attempts
        self.votes: _Votes | None = _Votes() if votes else None
        self.outcomes: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        self.sums = {c: [0.0, 0] for c in _SUMS}
        self.samples: dict[str, array[float]] = {c: array("d") for c in _PERCENTILES}
        self.cost: float | None = None

    def add(self, row: dict[str, Any]) -> None:
        self.attempts += 1
        self.repeats = max(self.repeats, int(row["repeat"]) + 1)
        outcome = row["outcome"]
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        tally = self.problems.setdefault(row["sample_id"], [0, 0])
        self.per_problem[row["sample_id"]] = self.per_problem.get(row["sample_id"], 0) + 1
        if outcome in SCORED_OUTCOMES:
            tally[1] += 1
            tally[0] += bool(row["correct"])
            if self.votes is not None:
                self.votes.add(row["sample_id"], int(row["repeat"]), row.get("extracted"),
                               bool(row["correct"]))
        if row.get("cached"):
            self.cached += 1
        if outcome == "error":
            return
        self.retries += int(row.get("retries") or 0)
        for column in _SUMS:
            value = row.get(column)
            if value is not None:
                self.sums[column][0] += value
                self.sums[column][1] += 1
        for column in ("latency_s", "ttft_s"):
            value = row.get(column)
            if value is not None:
                self.samples[column].append(float(value))
        speed = _output_speed(row)
        if speed is not None:
            self.samples["output_tps"].append(speed)
        if row.get("cost") is not None:
            self.cost = (self.cost or 0.0) + row["cost"]

    def _votes(self, k: int) -> list[list[tuple[int | None, bool]]]:
        if self.votes is None:
            return []
        return [v for v in self.votes.problems() if len(v) >= k]

    def measured(self, ks_maj: tuple[int, ...] = (), ks_pass: tuple[int, ...] = ()
                 ) -> dict[str, tuple[float, float, float]]:
        """Each metric as (value, 95% low, 95% high), clustered by problem: ``pass@1``
        (the score), ``maj@k`` and ``pass@k`` for the ks asked that the repeats allow."""
        per_problem = [c / n for c, n in self.problems.values() if n]
        mean, _, low, high = clustered_score(per_problem)
        out = {"pass@1": (mean, low, high)}
        for k in ks_maj:
            values = [maj_at_k(v, k) for v in self._votes(k)]
            if values and len(values) == len(per_problem):
                value, _, lo, hi = clustered_score(values)
                out[f"maj@{k}"] = (value, lo, hi)
        for k in ks_pass:
            values = [pass_at_k(n, c, k) for c, n in self.problems.values() if n >= k]
            if values and len(values) == len(per_problem):
                value, _, lo, hi = clustered_score(values)
                out[f"pass@{k}"] = (value, lo, hi)
        return out

    def result(self, with_pass_at_k: bool = False, ks_maj: tuple[int, ...] = ()
               ) -> dict[str, Any]:
        per_problem = [c / n for c, n in self.problems.values() if n]
        mean, se, low, high = clustered_score(per_problem)
        scored = sum(n for _, n in self.problems.values())
        answered = self.attempts - self.outcomes["error"]
        out: dict[str, Any] = {
            "problems": len(self.problems),
            "attempts": self.attempts,
            "repeats": self.repeats,
            "min_repeats": min(self.per_problem.values(), default=0),
            "scored": scored,
            "correct": sum(c for c, _ in self.problems.values()),
            "score": mean,
            "se": se,
            "ci_low": low,
            "ci_high": high,
            **self.outcomes,
            "truncation_rate": self.outcomes["truncated"] / answered if answered else _NAN,
        }
        for k in ks_maj:
            votes = self._votes(k)
            out[f"maj@{k}"] = (sum(maj_at_k(v, k) for v in votes) / len(votes)
                               if votes else _NAN)
        for column, (total, count) in self.sums.items():
            out[f"mean_{column}"] = total / count if count else _NAN
        for column, (total, count) in self.sums.items():
            if column.endswith("_tokens"):
                out[f"total_{column}"] = int(total) if count else 0
        for column, observed in self.samples.items():
            for q in (50, 90, 99):
                out[f"{column}_p{q}"] = percentile(observed, q)
        out["retries"] = self.retries
        out["resumed"] = self.cached
        out["cost"] = self.cost if self.cost is not None else _NAN
        if with_pass_at_k:
            # Over the problems with at least k scored attempts; k up to the largest n.
            most = max((n for _, n in self.problems.values()), default=0)
            for k in range(1, most + 1):
                values = [pass_at_k(n, c, k) for c, n in self.problems.values() if n >= k]
                out[f"pass@{k}"] = sum(values) / len(values) if values else _NAN
        return out


def _output_speed(row: dict[str, Any]) -> float | None:
    """Output tokens per second of one streamed attempt, as model cards and leaderboards
    report it: completion tokens over the time from the first token to the last."""
    tokens, latency, ttft = row.get("completion_tokens"), row.get("latency_s"), row.get("ttft_s")
    if not tokens or latency is None or ttft is None or latency - ttft <= 0:
        return None
    return float(tokens) / (float(latency) - float(ttft))


_SUMS = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "latency_s", "ttft_s")
_PERCENTILES = ("latency_s", "ttft_s", "output_tps")
_NAN = float("nan")


def summarize(rows: Iterable[dict[str, Any]], subsets: dict[str, tuple[str, ...]] | None = None,
              pass_k: frozenset[str] = frozenset(),
              wanted: Mapping[str, tuple[str, ...]] | None = None) -> list[dict[str, Any]]:
    """One row per task (``subset`` empty) and one per task x subset value.

    Args:
        rows: per-attempt rows (task, sample_id, repeat, outcome, correct, extracted,
            tokens, latency, cost, retries, cached, metadata as a JSON string).
        subsets: per task, the metadata fields to break down by.
        pass_k: tasks whose rows also get ``pass@k`` for every k up to their repeats.
        wanted: per task, metric names a comparison needs (``"maj@64"``, ``"pass@8"``):
            a task's row gets each one's value and 95% interval under ``measured`` (a
            dict ``metric -> (value, low, high)``; ``pass@1`` is always there). Every
            task without pass@k also gets ``maj@n`` for its repeats n >= 2.

    Returns:
        Summary rows as dicts, sorted by task, then subset and value; no pandas needed, so
        the command line does not pay for importing it.
    """
    import orjson

    def votes_needed(task: str) -> bool:  # maj@k: every task without pass@k, or if asked
        return task not in pass_k or any(m.startswith("maj@") for m in (wanted or {}).get(
            task, ()))

    groups: dict[tuple[str, str, str], _Group] = {}
    voting: dict[str, bool] = {}
    for row in rows:
        task = row["task"]
        if task not in voting:
            voting[task] = votes_needed(task)
        key = (task, "", "")
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(voting[task])
        group.add(row)
        fields = (subsets or {}).get(task, ())
        if fields:
            meta = orjson.loads(row["metadata"]) if row.get("metadata") else {}
            for name in fields:
                if meta.get(name) is not None:
                    subset = (task, name, str(meta[name]))
                    if subset not in groups:  # (subset rows report no maj@k: no votes)
                        groups[subset] = _Group(votes=False)
                    groups[subset].add(row)
    out = []
    for t, sub, val in sorted(groups):
        group = groups[(t, sub, val)]
        asked = (wanted or {}).get(t, ())
        ks_maj = sorted({int(m[4:]) for m in asked if m.startswith("maj@") and m[4:].isdigit()}
                        | ({group.repeats} if t not in pass_k and group.repeats >= 2 else set()))
        row = {"task": t, "subset": sub, "value": val,
               **group.result(t in pass_k, tuple(ks_maj) if not sub else ())}
        if not sub:
            ks_pass = tuple(sorted({int(m[5:]) for m in asked
                                    if m.startswith("pass@") and m[5:].isdigit()}))
            row["measured"] = group.measured(tuple(ks_maj), ks_pass)
        out.append(row)
    return out
