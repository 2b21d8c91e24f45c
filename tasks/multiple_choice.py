"""Multiple choice: GPQA Diamond and MMLU-Pro, and the shape for more of their kind.

- GPQA Diamond: 198 graduate-level physics, chemistry and biology questions with four
  options (Rein et al., "GPQA: A Graduate-Level Google-Proof Q&A Benchmark",
  arXiv:2311.12022; https://huggingface.co/datasets/Idavidrein/gpqa, gated: request access
  on that page and set ``HF_TOKEN``). The data lists the correct answer first, so the
  choices are shuffled per (problem, repeat).
- MMLU-Pro: 12,032 questions in 14 categories with up to ten options A-J (Wang et al.,
  "MMLU-Pro: A More Robust and Challenging Multi-Task Language Understanding Benchmark",
  arXiv:2406.01574; https://huggingface.co/datasets/TIGER-Lab/MMLU-Pro). Published
  evaluations keep the dataset's order, so shuffling is off unless ``--option
  shuffle=true``. Options equal to "N/A" are dropped, as the official script does
  (TIGER-AI-Lab/MMLU-Pro:evaluate_from_api.py).

Prompt protocols (``--option prompt=NAME``; ``reference/benchmarks-and-cards.md`` A2):

- ``simple-evals`` (default for both): simple-evals' zero-shot
  ``QUERY_TEMPLATE_MULTICHOICE`` (openai/simple-evals:common.py), the one DeepSeek-R1 and
  Epoch AI use for GPQA Diamond, sent as one user message: an instruction asking for a last
  line "Answer: $LETTER", the question, then one line ``X) option`` per choice. The letter
  list in the instruction is the question's own ("one of ABCDEFGHIJ" for ten options), not
  a fixed "ABCD" (lighteval's MMLU-Pro keeps "ABCD" although options go to J; A2 flags
  that).
- ``boxed`` (GPQA Diamond): evalchemy's prompt (mlfoundations/evalchemy:eval/
  chat_benchmarks/GPQADiamond/eval_instruct.py): "Return your final response within
  \\boxed{} and only include the letter choice (A, B, C, or D) as your final response.",
  then ``Problem: ...``, ``Options: A) ..., B) ..., C) ..., D) ...`` on one line and
  ``Answer:``. (evalchemy draws one order per problem with ``random.Random(42)``; here each
  repeat is shuffled from its own seed as in the default protocol.)
- ``mmlu-pro-5shot`` (MMLU-Pro): the official 5-shot chain of thought
  (TIGER-AI-Lab/MMLU-Pro:evaluate_from_api.py, see ``evals_tasks.mmlu_pro_fewshot``), with
  the stop sequence "Question:" and the script's extraction cascade ("answer is (X)",
  "Answer: X", then the last standalone letter A-J). Exemplars: the ``validation`` split at
  the pinned revision, or ``--option fewshot_data=PATH``. Question and options are sent as
  written in the data (not stripped), as the script does. The script counts a response
  with no letter as a random guess (``random.seed(12345)``); here it is wrong.

Grading: ``evals.grading.choice`` (the last stated answer wins; simple-evals and the
MMLU-Pro script take the first "Answer: X" / "answer is (X)" match). Each attempt's ``permutation`` (dataset index of the option shown
at each position) and ``gold_letter`` are kept in its metadata; ``evals grade`` takes a
``permutation`` field per response line (absent: dataset order).

A new dataset of this kind is a mapping from a row to a ``Question`` and one call::

    @task("my_mcq")
    def my_mcq() -> Task:
        return choice_task("my_mcq", DatasetSpec("org/data", split="test"), my_question,
                           shuffle=True, n=4)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.errors import ConfigError
from evals.grading.choice import ALPHABET, choice_grader, shuffle_choices
from evals.records import Sample
from evals.registry import AnswerWriter, DatasetSpec, Prepare, Task, task

from . import mmlu_pro_fewshot

__all__ = [
    "BOXED_TEMPLATE",
    "QUERY_TEMPLATE",
    "ChoicePrompt",
    "ChoiceProtocol",
    "Question",
    "choice_task",
    "gpqa_diamond",
    "gpqa_question",
    "mmlu_pro",
    "mmlu_pro_question",
]

#: simple-evals' QUERY_TEMPLATE_MULTICHOICE (openai/simple-evals:common.py, HEAD ee3b031),
#: with the question's own letters in place of the fixed "ABCD" and the choice lines as
#: one ``{choices}`` block.
QUERY_TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should "
    "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
    "{letters}. Think step by step before answering.\n\n{question}\n\n{choices}"
)

#: evalchemy's GPQA Diamond prompt (mlfoundations/evalchemy:eval/chat_benchmarks/
#: GPQADiamond/eval_instruct.py, ``PROMPT``); render it with ``separator=", "``.
BOXED_TEMPLATE = (
    "Return your final response within \\boxed{} and only include the letter choice (A, B, C, "
    "or D) as your final response.\nProblem: {question}\nOptions: {choices}\nAnswer:"
)

MetaValue = str | int | float | None
Row = Mapping[str, Any]
_FIELD = re.compile(r"\{(question|choices|letters)\}")


@dataclass(frozen=True, slots=True)
class Question:
    """One multiple-choice problem, in dataset order.

    Attributes:
        id: the problem's id in its dataset.
        text: the question.
        choices: the option texts in dataset order.
        gold: the index of the correct option in ``choices``.
        metadata: extra fields for the per-attempt table and the breakdowns (small values
            only: they are repeated on every attempt's row).
    """

    id: str
    text: str
    choices: tuple[str, ...]
    gold: int
    metadata: tuple[tuple[str, MetaValue], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= len(self.choices) <= len(ALPHABET):
            raise ValueError(f"{len(self.choices)} choices: need 1 to {len(ALPHABET)}")
        if not 0 <= self.gold < len(self.choices):
            raise ValueError(f"gold index {self.gold} outside the {len(self.choices)} choices")


@dataclass(frozen=True, slots=True)
class ChoicePrompt:
    """How a question and its choices become the user message.

    ``template`` holds ``{question}``, then ``{choices}`` (the ``X) option`` lines), and
    optionally ``{letters}`` (e.g. ``ABCD``); other braces are literal, so LaTeX such as
    ``\\boxed{}`` needs no escaping. The text after ``{choices}`` must not contain
    ``{question}``.

    Attributes:
        template: the prompt, as above.
        label: what follows each letter: ``") "`` gives ``A) option``, ``". "`` gives
            ``A. option`` (MMLU-Pro's own prompt).
        separator: what joins the choices: ``"\\n"`` (one per line) or, e.g., ``", "``
            (evalchemy's one-line options). Options containing ``separator`` followed by a
            label cannot be told apart from the next choice.

    Raises:
        ValueError: the template lacks ``{question}`` or ``{choices}``, has either twice, or
            puts the choices before the question.
    """

    template: str = QUERY_TEMPLATE
    label: str = ") "
    separator: str = "\n"

    def __post_init__(self) -> None:
        fields = _FIELD.findall(self.template)
        if fields.count("question") != 1 or fields.count("choices") != 1:
            raise ValueError(
                f"template {self.template[:80]!r}...: needs {{question}} and {{choices}} "
                "exactly once each"
            )
        if self.template.index("{question}") > self.template.index("{choices}"):
            raise ValueError("template: {question} must come before {choices}")
        if not self.label or not self.separator:
            raise ValueError("label and separator must not be empty")

    def block(self, choices: Sequence[str]) -> str:
        """The choices as shown: ``A) first``, ``B) second``, ... joined by ``separator``."""
        return self.separator.join(f"{ALPHABET[i]}{self.label}{choice}"
                                   for i, choice in enumerate(choices))

    def _lead(self) -> str:
        """The literal text just before ``{choices}`` (after any other field)."""
        before = self.template.split("{choices}", 1)[0]
        return re.split(r"\{(?:question|letters)\}", before)[-1]

    def tail(self, n: int) -> str:
        """The text after the choices for a question with ``n`` choices."""
        after = self.template.split("{choices}", 1)[1]
        return _fill(after, {"letters": ALPHABET[:n]})

    def render(self, question: str, choices: Sequence[str]) -> str:
        """The prompt for ``question`` with ``choices`` in the given order."""
        return _fill(self.template, {"question": question, "choices": self.block(choices),
                                     "letters": ALPHABET[: len(choices)]})

    def split(self, prompt: str) -> tuple[str, tuple[str, ...]] | None:
        """``(text before the choices, choices in the order shown)``, or ``None`` when the
        prompt does not have this template's shape.

        The choices are the last run of lines labelled ``A) ``, ``B) ``, ... (an option may
        span lines); a question may itself contain such lines, an option may not. With
        another ``label`` or ``separator`` the same holds of their shape.
        """
        body = prompt
        if self.template.split("{choices}", 1)[1]:
            for n in range(len(ALPHABET), 0, -1):
                tail = self.tail(n)
                if prompt.endswith(tail):
                    body = prompt[: len(prompt) - len(tail)]
                    break
            else:
                return None
        first = f"A{self.label}"
        starts = [0] if body.startswith(first) else []
        for before in {self.separator, self._lead()} - {""}:
            at = body.rfind(before + first)
            if at >= 0:
                starts.append(at + len(before))
        if not starts:
            return None
        start = max(starts)
        choices: list[str] = []
        pos = start + len(first)
        for letter in ALPHABET[1:]:
            mark = f"{self.separator}{letter}{self.label}"
            nxt = body.find(mark, pos)
            if nxt < 0:
                break
            choices.append(body[pos:nxt])
            pos = nxt + len(mark)
        choices.append(body[pos:])
        return body[:start], tuple(choices)

    def key(self, prompt: str) -> str:
        """What identifies a problem whatever the order of its choices: the text before
        the choices and the sorted choices (two problems may share a question text)."""
        parts = self.split(prompt)
        if parts is None:
            return prompt
        head, choices = parts
        return "\x1f".join((head, *sorted(choices)))


def _fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with ``{name}`` fields replaced in one pass (inserted text is not
    scanned again, and other braces stay as they are)."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _base_sample(question: Question, prompt: ChoicePrompt) -> Sample:
    """The problem in dataset order, with what ``prepare`` needs to re-order it."""
    identity = list(range(len(question.choices)))
    return Sample(
        id=question.id,
        messages=(("user", prompt.render(question.text, question.choices)),),
        target=ALPHABET[question.gold],
        metadata=(
            *question.metadata,
            ("choices", _dumps(list(question.choices))),
            ("gold_index", question.gold),
            ("permutation", _dumps(identity)),
            ("gold_letter", ALPHABET[question.gold]),
        ),
    )


def _permutation(value: Any, n: int, sample_id: str) -> list[int]:
    """A recorded permutation (a list or its JSON text), checked against ``n`` choices."""
    order = value
    if isinstance(value, str):
        try:
            order = json.loads(value)
        except json.JSONDecodeError:
            order = None
    if (not isinstance(order, list) or any(type(i) is not int for i in order)
            or sorted(order) != list(range(n))):
        raise ValueError(
            f"permutation {value!r} for problem {sample_id!r} is not an order of its {n} "
            f"choices: give a list holding each of 0..{n - 1} once, e.g. "
            f"{list(range(n))[::-1]}"
        )
    return list(order)


def _make_prepare(prompt: ChoicePrompt, shuffle: bool) -> Prepare:
    def prepare(sample: Sample, seed: int | None, given: Mapping[str, Any]) -> Sample:
        """The attempt's sample: choices in the recorded, drawn or dataset order."""
        meta = dict(sample.metadata)
        choices = json.loads(str(meta["choices"]))
        gold = int(meta["gold_index"] or 0)
        n = len(choices)
        shown = _permutation(meta.get("permutation", _dumps(list(range(n)))), n, sample.id)
        if given.get("permutation") is not None:
            order = _permutation(given["permutation"], n, sample.id)
        elif seed is not None and shuffle:
            order = list(shuffle_choices(n, seed))
        else:
            order = list(range(n))
        (role, text), *rest = reversed(sample.messages)
        ending = prompt.block([choices[i] for i in shown]) + prompt.tail(n)
        if role != "user" or not text.endswith(ending):
            raise ValueError(f"problem {sample.id!r}: its prompt does not end with its "
                             "choices; it was not made by this task's template")
        head = text[: len(text) - len(ending)]
        asked = head + prompt.block([choices[i] for i in order]) + prompt.tail(n)
        gold_letter = ALPHABET[order.index(gold)]
        meta.update(permutation=_dumps(order), gold_letter=gold_letter)
        return Sample(
            id=sample.id,
            messages=(*reversed(rest), ("user", asked)),
            target=gold_letter,
            metadata=tuple(meta.items()),
        )

    return prepare


