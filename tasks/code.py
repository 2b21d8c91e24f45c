"""Code generation: LiveCodeBench and HumanEval, graded by running the code (pass@k).

* **LiveCodeBench** (Jain et al., "LiveCodeBench: Holistic and Contamination Free
  Evaluation of Large Language Models for Code", arXiv:2403.07974;
  https://livecodebench.github.io). Data: ``livecodebench/code_generation_lite`` on the
  Hugging Face Hub, read as its JSONL shards (``test.jsonl`` ... ``test6.jsonl``) through
  ``datasets``' own json loader, since current ``datasets`` no longer runs the
  repository's loading script. Prompt: LiveCodeBench's chat format
  (``lcb_runner/prompts/code_generation.py``, HEAD 28fef95): its generic system message
  and the "### Question / ### Format / ### Answer" user message, with the starter code for
  LeetCode problems. Grading: LiveCodeBench's rules (``evals.grading.code``).
* **HumanEval** (Chen et al., "Evaluating Large Language Models Trained on Code",
  arXiv:2107.03374; https://github.com/openai/human-eval). Data: ``openai/openai_humaneval``
  (split ``test``). Prompt: simple-evals' chat instruction followed by the function's
  signature and docstring; the program run is the prompt, the model's function, the
  problem's ``test`` and ``check(entry_point)``.

Options of ``livecodebench`` (``--release``, ``--since``, ``--until``):

* ``release``: LiveCodeBench's own tags. ``release_vN`` is cumulative (``test.jsonl`` to
  ``testN.jsonl``; ``release_latest`` = all six); ``vN`` is *only* the problems new in that
  release (``testN.jsonl``; ``v1`` = ``test.jsonl``); ``vA_vB`` is the new problems of
  releases A to B (``v4_v5`` approximates DeepSeek-R1's 2024-08 .. 2025-01 window). Each
  tag also keeps only contest dates inside its release window (May 2023 to the end of
  the release's last month), so a local copy of all problems given with ``--data`` is cut
  the same way.
* ``since`` / ``until``: contest dates (``YYYY-MM-DD``, both days included; LiveCodeBench's
  runner bounds ``--end_date`` at midnight instead, so pass the following day there).

The default is ``release_v5`` (880 problems, May 2023 - Jan 2025): "LiveCodeBench v5" is
what the model cards this harness compares with quote (DeepSeek-R1, Qwen3, Magistral,
Artificial Analysis), each with its own date window, so pass ``--since``/``--until``
to match one (DeepSeek-R1: ``--since 2024-08-01 --until 2025-01-31``).

Default repeats: 3 for LiveCodeBench (Artificial Analysis and evalchemy, the settings of
published reasoning-model numbers; LiveCodeBench's own runner uses 10 with 2,000-token
chat answers) and 5 for HumanEval (simple-evals' pass@1/2/5).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from evals.data import LazyField
from evals.errors import ConfigError
from evals.grading.code import CodeProblem, extract_code, grade_program, humaneval_program
from evals.grading.lcb import TestCase, decode_private_tests, parse_public_tests
from evals.records import Grade, Sample
from evals.registry import DatasetSpec, Grader, Task, task

__all__ = [
    "HUMANEVAL_INSTRUCTION",
    "LCB_SYSTEM_MESSAGE",
    "ProblemBank",
    "drop_returns",
    "humaneval",
    "lcb_prompt",
    "livecodebench",
    "livecodebench_task",
    "release_files",
]

LCB_SYSTEM_MESSAGE = (
    "You are an expert Python programmer. You will be given a question (problem "
    "specification) and will generate a correct Python program that matches the "
    "specification and passes all tests."
)
_LCB_FORMAT_STARTER = (
    "You will use the following starter code to write the solution to the problem and "
    "enclose your code within delimiters."
)
_LCB_FORMAT_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not "
    "directly test on the sample inputs). Enclose your code within delimiters as follows. "
    "Ensure that when the python program runs, it reads the inputs, runs the algorithm and "
    "writes output to STDOUT."
)
HUMANEVAL_INSTRUCTION = (
    "Read the following function signature and docstring, and fully implement the "
    "function described. Your response should only contain the code for this function.\n"
)

_LCB_HUB = "livecodebench/code_generation_lite"
_SHARDS = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl",
           "test6.jsonl")
_FIRST_DAY = "2023-05-01"
#: First day after each release's window (LiveCodeBench README, "Dataset Versions").
_RELEASE_ENDS = ("2024-04-01", "2024-06-01", "2024-08-01", "2024-10-01", "2025-02-01",
                 "2025-05-01")
DEFAULT_RELEASE = "release_v5"
LCB_TIME_LIMIT_S = 6.0  # lcb_runner's --timeout default, per test
HUMANEVAL_TIME_LIMIT_S = 3.0  # human-eval's timeout per completion


def release_files(tag: str) -> tuple[tuple[str, ...], str, str]:
    """The shards and the contest-date window ``[start, end)`` of a release tag.

    Example:
        >>> release_files("v4_v5")
        (('test4.jsonl', 'test5.jsonl'), '2024-08-01', '2025-02-01')

    Raises:
        ConfigError: an unknown tag; the message lists the valid ones.
    """
    name = tag.strip().lower()
    if name in ("release_latest", "latest"):
        name = "release_v6"
    first: int | None = None
    last: int | None = None
    if name.startswith("release_v") and name[9:].isdigit():
        first, last = 1, int(name[9:])
    elif name.startswith("v") and name[1:].isdigit():
        first = last = int(name[1:])
    elif name.startswith("v") and "_v" in name:
        a, _, b = name[1:].partition("_v")
        if a.isdigit() and b.isdigit() and int(a) < int(b):
            first, last = int(a), int(b)
    if first is None or last is None or not 1 <= first <= last <= len(_SHARDS):
        raise ConfigError(
            f"--release {tag!r} is not a LiveCodeBench release. Use release_v1 .. release_v6 "
            "or release_latest (cumulative), v1 .. v6 (only that release's new problems) or "
            "a range such as v4_v5."
        )
    start = _FIRST_DAY if first == 1 else _RELEASE_ENDS[first - 2]
    return _SHARDS[first - 1:last], start, _RELEASE_ENDS[last - 1]


def _date(value: str, option: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"--{option} {value!r} is not a date; use YYYY-MM-DD, e.g. "
                          f"--{option} 2024-08-01.") from None


def lcb_prompt(question: str, starter_code: str) -> str:
    """LiveCodeBench's user message (``get_generic_question_template_answer``)."""
    prompt = f"### Question:\n{question}\n\n"
    if starter_code:
        prompt += f"### Format: {_LCB_FORMAT_STARTER}\n```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {_LCB_FORMAT_STDIN}\n```python\n# YOUR CODE HERE\n```\n\n"
    return prompt + "### Answer: (use the provided format with backticks)\n\n"


