"""How wide the 95% interval of a run will be, before paying for it.

A run's score is the mean over ``K`` problems of each problem's fraction correct over ``n``
repeats. Its standard error is clustered by problem: ``SE = sd(per-problem means) / sqrt(K)``
and the 95% half-width is ``Z95 * SE``. So a 30-problem benchmark has a wide interval however
many repeats are run: repeats only average away the coin flips *within* a problem, not the
spread of difficulty *between* problems.

For planning, with an expected score ``p`` (a fraction; the published score, or the worst
case 0.5 when there is none), the variance of one problem's mean over ``n`` repeats is
``sigma_b^2 + sigma_w^2 / n`` with ``sigma_b^2 + sigma_w^2 = p (1 - p)``:

* ``best``: all problems equally hard (``sigma_b^2 = 0``),
  half-width ``Z95 * sqrt(p (1 - p) / (K n))``;
* ``floor``: all-or-nothing problems (``sigma_w^2 = 0``), half-width
  ``Z95 * sqrt(p (1 - p) / K)``; no ``n`` helps;
* ``expected``: a share ``between_share`` of ``p (1 - p)`` lies between problems.

Example::

    >>> hw = expected_half_width(problems=30, n=1)
    >>> round(hw.best, 2), round(hw.floor, 2)
    (17.89, 17.89)
    >>> n_for_half_width(10.0, problems=30) is None   # 30 problems cannot get to +-10
    True
    >>> problems_for_half_width(10.0, n=8)
    55
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Z95",
    "HalfWidth",
    "expected_half_width",
    "n_for_half_width",
    "problems_for_half_width",
]

#: The two-sided 95% quantile of the standard normal distribution.
Z95 = 1.959963984540054

_WORST_P = 0.5


@dataclass(frozen=True, slots=True)
class HalfWidth:
    """Planned 95% half-widths of a run's score, in points (0-100).

    Attributes:
        expected: the half-width when ``between_share`` of the variance lies between
            problems (an assumption; see ``expected_half_width``).
        best: the half-width if all problems were equally hard (the narrowest possible).
        floor: the half-width if every problem were all-or-nothing; no number of repeats
            gets below it.
        p: the expected score used, as a fraction in [0, 1] (not in points).
        assumed_p: ``True`` when no score was given and the worst case ``p = 0.5`` was used.
    """

    expected: float
    best: float
    floor: float
    p: float
    assumed_p: bool


def expected_half_width(
    problems: int, n: int, p: float | None = None, between_share: float = 0.5
) -> HalfWidth:
    """Plan the 95% half-width of a run of ``problems`` problems x ``n`` repeats.

    Args:
        problems: the number of problems ``K`` (>= 1).
        n: repeats per problem (>= 1).
        p: the expected score as a fraction in [0, 1] (e.g. 0.7734 for a published 77.34),
            or ``None`` for the worst case 0.5, which gives the widest interval.
        between_share: the share of ``p (1 - p)`` that is spread of difficulty between
            problems, in [0, 1]. The default 0.5 is an assumption: the typical share for
            reasoning benchmarks is unknown. Measure it from a pilot run (the variance of the
            per-problem means against the within-problem variance) and pass it here.

    Returns:
        The expected, best and floor half-widths, in points.

    Raises:
        ValueError: ``problems`` or ``n`` < 1, ``p`` outside [0, 1] (a value above 1 is
            probably in points: divide it by 100), or ``between_share`` outside [0, 1].

    Example:
        >>> round(expected_half_width(30, 4, p=0.5).expected, 2)
        14.14
    """
    _check_count("problems", problems)
    _check_count("n", n)
    p_used, assumed = _check_p(p)
    _check_share(between_share)
    variance = p_used * (1.0 - p_used)
    return HalfWidth(
        expected=_half_width(variance, problems, n, between_share),
        best=_half_width(variance, problems, n, 0.0),
        floor=_half_width(variance, problems, n, 1.0),
        p=p_used,
        assumed_p=assumed,
    )


def n_for_half_width(
    target_points: float, problems: int, p: float | None = None, between_share: float = 0.5
) -> int | None:
    """Return the smallest ``n`` whose ``expected`` half-width is at most ``target_points``.

    Args:
        target_points: the wanted 95% half-width, in points (> 0).
        problems: the number of problems ``K`` (>= 1).
        p: the expected score as a fraction, or ``None`` for the worst case 0.5.
        between_share: see ``expected_half_width`` (an assumption; default 0.5).

    Returns:
        The number of repeats, or ``None`` when no ``n`` reaches the target because the
        between-problem part alone is at least as wide (more problems are needed; see
        ``problems_for_half_width``). ``1`` when a single repeat is already enough.

    Raises:
        ValueError: ``target_points`` <= 0, ``problems`` < 1, or ``p`` / ``between_share``
            outside [0, 1].

    Example:
        >>> n_for_half_width(15.0, problems=30)
        3
    """
    _check_target(target_points)
    _check_count("problems", problems)
    p_used, _ = _check_p(p)
    _check_share(between_share)
    variance = p_used * (1.0 - p_used)

    def fits(n: int) -> bool:
        return _half_width(variance, problems, n, between_share) <= target_points

    if fits(1):
        return 1
    # Need share + (1 - share) / n <= budget, with budget the allowed fraction of p(1-p).
    budget = (target_points / (100.0 * Z95)) ** 2 * problems / variance
    if between_share >= budget:
        return None
    estimate = (1.0 - between_share) / (budget - between_share)
    if not math.isfinite(estimate):
        return None
    n = max(1, math.ceil(estimate))
    # The closed form can be off by one in floating point; settle it with the same formula
    # ``expected_half_width`` uses so the two functions agree.
    while not fits(n):
        n += 1
    while n > 1 and fits(n - 1):
        n -= 1
    return n


def problems_for_half_width(
    target_points: float, n: int, p: float | None = None, between_share: float = 0.5
) -> int:
    """Return the number of problems needed for an ``expected`` half-width <= ``target_points``.

    Use it to advise: "a 30-problem benchmark cannot get to +-5 points; at n = 8 it would
    take K problems".

    Args:
        target_points: the wanted 95% half-width, in points (> 0).
        n: repeats per problem (>= 1).
        p: the expected score as a fraction, or ``None`` for the worst case 0.5.
        between_share: see ``expected_half_width`` (an assumption; default 0.5).

    Returns:
        The smallest number of problems ``K`` (>= 1) that reaches the target.

    Raises:
        ValueError: ``target_points`` <= 0, ``n`` < 1, or ``p`` / ``between_share`` outside
            [0, 1].

    Example:
        >>> problems_for_half_width(5.0, n=1)
        385
    """
    _check_target(target_points)
    _check_count("n", n)
    p_used, _ = _check_p(p)
    _check_share(between_share)
    variance = p_used * (1.0 - p_used)

    def fits(k: int) -> bool:
        return _half_width(variance, k, n, between_share) <= target_points

    per_problem = variance * (between_share + (1.0 - between_share) / n)
    k = max(1, math.ceil(per_problem * (100.0 * Z95 / target_points) ** 2))
    while not fits(k):
        k += 1
    while k > 1 and fits(k - 1):
        k -= 1
    return k


def _half_width(variance: float, problems: int, n: int, between_share: float) -> float:
    per_problem = variance * (between_share + (1.0 - between_share) / n)
    return 100.0 * Z95 * math.sqrt(per_problem / problems)


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}: must be a whole number >= 1.")


def _check_target(target_points: float) -> None:
    if not target_points > 0 or not math.isfinite(target_points):
        raise ValueError(
            f"target_points={target_points!r}: must be a half-width in points > 0, e.g. 5.0."
        )


def _check_p(p: float | None) -> tuple[float, bool]:
    if p is None:
        return _WORST_P, True
    if not 0.0 <= p <= 1.0:
        hint = f" It looks like points: pass {p / 100:g}." if 1.0 < p <= 100.0 else ""
        raise ValueError(f"p={p!r}: the expected score must be a fraction in [0, 1].{hint}")
    return p, False


def _check_share(between_share: float) -> None:
    if not 0.0 <= between_share <= 1.0:
        raise ValueError(
            f"between_share={between_share!r}: must be a fraction in [0, 1] "
            "(0 = equally hard problems, 1 = all-or-nothing problems)."
        )