_WORKING = (
    "Let me restate what is asked and check each option in turn.",
    "I will eliminate the options that contradict the given data.",
    "First, the relevant principle; then a quick estimate to compare with the options.",
)
_DISCUSS = (
    "Option {W} is wrong because it ignores a factor of two.",
    ("At first (A) looked plausible, but a quick check rules it out unless the question "
     "meant something else."),
    "I considered {W}, which fails the limiting case.",
    "A careful check of the units leaves only one candidate.",
)
_ENDINGS = (
    "Answer: {L}",
    "**Answer:** ({L})",
    "Therefore, the answer is $\\boxed{{{L}}}$.",
    "The correct option is {L}.",
    "**Final Answer**\n\n\\[\n\\boxed{{\\text{{{L}}}}}\n\\]",
    "So the answer is ({l}).",
    "Final answer: {L}) {T}",
    ("Answer: {W}\n\nWait, let me re-check option {W}: it fails the limiting case. "
     "Actually the right choice is {L}.\n\nAnswer: {L}"),
    "ANSWER: {l}",
    "I choose {L}.",
    "\\boxed{{({L})}}",
)
# What a model asked for \boxed{} (evalchemy) or "The answer is (X)" (MMLU-Pro) writes.
_BOXED_ENDINGS = (
    "\\boxed{{{L}}}",
    "Therefore, the final answer is $\\boxed{{{L}}}$.",
    "**Final Answer**\n\n\\[\n\\boxed{{\\text{{{L}}}}}\n\\]",
)
_FEWSHOT_ENDINGS = (
    "The answer is ({L}).",
    "Checking each option against the data, the answer is ({L}).",
    "So the answer is ({L}).",
)


