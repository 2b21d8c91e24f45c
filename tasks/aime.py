"""AIME 2024 and AIME 2025: 30 integer-answer problems each (American Invitational
Mathematics Examination, I and II).

Papers that report it: DeepSeek-R1 (arXiv:2501.12948), Magistral (arXiv:2506.10910).
Data: https://huggingface.co/datasets/HuggingFaceH4/aime_2024 and
https://huggingface.co/datasets/yentinglin/aime_2025 (the copies lighteval reads); any local
copy with ``problem``/``question`` and ``answer`` fields works with ``--data``.
Prompt protocols (``--option prompt=NAME``; reference/benchmarks-and-cards.md A2):

- ``matharena`` (default): MathArena's instruction (eth-sri/matharena), the problem first,
  then "Please reason step by step, and put your final answer within \\boxed{}. The answer
  is an integer between 0 and 999 inclusive."
- ``r1``: DeepSeek-R1's directive (deepseek-ai/DeepSeek-R1 README, "Usage
  Recommendations"): the problem, a blank line, then "Please reason step by step, and put
  your final answer within \\boxed{}." (evalscope's AIME 2024 adapter puts a single
  newline between them).
- ``aa``: Artificial Analysis (also evalscope ``aime25`` and evalchemy AIME25): "Solve the
  following math problem step by step. Put your answer inside \\boxed{}.", a blank line,
  the problem, a blank line, "Remember to put your answer inside \\boxed{}."

The math protocols are shared with MATH-500 (``tasks/math500.py``) through
``MATH_TEMPLATES``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from evals.grading.aime import grade_aime
from evals.records import Sample
from evals.registry import DatasetSpec, Task, task

INSTRUCTION = (
    "Please reason step by step, and put your final answer within \\boxed{}. "
    "The answer is an integer between 0 and 999 inclusive."
)
#: DeepSeek-R1's math directive (deepseek-ai/DeepSeek-R1:README.md, "Usage Recommendations").
R1_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."

#: User-message templates by protocol name; ``{problem}`` is replaced by the problem text
#: (once, and the inserted text is not scanned again, so a problem's own braces are safe).
MATH_TEMPLATES: Mapping[str, str] = {
    "matharena": "{problem}\n\n" + INSTRUCTION,
    "r1": "{problem}\n\n" + R1_INSTRUCTION,
    "aa": ("Solve the following math problem step by step. Put your answer inside "
           "\\boxed{}.\n\n{problem}\n\nRemember to put your answer inside \\boxed{}."),
    # simple-evals QUERY_TEMPLATE (openai/simple-evals:math_eval.py, HEAD ee3b031).
    "simple-evals": (
        "Solve the following math problem step by step. The last line of your response "
        "should be of the form Answer: $ANSWER (without quotes) where $ANSWER is the answer "
        "to the problem.\n\n{problem}\n\nRemember to put your answer on its own line after "
        "\"Answer:\", and you do not need to use a \\boxed command."
    ),
}

#: The AIME protocols: (name, description with its source); the first is the default.
AIME_PROTOCOLS: tuple[tuple[str, str], ...] = (
    ("matharena", ("MathArena (eth-sri/matharena): problem, then the R1 directive and 'The "
                  "answer is an integer between 0 and 999 inclusive.'")),
    ("r1", ("DeepSeek-R1 README usage recommendations: problem, then 'Please reason step by "
           "step, and put your final answer within \\boxed{}.'")),
    ("aa", ("Artificial Analysis methodology (evalscope aime25, evalchemy AIME25): "
           "instruction, problem, reminder to use \\boxed{}")),
)


def render_math(template: str, problem: str) -> str:
    """``template`` with ``{problem}`` replaced by ``problem`` (its braces left alone)."""
    head, sep, tail = template.partition("{problem}")
    if not sep:
        raise ValueError(f"template {template[:60]!r}... has no {{problem}} field")
    return head + problem + tail


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


def aime_sample(row: Mapping[str, Any], index: int, *,
                template: str = MATH_TEMPLATES["matharena"]) -> Sample:
    """An AIME row (hub or local copy) as a ``Sample``, asked with ``template`` (one of
    ``MATH_TEMPLATES``; default MathArena's)."""
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
        messages=(("user", render_math(template, problem)),),
        target=str(int(answer)),
        metadata=metadata,
    )


def _aime_task(name: str, dataset: DatasetSpec, description: str,
              protocol: str = AIME_PROTOCOLS[0][0]) -> Task:
    """An AIME task asking with ``protocol``; ``--option prompt=NAME`` rebuilds it."""
    configure: Callable[[Mapping[str, str]], Task] = functools.partial(
        _configure_aime, name, dataset, description)
    return Task(
        name=name,
        dataset=dataset,
        to_sample=functools.partial(aime_sample, template=MATH_TEMPLATES[protocol]),
        grader=grade_aime,
        n=8,
        subsets=("contest",),
        description=description,
        options=("prompt",),
        configure=configure,
        protocols=AIME_PROTOCOLS,
        protocol=protocol,
    )


def _configure_aime(name: str, dataset: DatasetSpec, description: str,
                    options: Mapping[str, str]) -> Task:
    return _aime_task(name, dataset, description, options["prompt"].strip())


@task("aime2024")
def aime2024() -> Task:
    """AIME 2024 I+II (30 problems), integer answers, pass@1 averaged over n repeats."""
    return _aime_task("aime2024", DatasetSpec("HuggingFaceH4/aime_2024", split="train"),
                      "AIME 2024")


@task("aime2025")
def aime2025() -> Task:
    """AIME 2025 I+II (30 problems), integer answers, pass@1 averaged over n repeats."""
    return _aime_task("aime2025", DatasetSpec("yentinglin/aime_2025", split="train"),
                      "AIME 2025")
