"""Code grading: extract the program, run it against the tests in the sandbox, say why.

One attempt is graded by ONE sandboxed process (``python runner.py``, the script in
``evals/grading/_runner.py``) that runs every test of the attempt, each in a fresh child process,
and stops at the first failure. The children are forked by a *zygote*: a process the
runner forks first thing, which imports what programs import and then forks one child
per test, so a test starts in about a millisecond rather than an interpreter's start-up.
Three kinds of problems:

* ``stdin`` (LiveCodeBench AtCoder/Codeforces): the program reads the test input on
  standard input; its standard output is compared as LiveCodeBench's reference grader
  does (``compare_stdout``): strip the whole output, split on newlines, strip each line;
  the line counts must match, and a line that differs passes only if its
  whitespace-separated tokens are equal as exact ``decimal.Decimal`` values. So ``1.0``
  equals ``1`` but ``0.3333`` does not equal ``0.33333``: there is no float tolerance.
  ``SystemExit`` ends a program normally, as in the reference (which catches it).
* ``functional`` (LiveCodeBench LeetCode): ``Solution().<func_name>(*args)`` with one
  JSON value per input line as the arguments; a returned tuple becomes a list (only at
  the top, as in the reference) and the result must equal the JSON-decoded expected
  output under Python's ``==`` (so ``True == 1`` and ``2.0 == 2``, as in the reference,
  but a nested tuple, a set or any other object never equals a JSON list).
* ``humaneval``: the program (prompt + completion + ``test`` + ``check(entry_point)``)
  must run to the end without an exception.

LiveCodeBench programs run after the reference's import preamble (``from math import *``,
``collections``, ``typing``'s ``List`` ..., ``sys.setrecursionlimit(50000)``), executed
separately so tracebacks keep the program's own line numbers.

Threat model. The program is hostile: it may read any file it can see, close or
redirect its descriptors, kill its parent, fork, flood its output or loop forever. The
sandbox (``evals.sandbox``) keeps it away from the host; this module keeps it from
*forging a pass*:

* the expected outputs are never in the program's process or file system: the zygote is
  forked before the runner reads the nonce or ``tests.json`` (so no copy of either is in
  its memory or its children's), the runner deletes ``tests.json`` once read, and a child
  receives only its own test's input;
* the runner makes itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so a child
  (same uid) can neither ``ptrace`` it nor read ``/proc/<runner>/mem`` or its
  descriptors under ``/proc/<runner>/fd``; the zygote holds nothing secret;
* children get fresh pipes and nothing else (every other descriptor closed; the zygote's
  own standard streams are ``/dev/null``): the runner's own stdout, which carries the
  verdict, is out of their reach; the comparison happens in the runner. A program that
  kills the zygote fails its test ("killed its parent, the test harness");
* the runner reports on its stdout in lines that start with a random nonce it read from
  (and drained out of) stdin before any child existed; the grader ignores every other
  line, so output written by a program cannot pass for a verdict. A runner that dies
  during test k (killed by the program) is a failure of that test, never a pass; a
  runner that dies before any test is "could not grade";
* the runner is a child subreaper and, after every test, kills every descendant left
  (daemons included) so nothing from one test runs during the next;
* per-test output is capped (an output flood is a wrong answer, not a harness failure).

Not defended: inside its own process a program can tamper with the bootstrap that runs
it (e.g. a HumanEval program whose asserts live in the same process, exactly as in
``openai/human-eval``). Its only reachable channel is its own answer.

Time limits. The verdict uses each test's CPU time (``wait4`` rusage, taken by the zygote) against ``time_limit_s`` x ``calibration_factor()``, which times a fixed
CPU-bound loop once per process against ``REFERENCE_LOOP_S`` (this harness's reference
machine) and clamps the ratio to [1, 4]: a slow machine gets proportionally more time,
a fast one never less than the reference limit. CPU time does not grow when the machine
is busy; a wall limit of ``2 x limit + 1`` s only stops programs that sleep or block.
An attempt that failed only by time is rerun once; the grade records the limit used
(``details["time_limit_s"]``), the factor (``details["calibration"]``) and the rerun.
With ``--executor ray`` the limit is still computed here, with this machine's factor, and
travels with the attempt to whichever Ray worker runs it (``evals.grading.ray_executor``).
"""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from evals.grading import _runner
from evals.grading.lcb import TestCase
from evals.records import Grade

