"""AIME 2024 and AIME 2025: 30 integer-answer problems each (American Invitational
Mathematics Examination, I and II).

Papers that report it: DeepSeek-R1 (arXiv:2501.12948), Magistral (arXiv:2506.10910).
Data: https://huggingface.co/datasets/HuggingFaceH4/aime_2024 and
https://huggingface.co/datasets/yentinglin/aime_2025 (the copies lighteval reads); any local
copy with ``problem``/``question`` and ``answer`` fields works with ``--data``.
Prompt: MathArena's instruction (eth-sri/matharena), the problem first, then
"Please reason step by step, and put your final answer within \\boxed{}. The answer is an
integer between 0 and 999 inclusive."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evals.grading.math import grade_aime
from evals.records import Sample
from evals.registry import DatasetSpec, Task, task

INSTRUCTION = (
    "Please reason step by step, and put your final answer within \\boxed{}. "
    "The answer is an integer between 0 and 999 inclusive."
)


_TEXT_FIELDS = frozenset(
    {"problem", "question", "Problem", "Question", "answer", "Answer", "answer_str", "solution",
     "Solution", "id", "ID"}
)


def first_field(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    """The first of ``names`` present (and not None) in ``row``; ``KeyError`` names them all."""
    for name in names:
        if row.get(name) is not None:
            return row[name]
    raise KeyError(f"none of the fields {', '.join(names)} (row has: {', '.join(row)})")


def aime_sample(row: Mapping[str, Any], index: int) -> Sample:
    """An AIME row (hub or local copy) as a ``Sample``."""
    problem = str(first_field(row, ("problem", "question", "Problem", "Question"))).strip()
    answer = str(first_field(row, ("answer", "Answer", "answer_str"))).strip()
    if not answer.lstrip("-").isdigit():
        raise ValueError(f"answer {answer!r} is not an integer")
    raw_id = next((row[k] for k in ("id", "ID", "problem_id") if row.get(k) is not None), None)
    sample_id = str(raw_id) if raw_id is not None else str(index)
    metadata = tuple(
        (k, v)
        for k, v in row.items()
        if k not in _TEXT_FIELDS and isinstance(v, (str, int)) and not isinstance(v, bool)
    )
    return Sample(
        id=sample_id,
        messages=(("user", f"{problem}\n\n{INSTRUCTION}"),),
        target=str(int(answer)),
        metadata=metadata,
    )


@task("aime2024")
def aime2024() -> Task:
    """AIME 2024 I+II (30 problems), integer answers, pass@1 averaged over n repeats."""
    return Task(
        name="aime2024",
        dataset=DatasetSpec("HuggingFaceH4/aime_2024", split="train"),
        to_sample=aime_sample,
        grader=grade_aime,
        n=8,
        subsets=("contest",),
        description="AIME 2024",
    )


@task("aime2025")
def aime2025() -> Task:
    """AIME 2025 I+II (30 problems), integer answers, pass@1 averaged over n repeats."""
    return Task(
        name="aime2025",
        dataset=DatasetSpec("yentinglin/aime_2025", split="train"),
        to_sample=aime_sample,
        grader=grade_aime,
        n=8,
        subsets=("contest",),
        description="AIME 2025",
    )