def _make_writer(prompt: ChoicePrompt, endings: tuple[str, ...] = _ENDINGS) -> AnswerWriter:
    def write(sample: Sample, correct: bool, rng: random.Random, asked: str
              ) -> tuple[str, str]:
        """A reasoning-model answer naming the letter that holds the gold option in
        ``asked`` (``correct``) or another letter."""
        meta = dict(sample.metadata)
        choices = json.loads(str(meta["choices"]))
        gold_text = choices[int(meta["gold_index"] or 0)]
        parts = prompt.split(asked)
        shown = list(parts[1]) if parts is not None else choices
        gold_at = shown.index(gold_text) if gold_text in shown else 0
        others = [i for i in range(len(shown)) if i != gold_at] or [gold_at]
        pick = gold_at if correct else rng.choice(others)
        decoy = rng.choice([i for i in range(len(shown)) if i != pick] or [pick])
        values = {"L": ALPHABET[pick], "l": ALPHABET[pick].lower(), "T": shown[pick],
                  "W": ALPHABET[decoy]}
        reasoning = " ".join(rng.sample(_WORKING, 2)) + " " + _DISCUSS[0].format(**values)
        body = "\n\n".join([
            rng.choice(_WORKING),
            rng.choice(_DISCUSS).format(**values),
            rng.choice(endings).format(**values),
        ])
        return reasoning, body

    return write