#: A private-test field at most this long is decoded when the data loads (a handful of
#: tiny tests, or none: LiveCodeBench's encoded empty list is 28 characters), so the sample
#: can say how many tests it has; longer ones are decoded when the problem is graded.
INLINE_PRIVATE_CHARS = 1024


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    kind: str
    public: str = ""
    private: str | LazyField = ""
    fn_name: str | None = None
    prompt: str = ""
    test: str = ""
    entry_point: str = ""
    solution: str = ""
    decoded_private: tuple[TestCase, ...] | None = None
    name: str = ""


class ProblemBank:
    """The tests of a task's problems, keyed by each sample's ``target``.

    Tests can be large (LiveCodeBench's private tests reach megabytes per problem and
    gigabytes per release), and ``target`` lands in every row of the per-attempt table, so
    a sample's target is a short key (kind, digest, counts) and the tests stay here: the
    public ones as their JSON, the private ones as a ``LazyField`` (a reference to the row
    on disk, see ``evals.data``) or, for a short field, decoded at load.

    Private tests are decoded when a problem is graded, once for all the attempts graded
    while they are held: a problem is held while any of its attempts is being graded (a
    *lease*), then kept among the most recently graded ones while their tests total at
    most ``cache_bytes``, then dropped. The runner asks all repeats of a problem one after
    the other, so their grades fall close together and a problem is decoded once; memory
    holds only the problems being graded plus ``cache_bytes``, whatever the release size.

    Args:
        cache_bytes: how many bytes of decoded tests (inputs and outputs) to keep for
            problems no attempt is grading; ``0`` drops a problem's tests as soon as its last
            grade in progress ends.
    """

    def __init__(self, cache_bytes: int = 64 << 20) -> None:
        self._entries: dict[str, _Entry] = {}
        self._in_use: dict[str, list[Any]] = {}  # key -> [problem, leases]
        self._recent: OrderedDict[str, tuple[CodeProblem, int]] = OrderedDict()
        self._recent_bytes = 0
        self._cache_bytes = cache_bytes
        self._lock = threading.Lock()  # the simulator's thread may share a bank

    def add(self, key: str, entry: _Entry) -> None:
        self._entries[key] = entry

    def entry(self, key: str) -> _Entry | None:
        return self._entries.get(key)

    @property
    def held(self) -> tuple[str, ...]:
        """The targets whose decoded tests are in memory now (graded, or kept)."""
        with self._lock:
            return (*self._in_use, *self._recent)

    @contextmanager
    def lease(self, key: str) -> Iterator[CodeProblem | None]:
        """The decoded problem behind a target for the duration of a ``with`` block
        (``None`` if it was never loaded); it is decoded now unless it is held already.

        Raises:
            DataError: the private tests cannot be read back or decoded.
        """
        problem = self._checkout(key)
        try:
            yield problem
        finally:
            if problem is not None:
                self._checkin(key)

    def problem(self, key: str) -> CodeProblem | None:
        """The decoded problem behind a target, or ``None`` if it was never loaded. It is
        kept only as ``cache_bytes`` allows; hold it with ``lease`` while it is in use."""
        with self.lease(key) as problem:
            return problem

    def _checkout(self, key: str) -> CodeProblem | None:
        with self._lock:
            held = self._in_use.get(key)
            if held is not None:
                held[1] += 1
                return held[0]  # type: ignore[no-any-return]
            if key in self._recent:
                problem, size = self._recent.pop(key)
                self._recent_bytes -= size
            else:
                entry = self._entries.get(key)
                if entry is None:
                    return None
                problem = _decode(entry)
            self._in_use[key] = [problem, 1]
            return problem

    def _checkin(self, key: str) -> None:
        with self._lock:
            held = self._in_use[key]
            held[1] -= 1
            if held[1]:
                return
            del self._in_use[key]
            problem: CodeProblem = held[0]
            size = sum(len(t.input) + len(t.output) for t in problem.tests)
            if size > self._cache_bytes:
                return
            self._recent[key] = (problem, size)
            self._recent_bytes += size
            while self._recent_bytes > self._cache_bytes:
                _, (_, dropped) = self._recent.popitem(last=False)
                self._recent_bytes -= dropped


