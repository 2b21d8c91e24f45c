"""MATH-500: the 500-problem test subset of MATH used by "Let's Verify Step by Step".

Paper: Lightman et al., "Let's Verify Step by Step" (arXiv:2305.20050); MATH: Hendrycks et
al. (arXiv:2103.03874). Reported by DeepSeek-R1 (arXiv:2501.12948) and most reasoning-model
cards.
Data: https://huggingface.co/datasets/HuggingFaceH4/MATH-500 (split ``test``; the file is
byte-identical to ``openai/prm800k`` ``prm800k/math_splits/test.jsonl``). Fields: problem,
solution, answer, subject, level, unique_id.
Prompt protocols (``--option prompt=NAME``; reference/benchmarks-and-cards.md A2; the texts
are ``evals_tasks.aime.MATH_TEMPLATES``):

- ``r1`` (default): DeepSeek-R1's recommended directive after the problem, "Please reason
  step by step, and put your final answer within \\boxed{}." (deepseek-ai/DeepSeek-R1
  README, "Usage Recommendations").
- ``aa``: Artificial Analysis' "Solve the following math problem step by step. Put your
  answer inside \\boxed{}." + problem + "Remember to put your answer inside \\boxed{}."
- ``simple-evals``: simple-evals' MATH ``QUERY_TEMPLATE`` (openai/simple-evals:math_eval.py,
  HEAD ee3b031), asking for a last line "Answer: $ANSWER" and no ``\\boxed``. The extractor
  reads such lines; simple-evals itself judges equivalence with an LLM, this harness with
  sympy, so scores can differ on answers only a reader would accept.
Grading: the final answer is extracted from the answer (never from the separated reasoning)
and compared with the gold answer by ``evals.grading.math_compare`` in worker processes with a hard
time limit (``--grade-timeout``); breakdown by subject and level.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Mapping
from typing import Any

from evals.grading.context import current_context
from evals.records import Grade, Sample
from evals.registry import DatasetSpec, Task, task

from .aime import MATH_TEMPLATES, R1_INSTRUCTION, first_field, render_math

INSTRUCTION = R1_INSTRUCTION

#: The MATH-500 protocols: (name, description with its source); the first is the default.
MATH500_PROTOCOLS: tuple[tuple[str, str], ...] = (
    ("r1", ("DeepSeek-R1 README usage recommendations: problem, then 'Please reason step by "
           "step, and put your final answer within \\boxed{}.'")),
    ("aa", ("Artificial Analysis methodology (evalscope, evalchemy): instruction, problem, "
           "reminder to use \\boxed{}")),
    ("simple-evals", ("openai/simple-evals math_eval.py QUERY_TEMPLATE: last line "
                     "'Answer: $ANSWER', no \\boxed")),
)


def math500_sample(row: Mapping[str, Any], index: int, *,
                   template: str = MATH_TEMPLATES["r1"]) -> Sample:
    """A MATH-500 row as a ``Sample`` (target: the reference answer, LaTeX), asked with
    ``template`` (one of ``MATH_TEMPLATES``; default DeepSeek-R1's)."""
    problem = str(first_field(row, ("problem", "question"))).strip()
    answer = str(first_field(row, ("answer",))).strip()
    if not answer:
        raise ValueError("empty 'answer'")
    raw_id = next((row[k] for k in ("unique_id", "id") if row.get(k) is not None), None)
    metadata: list[tuple[str, str | int | float | None]] = []
    for name in ("subject", "level"):
        value = row.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            metadata.append((name, value))
    return Sample(
        id=str(raw_id) if raw_id is not None else str(index),
        messages=(("user", render_math(template, problem)),),
        target=answer,
        metadata=tuple(metadata),
    )


async def grade_math500(answer: str, sample: Sample) -> Grade:
    """Extract the final answer and judge it equivalent to the gold, in the worker pool.

    Past the run's ``--grade-timeout`` the worker is killed and the attempt is wrong with
    reason "timeout"; nothing else waits on it.
    """
    from evals.grading.math_compare import grade_math_answer
    from evals.grading.pool import GradingTimeout

    context = current_context()
    try:
        verdict: dict[str, Any] = await context.pool().call(
            grade_math_answer, sample.target, answer
        )
    except GradingTimeout:
        limit = context.options.timeout_s
        return Grade(None, False, "timeout", {"time_limit_s": limit})
    details = {k: v for k, v in verdict.items()
               if k not in ("extracted", "correct", "reason") and v is not None}
    return Grade(verdict.get("extracted"), bool(verdict.get("correct")),
                 str(verdict.get("reason")), details)


# -- how the simulated server answers ---------------------------------------------------------

_ENDINGS = (
    "Therefore, the answer is $\\boxed{{{value}}}$.",
    "**Final Answer**\n\n\\[\n\\boxed{{{value}}}\n\\]",
    "Final Answer: The final answer is ${value}$. I hope it is correct.",
    "Putting it together, we get \\boxed{{{value}}}.",
)
# What a model asked for a last line "Answer: $ANSWER" (simple-evals) writes.
_ANSWER_LINE_ENDINGS = (
    "Answer: {value}",
    "So the value is ${value}$.\n\nAnswer: ${value}$",
)


def _wrong(gold: str, rng: random.Random) -> str:
    """A plausible wrong answer: one digit of the gold changed, else a different value."""
    digits = [m.start() for m in re.finditer(r"\d", gold)]
    if digits:
        at = rng.choice(digits)
        new = str((int(gold[at]) + rng.randint(1, 8)) % 10)
        if at == 0 and new == "0" and len(gold) > 1 and gold[1].isdigit():
            new = "9"
        return gold[:at] + new + gold[at + 1 :]
    return f"{gold} + {rng.randint(2, 9)}"


def math500_answer(sample: Sample, correct: bool, rng: random.Random, prompt: str = ""
                   ) -> tuple[str, str]:
    """(reasoning, answer) as a reasoning model writes them for a MATH-500 problem."""
    value = sample.target if correct else _wrong(sample.target, rng)
    reasoning = (
        "Let me set up the problem. I will simplify step by step and check each step. "
        f"Computing carefully, I get {value}. Let me verify once more... yes."
    )
    endings = _ANSWER_LINE_ENDINGS if "after \"Answer:\"" in prompt else _ENDINGS
    body = ("We work through the algebra, simplifying at each step.\n\n"
            + rng.choice(endings).format(value=value))
    return reasoning, body


def _math500_task(protocol: str = MATH500_PROTOCOLS[0][0]) -> Task:
    """MATH-500 asking with ``protocol``; ``--option prompt=NAME`` rebuilds it."""
    configure: Callable[[Mapping[str, str]], Task] = lambda options: _math500_task(
        options["prompt"].strip())
    return Task(
        name="math500",
        dataset=DatasetSpec("HuggingFaceH4/MATH-500", split="test"),
        to_sample=functools.partial(math500_sample, template=MATH_TEMPLATES[protocol]),
        grader=grade_math500,
        n=4,  # DeepSeek-R1's protocol is --n 64; 4 keeps a default run affordable
        subsets=("subject", "level"),
        description="MATH-500",
        answer_writer=math500_answer,
        heavy_grader=True,
        options=("prompt",),
        configure=configure,
        protocols=MATH500_PROTOCOLS,
        protocol=protocol,
    )


@task("math500")
def math500() -> Task:
    """MATH-500 (500 problems), sympy equivalence, breakdown by subject and level."""
    return _math500_task()