def _parse_bool(task_name: str, key: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"Task {task_name!r}: --option {key}={value!r} is not true or false. "
                      f"Use --option {key}=true or --option {key}=false.")


@dataclass(frozen=True, slots=True)
class ChoiceProtocol:
    """One way of asking a multiple-choice task (``--option prompt=NAME``).

    Attributes:
        name: the protocol's name.
        description: one line naming its source.
        prompt: the template and choice layout.
        stop: stop sequences sent with each request.
        endings: how the simulated model ends its answers (``{L}`` the letter, ``{l}`` in
            lower case, ``{T}`` the option text, ``{W}`` another letter).
        last_letter: the grader's last-resort letters (see ``extract_choice``).
        fewshot: MMLU-Pro's 5-shot frame (``evals_tasks.mmlu_pro_fewshot``): the question
            is preceded by the head and its category's exemplars and sent as written.
    """

    name: str
    description: str
    prompt: ChoicePrompt = ChoicePrompt()
    stop: tuple[str, ...] = ()
    endings: tuple[str, ...] = _ENDINGS
    last_letter: str = ""
    fewshot: bool = False


#: simple-evals' zero-shot prompt, the default of every multiple-choice task.
SIMPLE_EVALS = ChoiceProtocol(
    "simple-evals", "openai/simple-evals common.py QUERY_TEMPLATE_MULTICHOICE, zero-shot, "
    "last line 'Answer: $LETTER'")