def _decode(entry: _Entry) -> CodeProblem:
    """An entry's tests, the private ones read back and decoded now if they were not."""
    if entry.kind == "humaneval":
        return CodeProblem("humaneval", time_limit_s=HUMANEVAL_TIME_LIMIT_S)
    private = entry.decoded_private
    if private is None:
        field = entry.private
        raw = field.load() if isinstance(field, LazyField) else field
        private = tuple(decode_private_tests(str(raw or ""),
                                             where=f"{entry.name} private tests"))
    return CodeProblem("functional" if entry.fn_name else "stdin",
                       (*parse_public_tests(entry.public), *private),
                       fn_name=entry.fn_name, time_limit_s=LCB_TIME_LIMIT_S)


def _missing(sample: Sample) -> Grade:
    return Grade(None, None, "tests not loaded",
                 {"error": f"no tests for target {sample.target!r}: this sample was not "
                           "loaded through this task's to_sample"})


# -- LiveCodeBench ---------------------------------------------------------------------


def _lcb_sample(bank: ProblemBank) -> Callable[[Mapping[str, Any], int], Sample]:
    def to_sample(row: Mapping[str, Any], index: int) -> Sample:
        qid = str(row["question_id"])
        public = str(row.get("public_test_cases") or "")
        field = row.get("private_test_cases") or ""
        meta_raw = row.get("metadata") or "{}"
        meta = json.loads(meta_raw) if isinstance(meta_raw, str) else dict(meta_raw)
        fn_name = meta.get("func_name") or None
        n_public = len(parse_public_tests(public, where=f"{qid} public tests"))
        kind = "functional" if fn_name else "stdin"
        decoded: tuple[TestCase, ...] | None = None
        private: str | LazyField
        if isinstance(field, LazyField):
            private = field
            held = f"sha256:{field.digest}"
        else:
            private = held = str(field)
            if len(private) <= INLINE_PRIVATE_CHARS:
                decoded = tuple(decode_private_tests(private, where=f"{qid} private tests"))
        digest = hashlib.sha256(f"{kind}\0{fn_name}\0{public}\0{held}".encode()).hexdigest()
        if decoded is not None:
            if n_public + len(decoded) == 0:
                raise ValueError(f"problem {qid} has no test cases")
            tests: int | None = n_public + len(decoded)
            counts = f"{n_public} public + {len(decoded)} private"
        else:  # decoded when graded: the grade's details give the count
            tests = None
            size = field.size if isinstance(field, LazyField) else len(str(field))
            counts = f"{n_public} public + private tests of {size} bytes encoded"
        target = f"{kind} tests sha256:{digest[:16]} ({counts})"
        bank.add(target, _Entry(kind, public=public, private=private, fn_name=fn_name,
                                decoded_private=decoded, name=qid))
        contest_date = str(row["contest_date"])
        datetime.fromisoformat(contest_date.strip())  # a malformed date fails at load
        return Sample(
            id=qid,
            messages=(("system", LCB_SYSTEM_MESSAGE),
                      ("user", lcb_prompt(str(row["question_content"]),
                                          str(row.get("starter_code") or "")))),
            target=target,
            metadata=(("platform", str(row.get("platform", ""))),
                      ("difficulty", str(row.get("difficulty", ""))),
                      ("contest_date", contest_date),
                      ("contest_id", str(row.get("contest_id", ""))),
                      ("title", str(row.get("question_title", ""))),
                      ("kind", kind), ("tests", tests)),
        )

    return to_sample


