"""AIME answers: extraction and the integer they stand for."""

from __future__ import annotations

import pytest

from evals.grading.aime import _as_int, aime_extract


@pytest.mark.parametrize("answer, value", [
    ("033", 33), ("-4", -4), ("1,000", 1000), ("{70}", 70), ("7.", 7), ("\\ 25", 25),
    ("7, since 7 > 3", 7), ("7 (mod 1000)", 7), ("7 \\pmod{1000}", 7), ("7 is the answer", 7),
    ("x = 33", 33), ("33^\\circ", 33),
    # expressions, hedges and lists are not an integer, whatever their first number
    ("2 \\sqrt{3}", None), ("2\\sqrt{3}", None), ("12 + 7 = 19", None), ("3 \\cdot 5", None),
    ("1, 2", None), ("100 \\text{ or } 200", None), ("3.5", None), ("\\frac{1}{2}", None),
])
def test_as_int(answer: str, value: int | None) -> None:
    assert _as_int(answer) == value


@pytest.mark.parametrize("text, answer, how", [
    ("so \\boxed{\\boxed{70}} and \\boxed{033}", "033", "boxed"),
    ("The final answer is $204$. I hope it is correct.", "204", "phrase"),
    ("we get 12 and then 15 apples", "15", "last integer"),
    ("no number here", None, "none"),
])
def test_aime_extract(text: str, answer: str | None, how: str) -> None:
    assert aime_extract(text) == (answer, how)