#: evalchemy's boxed-letter prompt for GPQA Diamond (four options).
BOXED = ChoiceProtocol(
    "boxed", "mlfoundations/evalchemy GPQADiamond eval_instruct.py: letter within \\boxed{}, "
    "options on one line",
    prompt=ChoicePrompt(BOXED_TEMPLATE, separator=", "), endings=_BOXED_ENDINGS)
#: MMLU-Pro's official 5-shot chain of thought.
MMLU_PRO_5SHOT = ChoiceProtocol(
    "mmlu-pro-5shot", "TIGER-AI-Lab/MMLU-Pro evaluate_from_api.py: 5-shot CoT from the "
    "validation split, 'The answer is (X)', stop 'Question:'",
    prompt=ChoicePrompt(mmlu_pro_fewshot.TEMPLATE, label=". "), stop=("Question:",),
    endings=_FEWSHOT_ENDINGS, last_letter="ABCDEFGHIJ", fewshot=True)


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    dataset: DatasetSpec
    to_question: Callable[[Row, int], Question]
    shuffle: bool
    n: int
    max_tokens: int
    subsets: tuple[str, ...]
    description: str
    protocols: tuple[ChoiceProtocol, ...]
    protocol: ChoiceProtocol
    fewshot_data: Path | None = None


def _fewshot_dataset(dataset: DatasetSpec) -> DatasetSpec:
    """The exemplars' split: ``validation`` of the task's own hub dataset and revision."""
    return dataclasses.replace(dataset, split="validation")


def _fewshot_question(row: Row, index: int, exemplars: mmlu_pro_fewshot.Exemplars
                      ) -> Question:
    """An MMLU-Pro row framed as the script frames it: question and options as written
    (only exact "N/A" options dropped), after the head and the category's exemplars."""
    base = mmlu_pro_question(row, index)
    question, category = row.get("question"), row.get("category")
    if not isinstance(category, str) or not category:
        raise KeyError(f"field 'category' is missing or empty (row has: {', '.join(row)})")
    options = [str(o) for o in row["options"] if o != "N/A"]
    gold_text = str(row["options"][row["answer_index"]])
    return dataclasses.replace(
        base,
        text=exemplars.context(category) + f"Question: {question}",
        choices=tuple(options),
        gold=options.index(gold_text),
    )