def _code_grader(bank: ProblemBank, humaneval_entry: bool = False) -> Grader:
    async def grade(answer: str, sample: Sample) -> Grade:
        entry = bank.entry(sample.target)
        if entry is None:
            return _missing(sample)
        code, how = extract_code(answer)
        program = code
        if code is not None and humaneval_entry:
            program = (humaneval_program(entry.prompt, code, entry.entry_point)
                       + f"\n{entry.test}\n\ncheck({entry.entry_point})\n")
        # The tests are held while this grade runs (shared with the problem's other
        # grades in progress), then released: see ProblemBank.
        with bank.lease(sample.target) as problem:
            if problem is None:
                return _missing(sample)
            return await grade_program(program, problem, extracted=code, how=how)

    return grade


def _window_filter(start: datetime, end: datetime) -> Callable[[Sample], bool]:
    def keep(sample: Sample) -> bool:
        date = datetime.fromisoformat(str(dict(sample.metadata)["contest_date"]))
        return start <= date < end

    return keep


def _lcb_task(bank: ProblemBank, options: Mapping[str, str]) -> Task:
    release = options.get("release") or DEFAULT_RELEASE
    files, first, end = release_files(release)
    start, stop = _date(first, "release"), _date(end, "release")
    if options.get("since"):
        start = max(start, _date(options["since"], "since"))
    if options.get("until"):
        until = _date(options["until"], "until")
        if len(options["until"].strip()) == 10:  # a day: include all of it
            until += timedelta(days=1)
        stop = min(stop, until)
    if start >= stop:
        raise ConfigError(f"The contest-date window {start.date()} .. {stop.date()} of "
                          f"livecodebench (release {release}) is empty; check --since and "
                          "--until.")
    window = f"{start.date()} <= contest date < {stop.isoformat(sep=' ')}"
    return Task(
        name="livecodebench",
        dataset=DatasetSpec(_LCB_HUB, split="test", data_files=files),
        to_sample=_lcb_sample(bank),
        grader=_code_grader(bank),
        n=3,
        subsets=("difficulty", "platform"),
        description=f"LiveCodeBench code generation, {release} ({window})",
        answer_writer=_lcb_writer(bank),
        pass_k=True,
        needs_sandbox=True,
        keep=_window_filter(start, stop),
        options=("release", "since", "until"),
        configure=lambda given: _lcb_task(bank, given),
        lazy_fields=("private_test_cases",),
    )