__all__ = [
    "CALIBRATION_BOUNDS",
    "LCB_PREAMBLE",
    "REFERENCE_LOOP_S",
    "CodeProblem",
    "calibration_factor",
    "compare_stdout",
    "extract_code",
    "grade_program",
    "humaneval_program",
    "run_program",
    "runner_source",
]

Kind = Literal["stdin", "functional", "humaneval"]

#: CPU seconds the calibration loop takes on the reference machine (an AMD EPYC server
#: core, CPython 3.11); the factor is measured / reference, clamped to the bounds.
REFERENCE_LOOP_S = 0.09
CALIBRATION_BOUNDS = (1.0, 4.0)
_CALIBRATION_ROUNDS = 16
_CALIBRATION_STEPS = 62_500

#: LiveCodeBench's import preamble (``import_string`` of ``lcb_runner/evaluation/
#: testing_util.py``), run before every LiveCodeBench program.
LCB_PREAMBLE = (
    "from string import *\nfrom re import *\nfrom datetime import *\n"
    "from collections import *\nfrom heapq import *\nfrom bisect import *\n"
    "from copy import *\nfrom math import *\nfrom random import *\n"
    "from statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\nimport string\nimport re\n"
    "import datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\n"
    "import math\nimport random\nimport statistics\nimport itertools\nimport functools\n"
    "import operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)

_STDERR_TAIL = 4000

@functools.cache
def runner_source() -> str:
    """The script that runs in the sandbox (``evals/grading/_runner.py``, shipped as source
    and copied into each sandbox; it needs nothing but the standard library). Read on the
    first grade, not when the task plugins load."""
    return Path(_runner.__file__).read_text(encoding="utf-8")


#: ``compare_stdout(got, expected) -> None | str``: ``None`` when the program's output
#: ``got`` matches the gold ``expected`` under LiveCodeBench's rule, else what differs.
#: The rule is symmetric. The same function runs inside the sandbox.
compare_stdout = cast(Callable[[str, str], "str | None"], _runner.compare_stdout)


# -- extraction --------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,})\s*([^\s`]*)[^`]*$")
_PYTHON_TAGS = frozenset({"python", "py", "python3", "py3", "python2", "pycon", "python3.11"})


def extract_code(text: str) -> tuple[str | None, str]:
    """The program in a response: the last fenced code block, Python blocks preferred.

    A block tagged ``python``/``py``/``Python3`` (any case) wins over untagged blocks;
    among those, the last one. A fence left open at the end (a truncated response) closes
    at the end of the text. Blocks tagged with another language are ignored, as are empty
    blocks.

    Returns:
        ``(code, how)``: ``how`` is ``"python block"``, ``"untagged block"`` (either may
        end in ``", unclosed"``) or, with ``code`` ``None``, ``"no code block"``.

    Example:
        >>> extract_code("Idea...\\n```python\\nprint(1)\\n```\\nDone.")
        ('print(1)', 'python block')
    """
    tagged: list[tuple[str, bool]] = []
    untagged: list[tuple[str, bool]] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        ticks, tag = match.group(1), match.group(2).lower()
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(ticks) and not stripped.strip("`"):
                closed = True
                break
            body.append(lines[i])
            i += 1
        i += 1
        code = "\n".join(body).strip("\n")
        if not code.strip():
            continue
        if tag in _PYTHON_TAGS:
            tagged.append((code, closed))
        elif not tag:
            untagged.append((code, closed))
    for found, how in ((tagged, "python block"), (untagged, "untagged block")):
        if found:
            code, closed = found[-1]
            return code, how if closed else f"{how}, unclosed"
    return None, "no code block"


# -- programs ------------------------------------------------------------------------------


def humaneval_program(prompt: str, code: str, entry_point: str) -> str:
    """The HumanEval program body (prompt + completion) for an extracted ``code``.

    When ``code`` defines ``entry_point`` itself (chat models usually repeat the whole
    function), it is appended after the prompt: the prompt's imports and helper
    functions stay available, and its stub of the entry point (a function whose body is
    its docstring) is replaced by the model's definition. Otherwise ``code`` is taken as
    the function's body, indented under the prompt's signature if it is not already.
    The caller appends the dataset's ``test`` and ``check(entry_point)``.
    """
    prompt = prompt.rstrip() + "\n"
    if _defines(code, entry_point):
        return f"{prompt}\n\n{code}\n"
    lines = code.split("\n")
    first = next((ln for ln in lines if ln.strip()), "")
    if first and not first[0].isspace():
        lines = [("    " + ln) if ln.strip() else ln for ln in lines]
    return prompt + "\n".join(lines) + "\n"


def _defines(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return f"def {name}(" in code
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name
               for node in tree.body)


@dataclass(frozen=True, slots=True)
class CodeProblem:
    """What a code problem is graded against.

    Attributes:
        kind: ``"stdin"``, ``"functional"`` or ``"humaneval"``.
        tests: the tests (public first, then private); for ``humaneval`` none (the
            program carries its own ``check``).
        fn_name: the method of ``Solution`` to call (``functional``).
        time_limit_s: CPU seconds per test before calibration (LiveCodeBench's runner uses
            6, HumanEval's 3).
        memory_mb: address space per process.
    """

    kind: Kind
    tests: tuple[TestCase, ...] = ()
    fn_name: str | None = None
    time_limit_s: float = 6.0
    memory_mb: int = 2048


@functools.cache
def calibration_factor() -> float:
    """How much slower this machine runs Python than the reference, clamped to [1, 4].

    Times a fixed integer loop (1,000,000 steps in 16 rounds) in CPU time and keeps the
    fastest round, scaled to the whole loop, over ``REFERENCE_LOOP_S``. CPU time and the
    fastest of many short rounds both damp a busy machine (on a shared VM, CPU time
    itself inflates by up to about 1.6x under contention); what remains is handled by
    rerunning attempts that failed only by time. Measured once per process (~0.1 s).
    """
    best = math.inf
    for _ in range(_CALIBRATION_ROUNDS):
        started = time.process_time()
        acc = 0
        for i in range(_CALIBRATION_STEPS):
            acc = (acc + i * i) % 1000003
        best = min(best, time.process_time() - started)
    best *= 1_000_000 / _CALIBRATION_STEPS
    low, high = CALIBRATION_BOUNDS
    return round(min(high, max(low, best / REFERENCE_LOOP_S)), 3)


async def run_program(program: str, problem: CodeProblem, *, limit_s: float,
                      executor: Any | None = None) -> dict[str, Any]:
    """Run ``program`` on every test of ``problem`` in one sandboxed process.

    Args:
        program: the whole program (for HumanEval, with its ``check`` call).
        problem: the tests and settings.
        limit_s: CPU seconds per test (already calibrated).
        executor: an ``evals.sandbox.Executor`` (local, or a ``RayExecutor``); ``None``:
            the run's (``current_context().executor()``).

    Returns:
        The runner's verdict record (``verdict``, ``test``, ``passed``, ``cpu_s``, ...),
        or one with ``verdict`` ``"harness error"`` when the runner said nothing usable.
    """
    from evals.sandbox import Limits

    if executor is None:
        from evals.grading.context import current_context

        executor = current_context().executor()
    tests = [{"input": t.input, "output": t.output} for t in problem.tests]
    if problem.kind == "humaneval":
        tests = [{"input": "", "output": ""}]
    count = len(tests)
    overall = (limit_s + 1) * count + 5
    spec = {"mode": problem.kind, "tests": tests, "limit": limit_s, "overall": overall,
            "fn_name": problem.fn_name}
    payload = json.dumps(spec).encode()
    files = {"runner.py": runner_source().encode(), "tests.json": payload,
             "solution.py": program.encode("utf-8", "surrogatepass"),
             "preamble.py": LCB_PREAMBLE.encode()}
    nonce = secrets.token_hex(16)
    limits = Limits(wall_s=overall + 2 * limit_s + 10, cpu_s=overall + 2 * limit_s + 10,
                    memory_mb=problem.memory_mb, disk_mb=64 + 2 * (len(payload) >> 20),
                    output_bytes=1 << 20)
    result = await executor.run(["python", "-I", "-S", "runner.py"], files=files,
                                stdin=(nonce + "\n").encode(), limits=limits)
    return _read_verdict(result, nonce, count)


def _read_verdict(result: Any, nonce: str, count: int) -> dict[str, Any]:
    prefix = nonce + " "
    last_start: int | None = None
    final: dict[str, Any] | None = None
    for raw in result.stdout.decode("utf-8", "replace").split("\n"):
        if not raw.startswith(prefix):
            continue
        try:
            record = json.loads(raw[len(prefix):])
        except ValueError:
            continue
        if "start" in record:
            last_start = int(record["start"])
        elif record.get("done"):
            final = record
    if final is not None:
        final["total"] = count
        return final
    tail = result.stderr.decode("utf-8", "replace")[-_STDERR_TAIL:]
    if last_start is not None:
        # The runner died while the program ran: the program's doing (it killed its
        # parent, or took the whole sandbox past its limits).
        verdict = "time limit" if result.timed_out else "runtime error"
        return {"verdict": verdict, "test": last_start, "passed": last_start - 1,
                "total": count, "limit_kind": "overall" if result.timed_out else None,
                "error": f"the test runner was killed during test {last_start} "
                         f"({result.killed or 'exit ' + str(result.returncode)})"}
    return {"verdict": "harness error", "total": count,
            "error": f"runner said nothing (exit {result.returncode}, "
                     f"{result.killed or 'no kill'}): {tail}"}


_REASON_VERDICTS = ("wrong answer", "runtime error", "memory limit")


async def grade_program(program: str | None, problem: CodeProblem, *, extracted: str | None,
                        how: str, executor: Any | None = None) -> Grade:
    """Grade one extracted program against ``problem``; see the module docstring.

    Args:
        program: what runs (``None`` when no code was found).
        problem: tests and limits.
        extracted: the code found in the response (``Grade.extracted``).
        how: how it was found (``extract_code``'s second value).
        executor: the sandbox (``None``: the run's).

    Returns:
        ``Grade(correct=True, reason="passed 3/3")``, or a failure whose reason names the
        first failing test ("wrong answer on test 2", "time limit on test 1 (6.0 s)") with
        the expected and actual output, traceback tail and limits in ``details``; a
        runner that could not run at all gives ``correct=None`` (not scored).
    """
    factor = calibration_factor()
    limit = round(problem.time_limit_s * factor, 3)
    total = 1 if problem.kind == "humaneval" else len(problem.tests)
    details: dict[str, Any] = {"kind": problem.kind, "tests": total, "extraction": how,
                               "time_limit_s": limit, "calibration": factor}
    if program is None:
        return Grade(None, False, "no code block", {**details, "verdict": "no code block"})
    if total == 0:
        return Grade(extracted, None, "no tests", details)
    verdict = await run_program(program, problem, limit_s=limit, executor=executor)
    if verdict["verdict"] == "time limit":
        details["first_try"] = _brief(verdict)
        verdict = await run_program(program, problem, limit_s=limit, executor=executor)
        details["rerun"] = True
    return _to_grade(verdict, extracted, details, limit)


def _brief(verdict: dict[str, Any]) -> dict[str, Any]:
    return {k: verdict.get(k) for k in ("verdict", "test", "limit_kind", "cpu_s", "wall_s")
            if verdict.get(k) is not None}


def _to_grade(verdict: dict[str, Any], extracted: str | None, details: dict[str, Any],
              limit: float) -> Grade:
    kind = verdict["verdict"]
    details.update({k: v for k, v in verdict.items()
                    if k not in ("done", "total") and v is not None})
    total = details["tests"]
    if kind == "passed":
        return Grade(extracted, True, f"passed {total}/{total}", details)
    if kind == "harness error":
        return Grade(extracted, None, "could not run the tests", details)
    if kind == "syntax error":
        return Grade(extracted, False, "syntax error", details)
    test = verdict.get("test")
    if kind == "time limit":
        where = "overall" if verdict.get("limit_kind") == "overall" else f"on test {test}"
        return Grade(extracted, False, f"time limit {where} ({limit:.1f} s)", details)
    if kind in _REASON_VERDICTS:
        return Grade(extracted, False, f"{kind} on test {test}", details)
    return Grade(extracted, None, f"unknown verdict {kind!r}", details)