def _build(spec: _Spec) -> Task:
    protocol = spec.protocol
    to_question = spec.to_question
    if protocol.fewshot:
        exemplars = mmlu_pro_fewshot.Exemplars(spec.name, _fewshot_dataset(spec.dataset),
                                               spec.fewshot_data)
        to_question = functools.partial(_fewshot_question, exemplars=exemplars)

    def to_sample(row: Row, index: int) -> Sample:
        return _base_sample(to_question(row, index), protocol.prompt)

    def configure(options: Mapping[str, str]) -> Task:
        changes: dict[str, Any] = {}
        if "shuffle" in options:
            changes["shuffle"] = _parse_bool(spec.name, "shuffle", options["shuffle"])
        if "prompt" in options:
            wanted = options["prompt"].strip()
            changes["protocol"] = next(p for p in spec.protocols if p.name == wanted)
        if "fewshot_data" in options:
            changes["fewshot_data"] = Path(options["fewshot_data"]).expanduser()
        configured = dataclasses.replace(spec, **changes)
        if configured.fewshot_data is not None and not configured.protocol.fewshot:
            fewshot = [p.name for p in spec.protocols if p.fewshot]
            raise ConfigError(
                f"Task {spec.name!r}: --option fewshot_data is used only by the prompt "
                f"protocol {' or '.join(fewshot)}; add --option prompt={fewshot[0]} or drop "
                "fewshot_data."
            )
        return _build(configured)

    offers_fewshot = any(p.fewshot for p in spec.protocols)
    return Task(
        name=spec.name,
        dataset=spec.dataset,
        to_sample=to_sample,
        grader=choice_grader(last_letter=protocol.last_letter),
        n=spec.n,
        max_tokens=spec.max_tokens,
        subsets=spec.subsets,
        description=spec.description,
        answer_writer=_make_writer(protocol.prompt, protocol.endings),
        prepare=_make_prepare(protocol.prompt, spec.shuffle),
        prompt_key=protocol.prompt.key,
        options=("shuffle", "prompt", *(("fewshot_data",) if offers_fewshot else ())),
        configure=configure,
        protocols=tuple((p.name, p.description) for p in spec.protocols),
        protocol=protocol.name,
        stop=protocol.stop,
    )


def choice_task(
    name: str,
    dataset: DatasetSpec,
    to_question: Callable[[Row, int], Question],
    *,
    shuffle: bool,
    n: int = 1,
    max_tokens: int = 32768,
    subsets: tuple[str, ...] = (),
    template: str = QUERY_TEMPLATE,
    description: str = "",
    protocols: Sequence[ChoiceProtocol] = (),
) -> Task:
    """A multiple-choice task: prompt, per-attempt shuffle, grader and simulated answers.

    Args:
        name: the task's name.
        dataset: the hub source (``--data`` replaces it with a local file).
        to_question: one dataset row (and its index) as a ``Question``; raises
            ``KeyError``/``ValueError`` on a malformed row.
        shuffle: draw a new order of the choices for every (problem, repeat) from its
            seed; ``--option shuffle=true|false`` overrides it per run.
        n: default repeats.
        max_tokens: default generation budget.
        subsets: metadata fields (from ``Question.metadata``) to break results down by.
        template: the prompt of the default protocol (see ``ChoicePrompt``); default
            simple-evals' template. Ignored when ``protocols`` are given.
        description: one line for ``evals list``.
        protocols: the prompt protocols offered with ``--option prompt=NAME``, the first
            being the default; ``()``: one protocol, ``simple-evals`` with ``template``
            (``custom`` if ``template`` is another).

    Raises:
        ValueError: a bad ``template``, or no protocol at all.
    """
    if not protocols:
        default = (SIMPLE_EVALS if template == QUERY_TEMPLATE else ChoiceProtocol(
            "custom", f"the {name} plugin's own template", ChoicePrompt(template)))
        protocols = (default,)
    offered = tuple(protocols)
    return _build(_Spec(name, dataset, to_question, shuffle, n, max_tokens, subsets,
                        description, offered, offered[0]))