def livecodebench_task(bank: ProblemBank, options: Mapping[str, str] | None = None) -> Task:
    """The ``livecodebench`` task with its tests in ``bank`` (e.g. a bank with another
    ``cache_bytes``), configured by ``options`` (``release``, ``since``, ``until``)."""
    return _lcb_task(bank, options or {})


@task("livecodebench")
def livecodebench() -> Task:
    """LiveCodeBench code generation (release_v5 by default), run in the sandbox, pass@k."""
    return _lcb_task(ProblemBank(), {})


# -- HumanEval ------------------------------------------------------------------------


def _humaneval_sample(bank: ProblemBank) -> Callable[[Mapping[str, Any], int], Sample]:
    def to_sample(row: Mapping[str, Any], index: int) -> Sample:
        task_id, prompt = str(row["task_id"]), str(row["prompt"])
        test, entry_point = str(row["test"]), str(row["entry_point"])
        digest = hashlib.sha256(f"{prompt}\0{test}\0{entry_point}".encode()).hexdigest()
        target = f"check({entry_point}) sha256:{digest[:16]}"
        bank.add(target, _Entry("humaneval", prompt=prompt, test=test, entry_point=entry_point,
                                solution=str(row.get("canonical_solution") or "")))
        return Sample(id=task_id, messages=(("user", HUMANEVAL_INSTRUCTION + prompt),),
                      target=target, metadata=(("entry_point", entry_point),))

    return to_sample


@task("humaneval")
def humaneval() -> Task:
    """HumanEval (164 Python functions), graded by each problem's check(), pass@k."""
    bank = ProblemBank()
    return Task(
        name="humaneval",
        dataset=DatasetSpec("openai/openai_humaneval", split="test"),
        to_sample=_humaneval_sample(bank),
        grader=_code_grader(bank, humaneval_entry=True),
        n=5,
        description="HumanEval",
        answer_writer=_humaneval_writer(bank),
        pass_k=True,
        needs_sandbox=True,
    )


# -- the simulated model's answers ----------------------------------------------------

_THOUGHTS = (
    "Let me restate the problem and look at the constraints first. ",
    ("The constraints are small enough for a direct approach, but let me check the edge "
     "cases: empty input, a single element, the largest values. "),
    "I'll trace the first example by hand to make sure I understand the format. ",
    "Wait, I should double-check the output format: one value per line. ",
    "A sort followed by a linear scan should be enough here. ",
)
_INTROS = ("Here is my solution.", "Here's the implementation:", "Final code:",
           "Putting it together:", "The complete program:")
_OUTROS = ("", "\n\nThis runs in O(n log n) time.", "\n\nIt handles the edge cases above.",
           "\n\nTime complexity is linear in the input size.")


def _reasoning(rng: random.Random, correct: bool) -> str:
    steps = rng.sample(_THOUGHTS, k=3)
    if not correct:
        steps.append("I think this covers everything, though I'm not fully sure about "
                     "the boundary case. ")
    return "".join(steps).strip()


def _respond(code: str, rng: random.Random, correct: bool) -> tuple[str, str]:
    fence = rng.choice(("python", "python", "python", "py", "Python3"))
    parts = []
    if rng.random() < 0.3:  # an earlier sketch: graders must take the last block
        parts.append("A first brute-force sketch:\n\n```python\n# brute force, too slow\n"
                     "pass\n```\n\nThat is too slow, so let me refine it.\n\n")
    parts.append(f"{rng.choice(_INTROS)}\n\n```{fence}\n{code.rstrip()}\n```")
    parts.append(rng.choice(_OUTROS))
    return _reasoning(rng, correct), "".join(parts)


