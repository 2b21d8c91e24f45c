"""Code grading: extraction, LiveCodeBench's comparison rule, and real runs in the sandbox.

Programs run through the real bubblewrap executor (``evals.sandbox``). LiveCodeBench rows
come from livecodebench/ (60 real problems with rebuilt public tests) and HumanEval from
humaneval/ (the original 164 problems) of the test data (``benchmark_path`` in conftest).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import benchmark_path, require_sandbox

from evals.data import load_task_data
from evals.errors import ConfigError, DataError
from evals.grading.code import (
    CodeProblem,
    calibration_factor,
    compare_stdout,
    extract_code,
    grade_program,
    humaneval_program,
)
from evals.grading.context import GradingContext
from evals.grading.lcb import TestCase as Case
from evals.records import Grade, Sample
from evals.registry import Registry, Task

LCB_SAMPLE = "livecodebench/code_generation_lite_sample.jsonl"  # via benchmark_path
HUMANEVAL = "humaneval/HumanEval.jsonl"
SOLUTIONS = Path(__file__).parent / "cases" / "lcb_solutions.jsonl"

T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    require_sandbox(coro)

    async def main() -> T:
        async with GradingContext():
            return await coro

    return asyncio.run(main())


def gather(coros: list[Awaitable[T]]) -> list[T]:
    require_sandbox(*coros)
    async def all_of() -> list[T]:
        return list(await asyncio.gather(*coros))

    return run(all_of())


def fenced(code: str) -> str:
    return f"Reasoning done.\n\n```python\n{code}\n```\n"


# -- extraction ---------------------------------------------------------------------------

EXTRACT_CASES = [
    # (id, text, code, how); provenance: shapes seen in reasoning-model answers to LCB.
    ("last-python-block", "```python\nx = 1\n```\ntext\n```python\nx = 2\n```", "x = 2",
     "python block"),
    ("python-beats-later-untagged", "```python\nx = 1\n```\n```\nsample output\n```",
     "x = 1", "python block"),
    ("untagged-only", "Answer:\n```\nprint(3)\n```", "print(3)", "untagged block"),
    ("py-tag", "```py\nprint(4)\n```", "print(4)", "python block"),
    ("Python3-tag", "```Python3\nprint(5)\n```", "print(5)", "python block"),
    ("unclosed-final-fence", "```python\nprint(6)\nprint(7)", "print(6)\nprint(7)",
     "python block, unclosed"),
    ("other-language-ignored", "```cpp\nint main(){}\n```", None, "no code block"),
    ("empty-block-ignored", "```python\n```\n```python\nprint(8)\n```", "print(8)",
     "python block"),
    ("no-fence", "The answer is print(9).", None, "no code block"),
    ("four-backtick-fence", "````python\ns = '```'\n````", "s = '```'", "python block"),
    ("indented-fence", "1. Code:\n   ```python\n   print(1)\n   ```", "   print(1)",
     "python block"),
]


@pytest.mark.parametrize(("text", "code", "how"), [c[1:] for c in EXTRACT_CASES],
                         ids=[c[0] for c in EXTRACT_CASES])
def test_extract_code(text, code, how):
    assert extract_code(text) == (code, how)


# -- LiveCodeBench's comparison rule --------------------------------------------------------

COMPARE_CASES = [
    # (id, got, expected, equal); provenance: lcb_runner/evaluation/testing_util.py rules.
    ("identical", "3\n", "3\n", True),
    ("1.0-equals-1", "1.0\n", "1\n", True),
    ("no-float-tolerance", "0.3333\n", "0.33333\n", False),
    ("exponent-is-exact-decimal", "1e3\n", "1000\n", True),
    ("trailing-spaces-and-blank-lines", "1 2  \n\n\n", "1 2\n", True),
    ("leading-blank-lines", "\n\n5\n", "5", True),
    ("crlf", "Yes\r\nNo\r\n", "Yes\nNo\n", True),
    ("inner-spacing-numeric", "1   2", "1 2", True),
    ("inner-spacing-text-differs", "a   b", "a b", False),  # not decimals: exact only
    ("case-matters", "yes\n", "Yes\n", False),
    ("line-count-mismatch", "1\n2\n", "1 2\n", False),
    ("missing-line", "1\n", "1\n2\n", False),
    ("token-count-mismatch", "1 2 3", "1 2", False),
    ("large-integers-exact", "50000000000000000\n", "50000000000000001\n", False),
    ("nan-never-equal", "nan\n", "nan\n", True),  # identical strings pass before Decimal
    ("nan-vs-NaN", "nan\n", "NaN\n", False),
    ("empty-output", "", "0\n", False),
    ("both-empty", "", "\n", True),
]


@pytest.mark.parametrize(("got", "expected", "equal"), [c[1:] for c in COMPARE_CASES],
                         ids=[c[0] for c in COMPARE_CASES])
def test_compare_stdout(got, expected, equal):
    assert (compare_stdout(got, expected) is None) is equal


def test_decimal_rule_holds_inside_the_sandbox():
    problem = CodeProblem("stdin", (Case("", "1\n0.33333\n", "stdin"),), time_limit_s=2)
    ok, bad = gather([
        grade_program("print('1.0')\nprint('0.333330')", problem, extracted="", how=""),
        grade_program("print('1.0')\nprint('0.3333')", problem, extracted="", how=""),
    ])
    assert ok.correct is True and ok.reason == "passed 1/1"
    assert bad.correct is False and bad.reason == "wrong answer on test 1"
    assert "line 2" in bad.details["detail"] and bad.details["expected"] == "1\n0.33333\n"


# -- LiveCodeBench problems: our own solutions and broken variants ---------------------------


def _solutions() -> list[dict[str, str]]:
    return [json.loads(line) for line in SOLUTIONS.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def lcb() -> tuple[Task, dict[str, Sample]]:
    task = Registry().get("livecodebench")
    samples = {s.id: s for s in load_task_data(task, benchmark_path(LCB_SAMPLE)).samples}
    return task, samples


@pytest.fixture(scope="module")
def solution_grades(lcb) -> dict[str, Grade]:
    task, samples = lcb
    rows = _solutions()
    grades = gather([task.grader(fenced(r["code"]), samples[r["question_id"]]) for r in rows])
    return {r["question_id"]: g for r, g in zip(rows, grades)}


def test_the_solution_table_covers_both_kinds():
    kinds = [r["kind"] for r in _solutions()]
    assert kinds.count("stdin") >= 10 and kinds.count("functional") >= 10


@pytest.mark.parametrize("qid", [r["question_id"] for r in _solutions()])
def test_a_real_solution_passes(solution_grades, lcb, qid):
    grade = solution_grades[qid]
    tests = dict(lcb[1][qid].metadata)["tests"]
    assert grade.correct is True, grade.details
    assert grade.reason == f"passed {tests}/{tests}"
    assert grade.details["time_limit_s"] >= 6.0 and grade.details["calibration"] >= 1.0
    assert len(grade.details["cpu_s"]) == tests


def _variant(qid: str, how: str) -> str:
    code = next(r["code"] for r in _solutions() if r["question_id"] == qid)
    if how == "crash":
        return code.replace("print(", "print(undefined_name, ", 1) if qid.startswith("abc") \
            else code.replace("        ", "        1 / 0\n        ", 1)
    # wrong: an off-by-one in what is printed or returned
    if qid.startswith("abc"):
        return code.replace("print(", "print(1 + ", 1)
    return re.sub(r"return (.+)", r"return (\1, 0)", code, count=1)


VARIANTS = [
    ("abc310_a", "wrong", "wrong answer on test 1"),
    ("abc329_c", "wrong", "wrong answer on test 1"),
    ("abc310_a", "crash", "runtime error on test 1"),
    ("3367", "wrong", "wrong answer on test 1"),
    ("3188", "crash", "runtime error on test 1"),
]


def test_broken_variants_fail_with_the_right_reason(lcb):
    task, samples = lcb
    grades = gather([task.grader(fenced(_variant(q, how)), samples[q])
                     for q, how, _ in VARIANTS])
    for (qid, how, reason), grade in zip(VARIANTS, grades):
        assert grade.correct is False and grade.reason == reason, (qid, how, grade)
        if how == "wrong":
            assert grade.details["expected"] and "got" in grade.details
        else:
            assert re.search(r"(NameError|ZeroDivisionError)", grade.details["error"])
            assert "runner.py" not in grade.details["error"]  # only the program's frames


def test_a_later_test_failing_is_named(lcb):
    task, samples = lcb
    # abc301_a: tests 1 and 2 answer T, test 3 answers A.
    grade = run(task.grader(fenced("input()\ninput()\nprint('T')"), samples["abc301_a"]))
    assert grade.reason == "wrong answer on test 3" and grade.details["passed"] == 2


def test_no_code_block_and_syntax_error(lcb):
    task, samples = lcb
    none, syntax = gather([task.grader("I would loop over the array.", samples["2777"]),
                           task.grader(fenced("class Solution:\n    def f(self:\n"),
                                       samples["2777"])])
    assert (none.correct, none.reason, none.extracted) == (False, "no code block", None)
    assert syntax.correct is False and syntax.reason == "syntax error"
    assert "SyntaxError" in syntax.details["error"]


FUNCTIONAL = CodeProblem("functional", (Case("[1,2]\n3", "[4,5]", "functional"),),
                         fn_name="f", time_limit_s=2)


@pytest.mark.parametrize(
    ("body", "correct"),
    [("return (4, 5)", True),  # top-level tuple becomes a list, as in the reference
     ("return [4.0, 5]", True),  # 4.0 == 4 under ==
     ("return [(4,), (5,)]", False),  # nested tuples are not lists
     ("return {4, 5}", False),
     ("print('debug'); return [x + k for x in a]", True)],  # prints do not matter
    ids=["top-tuple", "float-int", "nested-tuple", "set", "debug-print"],
)
def test_functional_results_compare_as_the_reference(body, correct):
    code = f"class Solution:\n    def f(self, a: List[int], k: int):\n        {body}\n"
    grade = run(grade_program(code, FUNCTIONAL, extracted=code, how=""))
    assert grade.correct is correct, grade.details


# -- limits ---------------------------------------------------------------------------------


def test_a_slow_program_is_a_time_limit_rerun_once_with_the_limit_recorded():
    problem = CodeProblem("stdin", (Case("", "1\n", "stdin"),), time_limit_s=0.5)
    grade = run(grade_program("while True:\n    pass", problem, extracted="", how=""))
    limit = round(0.5 * calibration_factor(), 3)
    assert grade.correct is False
    assert grade.reason == f"time limit on test 1 ({limit:.1f} s)"
    assert grade.details["time_limit_s"] == limit and grade.details["limit_kind"] == "cpu"
    assert grade.details["rerun"] is True and grade.details["first_try"]["verdict"] == "time limit"
    assert limit <= grade.details["cpu_s"][0] < limit + 0.5


def test_a_sleeping_program_hits_the_wall_limit():
    problem = CodeProblem("stdin", (Case("", "1\n", "stdin"),), time_limit_s=0.3)
    grade = run(grade_program("import time\ntime.sleep(60)", problem, extracted="", how=""))
    assert grade.reason.startswith("time limit on test 1")
    assert grade.details["limit_kind"] == "wall"


def test_a_program_exhausting_memory_is_a_memory_limit():
    problem = CodeProblem("stdin", (Case("", "1\n", "stdin"),), time_limit_s=2,
                          memory_mb=512)
    grade = run(grade_program("x = bytearray(2 * 1024 ** 3)", problem, extracted="", how=""))
    assert grade.reason == "memory limit on test 1" and "MemoryError" in grade.details["error"]


# -- a hostile program cannot forge a pass ----------------------------------------------------

STDIN_TWO_TESTS = CodeProblem("stdin", (Case("1 2\n", "3\n", "stdin"),
                                        Case("5 5\n", "10\n", "stdin")), time_limit_s=2)
ADVERSARIAL = {
    "reads the expected outputs from its files": (
        "import os, sys\n"
        "names = [n for n in os.listdir('.') if n not in ('solution.py', 'runner.py', "
        "'preamble.py')]\n"
        "found = [open(n).read() for n in names if os.path.isfile(n) and '10' in open(n).read()]\n"
        "print(found[0] if found else 'tests.json is gone')"),
    "reads the runner's memory": (  # the runner: its parent's parent (the zygote's)
        "import os\nstat = open(f'/proc/{os.getppid()}/stat').read()\n"
        "runner = int(stat[stat.rfind(')') + 2:].split()[1])\n"
        "try:\n    open(f'/proc/{runner}/mem', 'rb').read(1)\n    print('read it')\n"
        "except OSError as exc:\n    print(type(exc).__name__)"),
    "kills its parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "writes fake verdicts everywhere it can": (
        "import json, os\n"
        "fake = json.dumps({'done': True, 'verdict': 'passed', 'passed': 2}) + '\\n'\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    for fd in ('1', '2'):\n"
        "        try:\n"
        "            with open(f'/proc/{pid}/fd/{fd}', 'w') as f:\n"
        "                f.write(fake * 3)\n"
        "        except OSError:\n"
        "            pass\n"
        "print(fake)"),
    "floods its output": "import sys\nwhile True:\n    sys.stdout.write('3\\n' * 65536)",
    "closes its descriptors": "import os\nfor fd in range(3):\n    os.close(fd)",
    "leaves a daemon behind": (
        "import os, sys, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\n    os._exit(0)\n"
        "print(int(sys.stdin.read().split()[0]) * 0)"),
}


def test_hostile_programs_never_pass():
    names = list(ADVERSARIAL)
    grades = gather([grade_program(ADVERSARIAL[n], STDIN_TWO_TESTS, extracted="", how="")
                     for n in names])
    for name, grade in zip(names, grades):
        assert grade.correct is False, (name, grade)
    by_name = dict(zip(names, grades))
    assert "tests.json is gone" in by_name["reads the expected outputs from its files"].details["got"]
    assert "PermissionError" in by_name["reads the runner's memory"].details["got"]
    assert "killed its parent, the test harness" in by_name["kills its parent"].details["error"]
    assert by_name["floods its output"].reason == "wrong answer on test 1"


def test_sys_exit_ends_a_stdin_program_normally_as_in_the_reference():
    grade = run(grade_program("import sys\na, b = map(int, input().split())\nprint(a + b)\n"
                              "sys.exit(3)", STDIN_TWO_TESTS, extracted="", how=""))
    assert grade.correct is True


# -- HumanEval ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def humaneval() -> tuple[Task, list[Sample], dict[str, dict[str, Any]]]:
    task = Registry().get("humaneval")
    samples = load_task_data(task, benchmark_path(HUMANEVAL)).samples
    lines = benchmark_path(HUMANEVAL).read_text().splitlines()
    rows = {r["task_id"]: r for r in map(json.loads, lines)}
    return task, samples, rows


def _every(samples: list[Sample], step: int) -> list[Sample]:
    return samples[::step]


def test_humaneval_sampled_mutants_fail(humaneval):
    from evals_tasks.code import drop_returns

    task, samples, rows = humaneval
    chosen = _every(samples, 11)  # 15 problems
    assert len(chosen) == 15
    answers = []
    for sample in chosen:
        row = rows[sample.id]
        mutant = drop_returns(row["prompt"], row["canonical_solution"], row["entry_point"])
        assert mutant is not None
        answers.append((sample, mutant))
    grades = gather([task.grader(fenced(code), s) for s, code in answers])
    for (sample, _), grade in zip(answers, grades):
        assert grade.correct is False, sample.id
        assert grade.reason in ("wrong answer on test 1", "runtime error on test 1"), grade
    assert sum(g.reason == "wrong answer on test 1" for g in grades) >= 10


def test_humaneval_early_exit_does_not_pass(humaneval):
    task, samples, rows = humaneval
    sample = samples[0]
    entry = rows[sample.id]["entry_point"]
    cheats = [f"import sys\ndef {entry}(*a):\n    return True\nsys.exit(0)",
              f"import os\ndef {entry}(*a):\n    return True\nos._exit(0)"]
    grades = gather([task.grader(fenced(c), sample) for c in cheats])
    assert [g.correct for g in grades] == [False, False]


def test_humaneval_body_only_and_whole_function_completions(humaneval):
    task, samples, rows = humaneval
    row = rows["HumanEval/10"]  # make_palindrome uses the prompt's helper is_palindrome
    sample = next(s for s in samples if s.id == "HumanEval/10")
    body = row["canonical_solution"]
    whole = row["prompt"].split("def make_palindrome")[0].split("def is_palindrome")[0] + \
        "def make_palindrome" + row["prompt"].split("def make_palindrome")[1] + body
    grades = gather([task.grader(fenced(body), sample), task.grader(fenced(whole), sample),
                     task.grader(fenced(body.replace("    ", "", 1).replace("\n    ", "\n")),
                                 sample)])
    assert [g.correct for g in grades] == [True, True, True], [g.details for g in grades]


def test_humaneval_program_keeps_prompt_helpers():
    prompt = 'import math\n\ndef helper(x):\n    return x + 1\n\ndef f(x):\n    """Doc."""\n'
    program = humaneval_program(prompt, "def f(x):\n    return helper(x)", "f")
    namespace: dict[str, Any] = {}
    exec(compile(program, "p", "exec"), namespace)  # noqa: S102 - our own test program
    assert namespace["f"](1) == 2


@pytest.mark.slow
def test_all_164_canonical_humaneval_solutions_pass(humaneval):
    task, samples, rows = humaneval
    assert len(samples) == 164
    grades = gather([task.grader(fenced(rows[s.id]["prompt"] + rows[s.id]["canonical_solution"]),
                                 s) for s in samples])
    failed = [(s.id, g.reason) for s, g in zip(samples, grades) if g.correct is not True]
    assert failed == []


# -- task options ---------------------------------------------------------------------------


def test_release_tags_map_to_shards_and_windows():
    from evals_tasks.code import release_files

    assert release_files("release_v5") == (
        ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl"),
        "2023-05-01", "2025-02-01")
    assert release_files("v1") == (("test.jsonl",), "2023-05-01", "2024-04-01")
    assert release_files("v5") == (("test5.jsonl",), "2024-10-01", "2025-02-01")
    assert release_files("release_latest")[0][-1] == "test6.jsonl"
    with pytest.raises(ConfigError, match="release_v1 .. release_v6"):
        release_files("v7")


def test_release_and_date_options_filter_the_sample():
    base = Registry().get("livecodebench")
    assert base.dataset.data_files[-1] == "test5.jsonl"

    def count(**options: str) -> int:
        data = benchmark_path(LCB_SAMPLE)
        return len(load_task_data(base.with_options(options), data).samples)

    assert count() == 60  # the sample lies inside release_v5
    assert count(release="v1") == 33  # contest dates before 2024-04-01
    # The DeepSeek-R1 window; 2025-01-04T18:30 is inside because --until includes the day.
    assert count(since="2024-08-01", until="2025-01-04") == 16
    assert count(since="2024-08-01", until="2025-01-03") == 13
    configured = base.with_options({"release": "v4_v5"})
    assert configured.dataset.data_files == ("test4.jsonl", "test5.jsonl")
    with pytest.raises(ConfigError, match="not a date"):
        base.with_options({"since": "August"})
    with pytest.raises(ConfigError, match="is empty"):
        base.with_options({"since": "2025-01-01", "until": "2024-01-01"})


def test_bad_rows_are_listed_with_their_field_not_as_an_option(tmp_path: Path) -> None:
    lines = benchmark_path(LCB_SAMPLE).read_text().splitlines()
    rows = [json.loads(line) for line in lines[:3]]
    rows[0]["contest_date"] = "August 2024"
    rows[1]["private_test_cases"] = "not base64 at all!"
    bad = tmp_path / "lcb.jsonl"
    bad.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(DataError, match="2 of 3 row") as info:
        load_task_data(Registry().get("livecodebench"), bad)
    message = str(info.value)
    assert "August 2024' (row 1)" in message and "(row 2)" in message
    assert "--contest_date" not in message


def test_the_simulator_loads_the_release_a_run_asks_for() -> None:
    from evals.simulator import AnswerBook

    data = {"livecodebench": benchmark_path(LCB_SAMPLE)}
    assert len(AnswerBook.from_tasks(["livecodebench"], data)) == 60
    v1 = AnswerBook.from_tasks(["livecodebench"], data, options=(("release", "v1"),))
    assert len(v1) == 33  # the same problems `evals run --release v1` sends
    with pytest.raises(ConfigError, match="No task of this run accepts"):
        AnswerBook.from_tasks(["livecodebench"], data, options=(("shuffle", "true"),))