def _text(row: Row, name: str) -> str:
    """A required text field; numbers (CSV readers turn "42" into 42) become text."""
    value = row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise KeyError(f"field {name!r} is missing or empty (row has: {', '.join(row)})")
    out = str(value).strip()
    if not out:
        raise ValueError(f"field {name!r} is empty")
    return out


def _small(value: Any) -> MetaValue:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def gpqa_question(row: Row, index: int) -> Question:
    """A GPQA row (``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``, ``Record
    ID``, ``High-level domain``, ``Subdomain``) as a ``Question``; the correct answer is
    choice 0, as in the data."""
    choices = (_text(row, "Correct Answer"),
               *(_text(row, f"Incorrect Answer {k}") for k in (1, 2, 3)))
    record = row.get("Record ID")
    return Question(
        id=str(record).strip() if record not in (None, "") else str(index),
        text=_text(row, "Question"),
        choices=choices,
        gold=0,
        metadata=(("domain", _small(row.get("High-level domain"))),
                  ("subdomain", _small(row.get("Subdomain")))),
    )


def mmlu_pro_question(row: Row, index: int) -> Question:
    """An MMLU-Pro row (``question_id``, ``question``, ``options``, ``answer``,
    ``answer_index``, ``category``, ``src``) as a ``Question``; "N/A" options dropped."""
    options = row.get("options")
    if not isinstance(options, list) or not options:
        raise KeyError(f"field 'options' is missing or not a list (row has: {', '.join(row)})")
    gold = row.get("answer_index")
    if type(gold) is not int or not 0 <= gold < len(options):
        raise ValueError(f"answer_index {gold!r} is not an index into the {len(options)} "
                         "options")
    letter = row.get("answer")
    if letter is not None and letter != ALPHABET[gold]:
        raise ValueError(f"answer {letter!r} disagrees with answer_index {gold}")
    kept = [i for i, option in enumerate(options) if str(option).strip() != "N/A"]
    if gold not in kept:
        raise ValueError("the correct option is 'N/A'")
    raw_id = row.get("question_id")
    return Question(
        id=str(raw_id) if raw_id is not None else str(index),
        text=_text(row, "question"),
        choices=tuple(str(options[i]).strip() for i in kept),
        gold=kept.index(gold),
        metadata=(("category", _small(row.get("category"))), ("src", _small(row.get("src")))),
    )


@task("gpqa_diamond")
def gpqa_diamond() -> Task:
    """GPQA Diamond (198 questions, 4 shuffled options), gated: needs your HF_TOKEN."""
    return choice_task(
        "gpqa_diamond",
        DatasetSpec("Idavidrein/gpqa", split="train", config="gpqa_diamond", gated=True),
        gpqa_question,
        shuffle=True,
        # 10 repeats: Qwen3's report and the simple-evals runner (reference A3).
        n=10,
        max_tokens=32768,
        subsets=("domain", "subdomain"),
        description="GPQA Diamond",
        protocols=(SIMPLE_EVALS, BOXED),
    )


@task("mmlu_pro")
def mmlu_pro() -> Task:
    """MMLU-Pro test split (12,032 questions, up to 10 options A-J), dataset order."""
    return choice_task(
        "mmlu_pro",
        # The revision lighteval pins (huggingface/lighteval:src/lighteval/tasks/tasks/
        # mmlu_pro.py): results before and after data fixes differ.
        DatasetSpec("TIGER-Lab/MMLU-Pro", split="test",
                    revision="3373e0b32277875b8db2aa555a333b78a08477ea"),
        mmlu_pro_question,
        shuffle=False,
        n=1,
        max_tokens=32768,
        subsets=("category",),
        description="MMLU-Pro",
        protocols=(SIMPLE_EVALS, MMLU_PRO_5SHOT),
    )