def _lcb_writer(bank: ProblemBank) -> Callable[[Sample, bool, random.Random, str],
                                               tuple[str, str]]:
    def write(sample: Sample, correct: bool, rng: random.Random, prompt: str
              ) -> tuple[str, str]:
        with bank.lease(sample.target) as problem:
            if problem is None:
                return "I do not know these tests.", "```python\nprint()\n```"
            crash = not correct and rng.random() < 0.4
            if problem.kind == "functional":
                code = _lookup_method(problem.tests, problem.fn_name or "solve", correct,
                                      crash)
            else:
                code = _lookup_program(problem.tests, correct, crash)
        return _respond(code, rng, correct)

    return write


def _lookup_program(tests: tuple[TestCase, ...], correct: bool, crash: bool) -> str:
    """A stdin program answering exactly the known tests (a simulated model, not a
    solution): right, wrong (an extra digit on the last line) or crashing."""
    table = {t.input: t.output if correct else t.output.rstrip("\n") + "0\n" for t in tests}
    lines = ["import sys", "", f"ANSWERS = {table!r}", "", "", "def main():",
             "    data = sys.stdin.read()"]
    if crash:
        lines += ["    values = data.split()", "    print(values[len(values)])"]
    else:
        lines += ["    sys.stdout.write(ANSWERS.get(data, ''))"]
    return "\n".join([*lines, "", "", "main()"])


def _lookup_method(tests: tuple[TestCase, ...], fn_name: str, correct: bool,
                   crash: bool) -> str:
    """A LeetCode class whose method answers exactly the known tests: right, wrong (the
    answer wrapped in a list) or crashing."""
    table = {}
    for t in tests:
        key = json.dumps([json.loads(line) for line in t.input.split("\n")])
        table[key] = t.output if correct else json.dumps([json.loads(t.output)])
    body = ("        return self.helper(*args)" if crash
            else "        return json.loads(ANSWERS[json.dumps(list(args))])")
    return "\n".join(["import json", "", f"ANSWERS = {table!r}", "", "",
                      "class Solution:", f"    def {fn_name}(self, *args):", body])


def _humaneval_writer(bank: ProblemBank) -> Callable[[Sample, bool, random.Random, str],
                                                     tuple[str, str]]:
    def write(sample: Sample, correct: bool, rng: random.Random, prompt: str
              ) -> tuple[str, str]:
        entry = bank.entry(sample.target)
        if entry is None:
            return "I do not know this function.", "```python\npass\n```"
        code = entry.prompt + entry.solution
        if not correct:
            # Always wrong, so simulated scores track the configured accuracy.
            mutated = None if rng.random() < 0.4 else drop_returns(
                entry.prompt, entry.solution, entry.entry_point)
            code = mutated or _crashing(entry.prompt, entry.solution)
        return _respond(code, rng, correct)

    return write


def _crashing(prompt: str, solution: str) -> str:
    return prompt + "    _validate_arguments()\n" + solution


class _DropReturns(ast.NodeTransformer):
    """``return value`` -> ``return`` everywhere except in nested functions."""

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node  # nested helpers keep their returns

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        node.value = None
        return node


def drop_returns(prompt: str, solution: str, entry_point: str) -> str | None:
    """The whole function (prompt + solution) with a forgotten return: every ``return
    value`` in the body of ``entry_point`` loses its value. That always fails HumanEval's
    checks and never loops (a single flipped operator survives the tests of 15 of the 164
    problems, so the simulator's wrong answers would not stay wrong).

    Returns:
        The mutated source, or ``None`` when the function does not parse or returns no
        value to drop.
    """
    source = prompt + solution
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    target = next((n for n in tree.body
                   if isinstance(n, ast.FunctionDef) and n.name == entry_point), None)
    if target is None:
        return None
    has_doc = (bool(target.body) and isinstance(target.body[0], ast.Expr)
               and isinstance(target.body[0].value, ast.Constant))
    body = target.body[1:] if has_doc else target.body
    if not any(isinstance(n, ast.Return) and n.value is not None
               for stmt in body for n in ast.walk(stmt)):
        return None
    dropper = _DropReturns()
    for stmt in body:
        dropper.visit(stmt)
    return ast.unparse(tree)
