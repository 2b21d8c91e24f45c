"""MMLU-Pro's own 5-shot chain-of-thought prompt (helpers only: no task is defined here).

Source: TIGER-AI-Lab/MMLU-Pro:evaluate_from_api.py (``single_request``, ``format_example``,
``preprocess``); reference/benchmarks-and-cards.md A2. One user message holds

1. the head "The following are multiple choice questions (with answers) about {category}.
   Think step by step and then output the answer in the format of "The answer is (X)" at
   the end." and a blank line;
2. the exemplars of the question's category (up to five, in file order), each
   ``Question: ...\\nOptions: A. ...\\nB. ...\\nAnswer: <cot_content>\\n\\n`` (a leading "A: "
   of ``cot_content`` dropped, an empty one replaced by "Let's think step by step.");
3. the test question in the same shape, ending ``Answer: Let's think step by step.\\n\\n``
   (the script's ``format_example`` with an empty ``cot_content``, trailing blank line
   included).

Options equal to "N/A" are dropped everywhere, as the script's ``preprocess`` does. The
exemplars come from the ``validation`` split of TIGER-Lab/MMLU-Pro at the revision the
task pins, or from a local jsonl with the same fields (``--option fewshot_data=PATH``).
They are loaded the first time a prompt is built, when a run loads its data, not when the
task is constructed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals.errors import ConfigError, EvalsError
from evals.records import Grade, Sample
from evals.registry import DatasetSpec, Task

__all__ = [
    "HEAD",
    "MAX_SHOTS",
    "TEMPLATE",
    "Exemplars",
    "format_example",
]

#: The prompt head, ``{category}`` being the question's category as written in the data.
HEAD = (
    "The following are multiple choice questions (with answers) about {category}. Think step "
    "by step and then output the answer in the format of \"The answer is (X)\" at the end.\n\n"
)
#: The test question's shape for ``ChoicePrompt`` (choices ``A. option`` one per line):
#: ``{question}`` holds the head, the exemplars and ``Question: <text>``.
TEMPLATE = "{question}\nOptions: {choices}\nAnswer: Let's think step by step.\n\n"
#: At most this many exemplars per category (the validation split has five of each).
MAX_SHOTS = 5
_LETTERS = "ABCDEFGHIJ"


def format_example(question: str, options: Sequence[str], cot_content: str = "") -> str:
    """One exemplar (or, with no ``cot_content``, the test question) as the script writes it.

    Example:
        >>> format_example("2+2?", ["3", "4"], "A: 2+2=4. The answer is (B).")
        'Question: 2+2?\\nOptions: A. 3\\nB. 4\\nAnswer: 2+2=4. The answer is (B).\\n\\n'
    """
    if cot_content == "":
        cot_content = "Let's think step by step."
    cot_content = cot_content.removeprefix("A: ")
    if len(options) > len(_LETTERS):
        raise ValueError(f"{len(options)} options: MMLU-Pro has at most {len(_LETTERS)}")
    lines = "".join(f"{_LETTERS[i]}. {option}\n" for i, option in enumerate(options))
    return f"Question: {question}\nOptions: {lines}Answer: {cot_content}\n\n"


def _kept_options(row: Mapping[str, Any]) -> list[str]:
    options = row.get("options")
    if not isinstance(options, list):
        raise KeyError(f"field 'options' is missing or not a list (row has: {', '.join(row)})")
    return [str(option) for option in options if option != "N/A"]


def _exemplar_sample(row: Mapping[str, Any], index: int) -> Sample:
    """An exemplar row, formatted, carried as a ``Sample`` so the harness's loader (and its
    row-by-row error report) reads the exemplar file too."""
    question, category = row.get("question"), row.get("category")
    if not isinstance(question, str) or not question.strip():
        raise KeyError(f"field 'question' is missing or empty (row has: {', '.join(row)})")
    if not isinstance(category, str) or not category.strip():
        raise KeyError(f"field 'category' is missing or empty (row has: {', '.join(row)})")
    cot = row.get("cot_content")
    if not isinstance(cot, str):
        raise KeyError(f"field 'cot_content' is missing (row has: {', '.join(row)})")
    return Sample(
        id=str(index),  # the position: exemplars need no id, and repeated ids are harmless
        messages=(("user", format_example(question, _kept_options(row), cot)),),
        target="",
        metadata=(("category", category),),
    )


async def _no_grade(answer: str, sample: Sample) -> Grade:  # exemplars are never graded
    return Grade(None, False, "not graded")


class Exemplars:
    """The exemplars of one source, loaded once on first use.

    Args:
        task_name: the task they serve (for messages).
        hub: the validation split to read when ``path`` is ``None``.
        path: a local jsonl/parquet/csv with MMLU-Pro's fields (``question``, ``options``,
            ``cot_content``, ``category``; other fields are ignored).
    """

    def __init__(self, task_name: str, hub: DatasetSpec, path: Path | None = None) -> None:
        self.task_name = task_name
        self.hub = hub
        self.path = path
        self._by_category: dict[str, list[str]] | None = None
        self._source = ""

    def _load(self) -> dict[str, list[str]]:
        if self._by_category is not None:
            return self._by_category
        from evals.data import load_task_data

        if self.path is not None and not self.path.expanduser().is_file():
            raise ConfigError(
                f"Task {self.task_name!r}: --option fewshot_data={self.path} is not a file. "
                "Give a jsonl of exemplars with MMLU-Pro's fields (question, options, "
                "cot_content, category), e.g. the validation split of TIGER-Lab/MMLU-Pro."
            )
        carrier = Task(name=self.task_name, dataset=self.hub, to_sample=_exemplar_sample,
                       grader=_no_grade)
        try:
            loaded = load_task_data(carrier, self.path)
        except EvalsError as exc:
            # A ConfigError stops the run at once; a DataError raised while a test row is
            # built would be reported against that row, and retried for every row.
            raise ConfigError(
                f"Task {self.task_name!r}, prompt protocol mmlu-pro-5shot: its exemplars "
                f"could not be loaded: {exc} To use a local copy of the validation split, "
                "pass --option fewshot_data=PATH."
            ) from exc
        by_category: dict[str, list[str]] = {}
        for sample in loaded.samples:
            category = str(dict(sample.metadata)["category"])
            shots = by_category.setdefault(category, [])
            if len(shots) < MAX_SHOTS:
                shots.append(sample.messages[-1][1])
        self._by_category = by_category
        self._source = loaded.source
        return by_category

    def context(self, category: str) -> str:
        """The head and the exemplars of ``category``: all the prompt before ``Question:``
        of the test question.

        Raises:
            ValueError: the source has no exemplar of ``category`` (reported against the
                test row by the loader).
            ConfigError: the exemplars cannot be loaded.
        """
        by_category = self._load()
        shots = by_category.get(category)
        if not shots:
            raise ValueError(
                f"no 5-shot exemplar of category {category!r} in {self._source} (it has: "
                f"{', '.join(sorted(by_category)) or 'none'})"
            )
        return HEAD.replace("{category}", category) + "".join(shots)
