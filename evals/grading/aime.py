"""Math grading. AIME: an integer 0-999, compared numerically ("033" equals 33)."""

from __future__ import annotations

import re

from evals.grading.math_expr import number_from_words
from evals.grading.math_extract import (
    final_answer_phrase,
    last_boxed,
    last_integer,
    strip_latex_wrappers,
)
from evals.records import Grade, Sample

__all__ = ["aime_extract", "grade_aime"]

_INTEGER = re.compile(r"^[+-]?\d+$")
_LEAD = re.compile(r"^\\?\s*")
# A leading integer stands for the answer only when prose or "(mod N)" follows it: not
# another number ("1, 2" hedges), an operator ("12 + 7 = 19") or LaTeX ("2 \sqrt{3}").
_LEADING_INT = re.compile(
    r"^(-?\d+)(?=[.)]?$|\s*\(?\s*(?:\\[bp]?mod|mod)(?![A-Za-z])|[,;:.]?\s+[A-Za-z])")
_WHOLE_NUMBER = re.compile(r"[a-zA-Z]\s*=\s*-?\d+|-?\d+\s*\^\s*\\circ")
_MAX_TEXT = 200_000


def aime_extract(text: str) -> tuple[str | None, str]:
    """The answer an AIME response gives, and where it was found.

    Order: the last ``\\boxed{}``; else the last "final answer" phrase; else the last
    integer in the text.

    Returns:
        (answer or None, how: "boxed" | "phrase" | "last integer" | "none")
    """
    text = text[-_MAX_TEXT:]
    boxed = last_boxed(text)
    if boxed is not None:
        return strip_latex_wrappers(boxed), "boxed"
    phrase = final_answer_phrase(text)
    if phrase is not None:
        return strip_latex_wrappers(phrase), "phrase"
    integer = last_integer(text)
    if integer is not None:
        return integer, "last integer"
    return None, "none"


def _as_int(answer: str) -> int | None:
    cleaned = answer.replace(",", "").replace("{", "").replace("}", "").strip()
    cleaned = _LEAD.sub("", cleaned)
    if _INTEGER.match(cleaned):
        return int(cleaned)
    leading = _LEADING_INT.match(cleaned)
    if leading:  # "7, since 7 > 3" or "7 (mod 1000)": the stated value comes first
        return int(leading.group(1))
    inner = last_integer(cleaned)
    # "x = 33" or "33^\circ": take the number only when it is the whole numeric content.
    if inner is not None and _WHOLE_NUMBER.fullmatch(cleaned):
        return int(inner)
    spelled = number_from_words(cleaned)  # "The answer is seventy-three."
    if spelled is not None and spelled.denominator == 1:
        return int(spelled)
    return None


async def grade_aime(answer: str, sample: Sample) -> Grade:
    """Grade an AIME answer: the extracted integer must equal the gold integer.

    The gold is ``sample.target`` (may carry leading zeros, e.g. "025"). An answer that is
    not an integer is wrong with reason "not an integer"; no answer is wrong with reason
    "no answer found".
    """
    extracted, how = aime_extract(answer)
    if extracted is None:
        return Grade(None, False, "no answer found")
    value = _as_int(extracted)
    if value is None:
        return Grade(extracted, False, f"not an integer ({how})")
    gold = int(sample.target)
    if value == gold:
        return Grade(extracted, True, f"match ({how})")
    return Grade(extracted, False, f"mismatch ({how})")
