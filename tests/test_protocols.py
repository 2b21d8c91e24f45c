"""Prompt protocols (``--option prompt=NAME``) and stop sequences.

Provenance: the expected prompt texts are quoted from reference/benchmarks-and-cards.md A2
and the sources it names (deepseek-ai/DeepSeek-R1 README, evalscope aime25_adapter.py,
openai/simple-evals math_eval.py and common.py, mlfoundations/evalchemy GPQADiamond
eval_instruct.py, TIGER-AI-Lab/MMLU-Pro evaluate_from_api.py). Problems are from
the test data (AIME 2025, MATH-500, the MMLU-Pro test sample: ``benchmark_path`` in
conftest); the MMLU-Pro exemplars are written here (the sample has no validation split) with invented chains of thought.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import benchmark_path
from helpers import read_log, run_sync

from evals.data import load_task_data
from evals.errors import ConfigError, DataError
from evals.grading.choice import extract_choice
from evals.grading.math_extract import extract_math_answer
from evals.records import Grade, Sample
from evals.registry import DatasetSpec, Registry, Task, configure_tasks

# Benchmark files, found (or the test skipped) by conftest.benchmark_path.
AIME2025 = "aime2025/aime2025.jsonl"
MATH500 = "math500/test.jsonl"
MMLU_PRO = "mmlu_pro_sample/mmlu_pro_test_stem_sample.jsonl"
GPQA_SHAPED = "mmlu_pro_sample/gpqa_shaped_from_mmlu_pro.jsonl"

R1 = "Please reason step by step, and put your final answer within \\boxed{}."
MATHARENA = R1 + " The answer is an integer between 0 and 999 inclusive."
AA_HEAD = "Solve the following math problem step by step. Put your answer inside \\boxed{}."
AA_TAIL = "Remember to put your answer inside \\boxed{}."
SIMPLE_EVALS_MATH_HEAD = (
    "Solve the following math problem step by step. The last line of your response should be "
    "of the form Answer: $ANSWER (without quotes) where $ANSWER is the answer to the problem.")
SIMPLE_EVALS_MATH_TAIL = (
    'Remember to put your answer on its own line after "Answer:", and you do not need to use '
    "a \\boxed command.")
FIVE_SHOT_HEAD = (
    "The following are multiple choice questions (with answers) about {}. Think step by step "
    'and then output the answer in the format of "The answer is (X)" at the end.\n\n')


def _rows(name: str) -> list[dict[str, Any]]:
    path = benchmark_path(name)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _prompt(task: Task, row: dict[str, Any]) -> str:
    return task.to_sample(row, 0).messages[-1][1]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


# -- the registry: fields, the prompt option, errors --------------------------------------


async def _grade(answer: str, sample: Sample) -> Grade:
    return Grade(None, False, "unused")


def _toy(protocol: str | None = None, **kw: Any) -> Task:
    def configure(options: Any) -> Task:
        return _toy(options["prompt"])

    return Task(name="toy", dataset=DatasetSpec("x/y", split="test"),
                to_sample=lambda row, i: Sample(str(i), (("user", "q"),), "1"), grader=_grade,
                protocols=(("one", "first source"), ("two", "second source")),
                protocol=protocol, configure=configure, **kw)


def test_a_task_with_protocols_takes_the_prompt_option_and_defaults_to_the_first() -> None:
    toy = _toy(options=("shuffle",))
    assert toy.protocol == "one" and toy.options == ("shuffle", "prompt") and toy.stop == ()
    assert toy.with_options({"prompt": "two"}).protocol == "two"
    assert toy.with_options({"prompt": " two "}).protocol == "two"
    assert toy.protocol_option({}) == "one"


def test_a_task_without_protocols_is_unchanged() -> None:
    plain = Task(name="plain", dataset=DatasetSpec("x/y", split="test"),
                 to_sample=lambda row, i: Sample(str(i), (("user", "q"),), "1"), grader=_grade)
    assert plain.protocols == () and plain.protocol is None and plain.options == ()
    with pytest.raises(ConfigError, match="does not accept the option"):
        plain.with_options({"prompt": "r1"})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"protocol": "three"}, "not one of its protocols"),
    ({"configure": None}, "no configure"),
    ({"protocols": (("one", ""), ("one", ""))}, "repeat"),
])
def test_a_malformed_protocol_declaration_is_refused(kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {
        "name": "toy", "dataset": DatasetSpec("x/y", split="test"),
        "to_sample": lambda row, i: Sample(str(i), (("user", "q"),), "1"), "grader": _grade,
        "protocols": (("one", ""), ("two", "")), "configure": lambda options: None}
    with pytest.raises(ValueError, match=message):
        Task(**{**base, **kwargs})


@pytest.mark.parametrize(("task", "bad", "suggested"), [
    ("aime2025", "r11", "r1"),
    ("aime2024", "math-arena", "matharena"),
    ("math500", "simple_evals", "simple-evals"),
    ("gpqa_diamond", "boxd", "boxed"),
    ("mmlu_pro", "mmlu-pro-5-shot", "mmlu-pro-5shot"),
])
def test_an_unknown_protocol_is_named_with_suggestions_and_the_known_ones(
        registry: Registry, task: str, bad: str, suggested: str) -> None:
    with pytest.raises(ConfigError) as info:
        configure_tasks([registry.get(task)], [("prompt", bad)])
    message = str(info.value)
    assert repr(bad) in message and f"Did you mean: {suggested}" in message
    for name, _ in registry.get(task).protocols:
        assert name in message


def test_the_prompt_option_configures_only_the_tasks_that_take_it(registry: Registry) -> None:
    aime, code_free = registry.get("aime2025"), registry.get("math500")
    configured = configure_tasks([aime, code_free], [("prompt", "aa")])
    assert [t.protocol for t in configured] == ["aa", "aa"]
    with pytest.raises(ConfigError, match="unknown prompt protocol 'r1'"):
        configure_tasks([aime, registry.get("gpqa_diamond")], [("prompt", "r1")])


@pytest.mark.parametrize(("task", "names"), [
    ("aime2024", ["matharena", "r1", "aa"]),
    ("aime2025", ["matharena", "r1", "aa"]),
    ("math500", ["r1", "aa", "simple-evals"]),
    ("gpqa_diamond", ["simple-evals", "boxed"]),
    ("mmlu_pro", ["simple-evals", "mmlu-pro-5shot"]),
])
def test_each_task_lists_its_protocols_with_a_source(registry: Registry, task: str,
                                                      names: list[str]) -> None:
    built = registry.get(task)
    assert [name for name, _ in built.protocols] == names
    assert built.protocol == names[0] and "prompt" in built.options and built.stop == ()
    assert all(len(about) > 20 for _, about in built.protocols)


# -- math prompts -------------------------------------------------------------------------


def test_aime_prompts(registry: Registry) -> None:
    row = _rows(AIME2025)[0]
    problem = row["problem"].strip()
    aime = registry.get("aime2025")
    default = _prompt(aime, row)
    assert default == f"{problem}\n\n{MATHARENA}"
    assert _prompt(aime.with_options({"prompt": "matharena"}), row) == default
    assert _prompt(aime.with_options({"prompt": "r1"}), row) == f"{problem}\n\n{R1}"
    assert (_prompt(aime.with_options({"prompt": "aa"}), row)
            == f"{AA_HEAD}\n\n{problem}\n\n{AA_TAIL}")


def test_a_problem_with_braces_is_inserted_verbatim(registry: Registry) -> None:
    row = {"problem": "Find {problem} and $\\frac{1}{2}$.", "answer": "5"}
    aa = registry.get("aime2024").with_options({"prompt": "aa"})
    assert _prompt(aa, row) == f"{AA_HEAD}\n\n{row['problem']}\n\n{AA_TAIL}"


def test_math500_prompts(registry: Registry) -> None:
    row = _rows(MATH500)[0]
    problem = row["problem"].strip()
    math500 = registry.get("math500")
    assert _prompt(math500, row) == f"{problem}\n\n{R1}"
    assert (_prompt(math500.with_options({"prompt": "aa"}), row)
            == f"{AA_HEAD}\n\n{problem}\n\n{AA_TAIL}")
    assert (_prompt(math500.with_options({"prompt": "simple-evals"}), row)
            == f"{SIMPLE_EVALS_MATH_HEAD}\n\n{problem}\n\n{SIMPLE_EVALS_MATH_TAIL}")


@pytest.mark.parametrize(("response", "answer"), [
    ("We compute.\n\nAnswer: \\frac{14}{3}", "\\frac{14}{3}"),  # the form asked for
    ("We compute.\n\nANSWER: $3\\sqrt{13}$", "3\\sqrt{13}"),  # simple-evals reads (?i)
    ("So the value is $6$.\n\nAnswer: $6$", "6"),  # the simulator's form
])
def test_simple_evals_answer_lines_are_extracted(response: str, answer: str) -> None:
    assert extract_math_answer(response) == (answer, "answer line")


def test_the_math500_simulator_answers_simple_evals_prompts_with_an_answer_line(
        registry: Registry) -> None:
    task = registry.get("math500").with_options({"prompt": "simple-evals"})
    sample = task.to_sample(_rows(MATH500)[0], 0)
    assert task.answer_writer is not None
    _, body = task.answer_writer(sample, True, random.Random(3), sample.messages[-1][1])
    assert body.splitlines()[-1].startswith("Answer: ")


# -- multiple-choice prompts ----------------------------------------------------------------


def test_gpqa_default_prompt_is_simple_evals(registry: Registry) -> None:
    row = _rows(GPQA_SHAPED)[0]
    text = _prompt(registry.get("gpqa_diamond"), row)
    assert text.startswith("Answer the following multiple choice question. The last line of "
                           "your response should be of the following format: 'Answer: "
                           "$LETTER' (without quotes) where LETTER is one of ABCD. Think step "
                           "by step before answering.\n\n")
    assert text.endswith(f"\n\nA) {row['Correct Answer'].strip()}\n"
                         f"B) {row['Incorrect Answer 1'].strip()}\n"
                         f"C) {row['Incorrect Answer 2'].strip()}\n"
                         f"D) {row['Incorrect Answer 3'].strip()}")


def test_gpqa_boxed_prompt_is_evalchemys(registry: Registry) -> None:
    row = _rows(GPQA_SHAPED)[0]
    task = registry.get("gpqa_diamond").with_options({"prompt": "boxed"})
    sample = task.to_sample(row, 0)
    choices = [row["Correct Answer"], *(row[f"Incorrect Answer {k}"] for k in (1, 2, 3))]
    choices = [c.strip() for c in choices]
    assert sample.messages[-1][1] == (
        "Return your final response within \\boxed{} and only include the letter choice (A, "
        "B, C, or D) as your final response.\n"
        f"Problem: {row['Question'].strip()}\n"
        f"Options: A) {choices[0]}, B) {choices[1]}, C) {choices[2]}, D) {choices[3]}\n"
        "Answer:")
    # Each repeat shuffles; the simulator still knows the problem and where its gold went.
    assert task.prepare is not None and task.prompt_key is not None
    assert task.answer_writer is not None
    for seed in range(8):
        asked = task.prepare(sample, seed, {})
        text = asked.messages[-1][1]
        assert task.prompt_key(text) == task.prompt_key(sample.messages[-1][1])
        _, body = task.answer_writer(asked, True, random.Random(seed), text)
        assert extract_choice(body, "ABCD").letter == asked.target


def test_mmlu_pro_default_prompt_is_unchanged(registry: Registry) -> None:
    row = _rows(MMLU_PRO)[0]
    task = registry.get("mmlu_pro")
    assert task.protocol == "simple-evals" and task.stop == ()
    assert task.options == ("shuffle", "prompt", "fewshot_data")
    letters = "ABCDEFGHIJ"[: len(row["options"])]
    lines = "\n".join(f"{letters[i]}) {o.strip()}" for i, o in enumerate(row["options"]))
    assert _prompt(task, row) == (
        "Answer the following multiple choice question. The last line of your response should "
        "be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of "
        f"{letters}. Think step by step before answering.\n\n{row['question'].strip()}\n\n"
        f"{lines}")


def _exemplar(category: str, k: int, cot: str) -> dict[str, Any]:
    return {"question_id": 9000 + k, "question": f"{category} exemplar {k}?",
            "options": ["yes", "N/A", "no", "maybe"], "answer": "A", "answer_index": 0,
            "cot_content": cot, "category": category, "src": "written-for-this-test"}


@pytest.fixture
def fewshot_file(tmp_path: Path) -> Path:
    """Six exemplars per category of the MMLU-Pro sample (one more than is used)."""
    rows = [_exemplar(category, k, f"A: Let's think step by step. {category} fact {k}. "
                      "The answer is (A).")
            for category in ("biology", "chemistry", "physics") for k in range(6)]
    rows[1]["cot_content"] = ""  # the script writes "Let's think step by step." instead
    path = tmp_path / "validation.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _shot(category: str, k: int, cot: str) -> str:
    return (f"Question: {category} exemplar {k}?\nOptions: A. yes\nB. no\nC. maybe\n"
            f"Answer: {cot}\n\n")


def test_mmlu_pro_5shot_prompt_is_the_official_scripts(registry: Registry, fewshot_file: Path) -> None:
    task = registry.get("mmlu_pro").with_options(
        {"prompt": "mmlu-pro-5shot", "fewshot_data": str(fewshot_file)})
    assert task.protocol == "mmlu-pro-5shot" and task.stop == ("Question:",)
    row = next(r for r in _rows(MMLU_PRO) if r["category"] == "biology")
    shots = [_shot("biology", 0, "Let's think step by step. biology fact 0. The answer is (A)."),
             _shot("biology", 1, "Let's think step by step."),
             *(_shot("biology", k, f"Let's think step by step. biology fact {k}. The answer "
                     "is (A).") for k in (2, 3, 4))]
    options = "".join(f"{'ABCDEFGHIJ'[i]}. {o}\n"
                      for i, o in enumerate(o for o in row["options"] if o != "N/A"))
    assert _prompt(task, row) == (
        FIVE_SHOT_HEAD.format("biology") + "".join(shots)
        + f"Question: {row['question']}\nOptions: {options}Answer: Let's think step by step."
        + "\n\n")


def test_mmlu_pro_5shot_keeps_the_text_as_written_and_the_gold_letter(
        registry: Registry, fewshot_file: Path) -> None:
    task = registry.get("mmlu_pro").with_options(
        {"prompt": "mmlu-pro-5shot", "fewshot_data": str(fewshot_file)})
    padded = next(r for r in _rows(MMLU_PRO) if any(o != o.strip() for o in r["options"]))
    sample = task.to_sample(padded, 0)
    kept = [o for o in padded["options"] if o != "N/A"]
    assert json.loads(str(dict(sample.metadata)["choices"])) == kept
    assert sample.target == "ABCDEFGHIJ"[kept.index(padded["options"][padded["answer_index"]])]
    assert sample.target == padded["answer"]


def test_the_5shot_simulator_answer_ends_with_the_answer_is(registry: Registry,
                                                            fewshot_file: Path) -> None:
    task = registry.get("mmlu_pro").with_options(
        {"prompt": "mmlu-pro-5shot", "fewshot_data": str(fewshot_file), "shuffle": "true"})
    assert task.prepare is not None and task.prompt_key is not None
    assert task.answer_writer is not None
    sample = task.to_sample(_rows(MMLU_PRO)[5], 0)
    for seed in range(6):
        asked = task.prepare(sample, seed, {})
        text = asked.messages[-1][1]
        assert task.prompt_key(text) == task.prompt_key(sample.messages[-1][1])
        _, body = task.answer_writer(asked, True, random.Random(seed), text)
        assert body.rstrip().endswith(f"answer is ({asked.target}).")
        assert extract_choice(body, "ABCDEFGHIJ").letter == asked.target


@pytest.mark.parametrize(("response", "letter", "how"), [
    ("Let's think step by step. ... The answer is (C).", "C", "answer"),  # cascade step 1
    ("Reasoning ...\nAnswer: D", "D", "answer"),  # step 2
    ("Reasoning ... hence J seems right overall", "J", "last letter"),  # step 3
    ("I am not sure", "I", "last letter"),  # step 3 reads "I", as the script does
    ("nothing here", None, "none"),
])
def test_the_5shot_grader_follows_the_official_cascade(response: str, letter: str | None,
                                                       how: str) -> None:
    assert extract_choice(response, "ABCDEFGHIJ", last_letter="ABCDEFGHIJ") == (letter, how)


def test_the_last_letter_fallback_is_off_by_default() -> None:
    assert extract_choice("hence J seems right overall", "ABCDEFGHIJ") == (None, "none")


def test_fewshot_data_needs_the_5shot_protocol(registry: Registry, fewshot_file: Path) -> None:
    with pytest.raises(ConfigError, match="prompt=mmlu-pro-5shot"):
        registry.get("mmlu_pro").with_options({"fewshot_data": str(fewshot_file)})
    with pytest.raises(ConfigError, match="does not accept the option"):
        registry.get("gpqa_diamond").with_options({"fewshot_data": str(fewshot_file)})


def test_a_missing_fewshot_file_stops_the_load(registry: Registry, tmp_path: Path) -> None:
    task = registry.get("mmlu_pro").with_options(
        {"prompt": "mmlu-pro-5shot", "fewshot_data": str(tmp_path / "nope.jsonl")})
    with pytest.raises(ConfigError, match="fewshot_data=.*nope.jsonl is not a file"):
        load_task_data(task, benchmark_path(MMLU_PRO))


def test_a_category_without_exemplars_is_reported_by_row(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "only_physics.jsonl"
    path.write_text(json.dumps(_exemplar("physics", 0, "The answer is (A).")) + "\n")
    task = registry.get("mmlu_pro").with_options(
        {"prompt": "mmlu-pro-5shot", "fewshot_data": str(path)})
    with pytest.raises(DataError, match="no 5-shot exemplar of category 'biology'.*has: physics"):
        load_task_data(task, benchmark_path(MMLU_PRO))


def test_the_hub_exemplars_are_the_validation_split_at_the_pinned_revision(registry: Registry) -> None:
    from evals_tasks.multiple_choice import _fewshot_dataset

    test_split = registry.get("mmlu_pro").dataset
    exemplars = _fewshot_dataset(test_split)
    assert (exemplars.hub_id, exemplars.split) == ("TIGER-Lab/MMLU-Pro", "validation")
    assert exemplars.revision == test_split.revision is not None


# -- end to end against the simulator -------------------------------------------------------


def _run(tmp_path: Path, task: str, data: Path, options: tuple[tuple[str, str], ...],
         n: int, limit: int | None = None) -> tuple[Any, list[dict[str, Any]]]:
    from evals.runner import RunConfig, run
    from evals.simulator import AnswerBook, SimConfig, SimulatorThread

    book = AnswerBook.from_tasks([task], {task: data}, options=options)
    log = tmp_path / "requests.jsonl"
    with SimulatorThread(SimConfig(accuracy=1.0), book, request_log=log) as sim:
        cfg = RunConfig(tasks=(task,), model="sim-reasoner", provider="simulator",
                        base_url=sim.base_url, n=n, limit=limit, data=((task, data),),
                        seed=11, out=tmp_path / "run", concurrency=16, options=options)
        result = run_sync(run(cfg))
    return result, read_log(log)


def _overall(result: Any) -> Any:
    return result.summary[result.summary["subset"] == ""].iloc[0]


def test_aime2025_r1_end_to_end(tmp_path: Path) -> None:
    _rows(AIME2025)
    result, log = _run(tmp_path, "aime2025", benchmark_path(AIME2025), (("prompt", "r1"),),
                       n=2)
    assert len(log) == 60 and all(entry["task"] == "aime2025" for entry in log)
    row = _overall(result)
    assert row.scored == 60 and row.score == 1.0


def test_mmlu_pro_5shot_end_to_end(tmp_path: Path, fewshot_file: Path) -> None:
    _rows(MMLU_PRO)
    options = (("prompt", "mmlu-pro-5shot"), ("fewshot_data", str(fewshot_file)),
               ("shuffle", "true"))
    result, log = _run(tmp_path, "mmlu_pro", benchmark_path(MMLU_PRO), options, n=2, limit=40)
    assert len(log) == 80 and all(entry["task"] == "mmlu_pro" for entry in log)
    row = _overall(result)
    assert row.scored == 80 and row.score == 1.0


def test_gpqa_boxed_end_to_end(tmp_path: Path) -> None:
    _rows(GPQA_SHAPED)
    result, log = _run(tmp_path, "gpqa_diamond", benchmark_path(GPQA_SHAPED), (("prompt", "boxed"),), n=2,
                       limit=30)
    assert len(log) == 60 and all(entry["task"] == "gpqa_diamond" for entry in log)
    assert _overall(result).score == 1.0


def test_math500_simple_evals_end_to_end(tmp_path: Path) -> None:
    _rows(MATH500)
    result, log = _run(tmp_path, "math500", benchmark_path(MATH500), (("prompt", "simple-evals"),), n=1,
                       limit=20)
    assert len(log) == 20 and all(entry["task"] == "math500" for entry in log)
    assert _overall(result).score == 1.0
