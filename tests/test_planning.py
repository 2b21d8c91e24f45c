"""Planning the size of a run: half-widths computed by hand, search bounds, validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from evals.planning import (
    Z95,
    HalfWidth,
    expected_half_width,
    n_for_half_width,
    problems_for_half_width,
)


def test_z95_is_the_normal_quantile():
    from statistics import NormalDist

    assert Z95 == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-12)


def test_worst_case_30_problems_one_repeat():
    hw = expected_half_width(problems=30, n=1)
    by_hand = 1.959963984540054 * math.sqrt(0.25 / 30) * 100  # 17.89...
    assert by_hand == pytest.approx(17.892, abs=1e-3)
    assert hw.best == pytest.approx(by_hand)
    assert hw.floor == pytest.approx(by_hand)
    assert hw.expected == pytest.approx(by_hand)  # at n = 1 the split does not matter
    assert (hw.p, hw.assumed_p) == (0.5, True)


def test_given_p_and_more_repeats():
    hw = expected_half_width(problems=30, n=4, p=0.8)
    v = 0.8 * 0.2
    assert hw.best == pytest.approx(Z95 * math.sqrt(v / (30 * 4)) * 100)
    assert hw.floor == pytest.approx(Z95 * math.sqrt(v / 30) * 100)
    assert hw.expected == pytest.approx(Z95 * math.sqrt(v * (0.5 + 0.5 / 4) / 30) * 100)
    assert (hw.p, hw.assumed_p) == (0.8, False)
    assert hw.best < hw.expected < hw.floor


def test_between_share_is_passed_through():
    v = 0.25
    hw = expected_half_width(problems=100, n=10, between_share=0.2)
    assert hw.expected == pytest.approx(Z95 * math.sqrt(v * (0.2 + 0.8 / 10) / 100) * 100)
    assert expected_half_width(100, 10, between_share=0.0).expected == pytest.approx(hw.best)
    assert expected_half_width(100, 10, between_share=1.0).expected == pytest.approx(hw.floor)


def test_half_width_shrinks_with_n_but_not_below_the_floor():
    widths = [expected_half_width(30, n).expected for n in (1, 2, 4, 8, 16, 64, 1024)]
    assert widths == sorted(widths, reverse=True)
    floor_part = Z95 * math.sqrt(0.25 * 0.5 / 30) * 100
    assert all(w > floor_part for w in widths)
    assert all(expected_half_width(30, n).floor == widths[0] for n in (1, 8))


def test_certain_score_has_zero_width():
    hw = expected_half_width(30, 1, p=1.0)
    assert (hw.expected, hw.best, hw.floor) == (0.0, 0.0, 0.0)
    assert n_for_half_width(1.0, 30, p=0.0) == 1
    assert problems_for_half_width(1.0, 1, p=1.0) == 1


def test_half_width_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        expected_half_width(30, 1).p = 0.2  # type: ignore[misc]
    assert isinstance(expected_half_width(30, 1), HalfWidth)


def test_n_for_half_width_by_hand():
    # need 0.5 + 0.5/n <= (15 / (100 Z95))^2 * 30 / 0.25 = 0.7029..., so n >= 2.46 -> 3
    budget = (15 / (100 * Z95)) ** 2 * 30 / 0.25
    assert math.ceil(0.5 / (budget - 0.5)) == 3
    n = n_for_half_width(15.0, problems=30)
    assert n == 3
    assert expected_half_width(30, 3).expected <= 15.0 < expected_half_width(30, 2).expected


def test_n_for_half_width_is_one_when_one_repeat_suffices():
    assert n_for_half_width(20.0, problems=30) == 1


def test_n_for_half_width_unreachable_returns_none():
    # the between-problem part alone: Z95 * sqrt(0.125 / 30) * 100 = 12.65 > 10
    assert Z95 * math.sqrt(0.125 / 30) * 100 == pytest.approx(12.65, abs=0.01)
    assert n_for_half_width(10.0, problems=30) is None
    assert n_for_half_width(12.0, problems=30, between_share=1.0) is None
    assert n_for_half_width(12.0, problems=30, between_share=0.0) == 3  # 17.89/sqrt(n) <= 12


def test_n_for_half_width_at_exactly_the_between_part_is_unreachable():
    exact = Z95 * math.sqrt(0.25 * 0.5 / 30) * 100
    assert n_for_half_width(exact, problems=30) is None


@pytest.mark.parametrize("target", [16.0, 14.0, 13.0, 12.7])
def test_n_for_half_width_is_the_smallest(target):
    n = n_for_half_width(target, problems=30)
    assert n is not None
    assert expected_half_width(30, n).expected <= target
    if n > 1:
        assert expected_half_width(30, n - 1).expected > target


def test_problems_for_half_width_by_hand():
    # 0.25 * (0.5 + 0.5/8) * (100 Z95 / 10)^2 = 54.02 -> 55 problems
    assert 0.25 * (0.5 + 0.5 / 8) * (100 * Z95 / 10) ** 2 == pytest.approx(54.02, abs=0.01)
    k = problems_for_half_width(10.0, n=8)
    assert k == 55
    assert expected_half_width(55, 8).expected <= 10.0 < expected_half_width(54, 8).expected
    # and the advice matches: at 55 problems the target becomes reachable
    assert n_for_half_width(10.0, problems=k) is not None


def test_problems_for_half_width_worst_case_single_repeat():
    # 0.25 * (100 Z95 / 5)^2 = 384.1 -> 385
    assert problems_for_half_width(5.0, n=1) == 385


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: expected_half_width(0, 1), "problems=0", id="no-problems"),
        pytest.param(lambda: expected_half_width(30, 0), "n=0", id="no-repeats"),
        pytest.param(lambda: expected_half_width(30, True), "n=True", id="bool-n"),
        pytest.param(lambda: expected_half_width(30, 1, p=77.34), "pass 0.7734", id="p-in-points"),
        pytest.param(lambda: expected_half_width(30, 1, p=-0.1), r"p=-0.1", id="negative-p"),
        pytest.param(
            lambda: expected_half_width(30, 1, between_share=1.5),
            "between_share=1.5",
            id="share-above-one",
        ),
        pytest.param(lambda: n_for_half_width(0.0, 30), "target_points=0.0", id="zero-target"),
        pytest.param(
            lambda: n_for_half_width(-1.0, 30), "target_points=-1.0", id="negative-target"
        ),
        pytest.param(
            lambda: n_for_half_width(float("nan"), 30), "target_points=nan", id="nan-target"
        ),
        pytest.param(lambda: n_for_half_width(5.0, 0), "problems=0", id="n-for-no-problems"),
        pytest.param(
            lambda: problems_for_half_width(0.0, 1), "target_points=0.0", id="k-zero-target"
        ),
        pytest.param(lambda: problems_for_half_width(5.0, 0), "n=0", id="k-no-repeats"),
    ],
)
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
