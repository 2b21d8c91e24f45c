"""Multiple choice: letter extraction (a table of cases), the per-attempt shuffle, the
prompt shape, the grader, the GPQA / MMLU-Pro row mappings and the gated-data message.

``fixtures/gpqa_fixture.csv`` has GPQA's columns and twelve simple questions written for
this project; no GPQA text is shipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from itertools import permutations
from pathlib import Path

import pytest
from conftest import benchmark_path

from evals.errors import ConfigError
from evals.grading.choice import (
    ALPHABET,
    MAX_TAIL,
    choice_grader,
    extract_choice,
    shuffle_choices,
)
from evals.records import Sample
from evals.registry import Registry, Task
from evals.runner import attempt_seed

HERE = Path(__file__).parent
CASES = HERE / "cases" / "choice_extract.jsonl"
GPQA_FIXTURE = HERE / "fixtures" / "gpqa_fixture.csv"
MMLU_PRO = "mmlu_pro_sample/mmlu_pro_test_stem_sample.jsonl"  # via benchmark_path

# Critical values of the chi-square distribution at 0.999 (scipy is not a dependency):
# chi2.ppf(0.999, 3) = 16.266 and chi2.ppf(0.999, 23) = 49.728. A fair shuffle exceeds them
# with probability 0.001, and the seeds are fixed, so the test is deterministic.
CHI2_999_3DOF = 16.27
CHI2_999_23DOF = 49.73


def _load_cases() -> list[dict[str, object]]:
    return [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]


def _case_id(index: int, case: dict[str, object]) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(case["note"]).lower()).strip("-")[:50]
    return f"{index:03d}-{slug}"


_CASES = _load_cases()


def test_public_names_are_sorted_and_exist():
    import evals_tasks.multiple_choice as tasks_module

    import evals.grading.choice as grading_module

    def isort_style(name: str) -> tuple[int, str]:  # constants, classes, then functions
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    for module in (grading_module, tasks_module):
        assert module.__all__ == sorted(module.__all__, key=isort_style)
        for name in module.__all__:
            assert getattr(module, name) is not None


# -- extraction -----------------------------------------------------------------------------


def test_the_case_table_is_large_and_well_formed():
    assert len(_CASES) >= 150
    assert len({_case_id(i, c) for i, c in enumerate(_CASES)}) == len(_CASES)
    for case in _CASES:
        assert set(case) <= {"response", "letters", "options", "expected", "note", "source"}
        assert case["expected"] is None or case["expected"] in str(case["letters"])
    # Both outcomes and both letter sets are well represented.
    assert sum(c["expected"] is None for c in _CASES) >= 40
    assert sum(len(str(c["letters"])) == 10 for c in _CASES) >= 10


@pytest.mark.parametrize("case", _CASES, ids=[_case_id(i, c) for i, c in enumerate(_CASES)])
def test_extract_choice_case(case):
    options = case.get("options") or ()
    letter, how = extract_choice(str(case["response"]), str(case["letters"]), options)
    assert letter == case["expected"], (how, case["note"])
    assert (letter is None) == (how in ("none", "invalid letter"))


def test_an_answer_beyond_the_tail_is_not_read_but_a_late_one_is():
    filler = "Checking the units again, the magnitude is consistent. " * (MAX_TAIL // 40)
    assert len(filler) > MAX_TAIL
    assert extract_choice("Answer: B\n\n" + filler, "ABCD") == (None, "none")
    assert extract_choice("Answer: B\n\n" + filler + "\n\nAnswer: C", "ABCD") == ("C", "answer")


def test_pathological_answers_are_read_in_bounded_time():
    attacks = [
        "Answer: " * 200_000,
        "\\boxed{" * 200_000,
        "\\boxed{" * 50_000 + "A" + "}" * 50_000,
        "(" * 2_000_000,
        "If the answer is A, " * 100_000,
        "option A is correct " * 100_000,
        "**A** " * 200_000,
        "x" * 5_000_000,
    ]
    for text in attacks:
        started = time.perf_counter()
        extract_choice(text, "ABCDEFGHIJ", ["x"] * 10)
        assert time.perf_counter() - started < 1.0, text[:20]


def test_random_text_never_raises():
    rng = random.Random(7)
    pieces = ["Answer", ":", " ", "\n", "(", ")", "**", "\\boxed{", "}", "A", "b", "I", "is",
              "correct", "option", "$", "\\text{", "the answer is", "If", "final answer", "é"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        letter, how = extract_choice(text, "ABCD", ["A", "b", "x y"])
        assert letter is None or letter in "ABCD", (text, letter, how)


@pytest.mark.parametrize("letters", ["", "abcd", "AAB", "AB1", "ÀB"])
def test_letters_must_be_distinct_capitals(letters):
    with pytest.raises(ValueError, match="letters"):
        extract_choice("Answer: A", letters)


# -- shuffling ------------------------------------------------------------------------------


def test_shuffle_is_a_seeded_permutation():
    for seed in range(200):
        order = shuffle_choices(10, seed)
        assert sorted(order) == list(range(10))
        assert order == shuffle_choices(10, seed)
        assert list(order) == random.Random(seed).sample(range(10), 10)
    assert len({shuffle_choices(4, seed) for seed in range(200)}) == 24
    with pytest.raises(ValueError):
        shuffle_choices(0, 1)


def _chi2(counts: list[int]) -> float:
    expected = sum(counts) / len(counts)
    return sum((c - expected) ** 2 / expected for c in counts)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(entry_points=False)


@pytest.fixture(scope="module")
def gpqa(registry: Registry) -> Task:
    return registry.get("gpqa_diamond")


@pytest.fixture(scope="module")
def mmlu(registry: Registry) -> Task:
    return registry.get("mmlu_pro")


def _gpqa_row(k: int) -> dict[str, object]:
    return {"Record ID": f"rec{k:04d}", "Question": f"Question number {k}?",
            "Correct Answer": f"right {k}", "Incorrect Answer 1": f"wrong {k}.1",
            "Incorrect Answer 2": f"wrong {k}.2", "Incorrect Answer 3": f"wrong {k}.3",
            "High-level domain": "Physics", "Subdomain": "Optics"}


def test_gold_position_is_uniform_over_4000_attempts(gpqa: Task):
    """Where the correct answer lands over 400 problems x 10 repeats, with the seeds the
    runner derives (run seed 0)."""
    assert gpqa.prepare is not None
    positions: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    for k in range(400):
        sample = gpqa.to_sample(_gpqa_row(k), k)
        for repeat in range(10):
            seed = attempt_seed(0, "gpqa_diamond", sample.id, repeat)
            asked = gpqa.prepare(sample, seed, {})
            positions[asked.target] += 1
            orders[str(dict(asked.metadata)["permutation"])] += 1
    assert sum(positions.values()) == 4000
    assert _chi2([positions[letter] for letter in "ABCD"]) < CHI2_999_3DOF, positions
    assert len(orders) == 24
    assert _chi2([orders[json.dumps(list(p), separators=(",", ":"))]
                  for p in permutations(range(4))]) < CHI2_999_23DOF
    # The statistic has power: the data's own order (gold always first) fails it by far.
    assert _chi2([4000, 0, 0, 0]) > 100 * CHI2_999_3DOF


def test_prepare_is_reproducible_and_keeps_the_permutation(gpqa: Task):
    assert gpqa.prepare is not None
    sample = gpqa.to_sample(_gpqa_row(1), 0)
    prompts = set()
    for repeat in range(12):
        seed = attempt_seed(1234, "gpqa_diamond", sample.id, repeat)
        first = gpqa.prepare(sample, seed, {})
        again = gpqa.prepare(sample, seed, {})
        assert first == again
        assert first.messages[-1][1].encode() == again.messages[-1][1].encode()
        prompts.add(first.messages[-1][1])
        meta = dict(first.metadata)
        order = json.loads(str(meta["permutation"]))
        assert order == list(shuffle_choices(4, seed))
        assert meta["gold_letter"] == first.target == "ABCD"[order.index(0)]
        # The gold option text sits on the target's line of the prompt.
        assert f"\n{first.target}) right 1" in first.messages[-1][1]
        # The base metadata is kept: breakdown fields, choices in dataset order.
        assert meta["domain"] == "Physics" and json.loads(str(meta["choices"]))[0] == "right 1"
    assert len(prompts) > 6


def test_prepare_with_no_seed_or_a_given_permutation(gpqa: Task):
    assert gpqa.prepare is not None
    sample = gpqa.to_sample(_gpqa_row(2), 0)
    plain = gpqa.prepare(sample, None, {})
    assert plain.messages == sample.messages and plain.target == "A"
    assert dict(plain.metadata)["permutation"] == "[0,1,2,3]"
    for given in ([3, 1, 0, 2], "[3,1,0,2]", "[3, 1, 0, 2]"):
        asked = gpqa.prepare(sample, 99, {"permutation": given})
        assert asked.target == "C" and dict(asked.metadata)["permutation"] == "[3,1,0,2]"
        assert asked.messages[-1][1].endswith(
            "A) wrong 2.3\nB) wrong 2.1\nC) right 2\nD) wrong 2.2")
    # A prepared sample can be prepared again (it records the order its prompt shows).
    assert gpqa.prepare(asked, None, {}) == plain
    assert gpqa.prepare(asked, 5, {"permutation": [1, 0, 3, 2]}) == gpqa.prepare(
        sample, 5, {"permutation": [1, 0, 3, 2]})
    assert gpqa.prepare(asked, None, {"permutation": None}) == plain


@pytest.mark.parametrize("bad", [[0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 4], "[0,1,2,3,4]", "0,1,2,3",
                                 [0.0, 1, 2, 3], [True, 0, 2, 3], {"a": 1}, "garbage"])
def test_a_bad_recorded_permutation_is_named(gpqa: Task, bad):
    assert gpqa.prepare is not None
    sample = gpqa.to_sample(_gpqa_row(3), 0)
    with pytest.raises(ValueError) as info:
        gpqa.prepare(sample, None, {"permutation": bad})
    assert "permutation" in str(info.value) and repr(bad) in str(info.value)
    assert "rec0003" in str(info.value)


def test_shuffle_option_turns_shuffling_on_and_off(gpqa: Task, mmlu: Task):
    assert gpqa.options == ("shuffle", "prompt")
    assert mmlu.options == ("shuffle", "prompt", "fewshot_data")
    row = json.loads(benchmark_path(MMLU_PRO).read_text().splitlines()[0])
    sample = mmlu.to_sample(row, 0)
    seeds = range(30)

    def targets(task: Task, s: Sample) -> set[str]:
        assert task.prepare is not None
        return {task.prepare(s, seed, {}).target for seed in seeds}

    assert targets(mmlu, sample) == {row["answer"]}  # dataset order by default
    shuffled = mmlu.with_options({"shuffle": "true"})
    assert shuffled.name == "mmlu_pro" and len(targets(shuffled, sample)) > 3
    g = gpqa.to_sample(_gpqa_row(4), 0)
    assert len(targets(gpqa, g)) == 4
    assert targets(gpqa.with_options({"shuffle": "false"}), g) == {"A"}
    assert len(targets(gpqa.with_options({"shuffle": "Yes"}), g)) == 4
    with pytest.raises(ConfigError, match=r"shuffle='maybe'.*shuffle=true"):
        gpqa.with_options({"shuffle": "maybe"})
    with pytest.raises(ConfigError, match="does not accept"):
        gpqa.with_options({"shufle": "true"})


# -- the simulated server's side: prompt key and answer writer ---------------------------------


def test_prompt_key_maps_every_order_to_its_problem(gpqa: Task, mmlu: Task):
    assert gpqa.prompt_key is not None and gpqa.prepare is not None
    rows = [json.loads(line) for line in benchmark_path(MMLU_PRO).read_text().splitlines()]
    samples = [mmlu.to_sample(row, i) for i, row in enumerate(rows)]
    keys = {mmlu.prompt_key(s.messages[-1][1]) for s in samples}  # type: ignore[misc]
    # Two MMLU-Pro rows share a question text; the key still tells all 200 apart.
    assert len({s.messages[-1][1].split("\n\nA) ")[0] for s in samples}) == 199
    assert len(keys) == 200
    shuffled = mmlu.with_options({"shuffle": "true"})
    assert shuffled.prepare is not None and shuffled.prompt_key is not None
    for s in samples[:50]:
        for seed in range(3):
            asked = shuffled.prepare(s, seed, {}).messages[-1][1]
            assert shuffled.prompt_key(asked) == shuffled.prompt_key(s.messages[-1][1])


def test_writer_names_the_gold_letter_of_the_prompt_it_was_given(gpqa: Task, mmlu: Task):
    """Over many attempts the writer's answer, graded, is right exactly when asked to be, and
    uses several ending styles."""
    styles = set()
    for task, rows, shuffle in (
        (gpqa, [_gpqa_row(k) for k in range(20)], {}),
        (mmlu, [json.loads(line)
                for line in benchmark_path(MMLU_PRO).read_text().splitlines()[:40]],
         {"shuffle": "true"}),
    ):
        task = task.with_options(shuffle)
        assert task.prepare is not None and task.answer_writer is not None
        for k, row in enumerate(rows):
            base = task.to_sample(row, k)
            for repeat in range(5):
                asked = task.prepare(base, attempt_seed(5, task.name, base.id, repeat), {})
                rng = random.Random(repeat * 1000 + k)
                correct = rng.random() < 0.5
                _, text = task.answer_writer(base, correct, rng, asked.messages[-1][1])
                grade = asyncio.run(task.grader(text, asked))
                assert grade.correct is correct, (text, asked.target)
                styles.add(grade.details["how"])
    assert {"answer", "boxed", "chosen"} <= styles


# -- the prompt shape ---------------------------------------------------------------------------


def test_default_prompt_is_simple_evals_with_the_questions_own_letters(gpqa: Task, mmlu: Task):
    prompt = gpqa.to_sample(_gpqa_row(5), 0).messages[-1][1]
    assert prompt == (
        "Answer the following multiple choice question. The last line of your response "
        "should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER "
        "is one of ABCD. Think step by step before answering.\n\nQuestion number 5?\n\n"
        "A) right 5\nB) wrong 5.1\nC) wrong 5.2\nD) wrong 5.3"
    )
    rows = [json.loads(line) for line in benchmark_path(MMLU_PRO).read_text().splitlines()]
    by_count = {len(r["options"]): r for r in rows}
    assert "one of ABCDEFGHIJ." in mmlu.to_sample(by_count[10], 0).messages[-1][1]
    four = mmlu.to_sample(by_count[4], 0).messages[-1][1]
    assert "one of ABCD." in four and four.endswith("\nD) " + by_count[4]["options"][3].strip())


def test_a_custom_template_with_latex_and_a_tail():
    from evals_tasks.multiple_choice import ChoicePrompt, choice_task, gpqa_question

    from evals.registry import DatasetSpec

    template = ("{question}\n\nChoices:\n{choices}\n\nPut the letter ({letters}) in "
                "\\boxed{}.")
    task = choice_task("custom", DatasetSpec("x/y", split="test"), gpqa_question,
                       shuffle=True, template=template)
    assert task.prepare is not None and task.prompt_key is not None
    base = task.to_sample(_gpqa_row(6), 0)
    assert base.messages[-1][1].endswith("D) wrong 6.3\n\nPut the letter (ABCD) in \\boxed{}.")
    asked = task.prepare(base, 11, {})
    text = asked.messages[-1][1]
    assert text.endswith("in \\boxed{}.") and text != base.messages[-1][1]
    assert task.prompt_key(text) == task.prompt_key(base.messages[-1][1])
    parts = ChoicePrompt(template).split(text)
    assert parts is not None
    order = json.loads(str(dict(asked.metadata)["permutation"]))
    assert list(parts[1]) == [["right 6", "wrong 6.1", "wrong 6.2", "wrong 6.3"][i] for i in order]
    for bad in ("{question} only", "{choices}\n{question}", "{question}{choices}{choices}"):
        with pytest.raises(ValueError, match="template"):
            ChoicePrompt(bad)


def test_options_may_span_lines_and_questions_may_hold_labelled_lines(gpqa: Task):
    row = _gpqa_row(7)
    row["Question"] = "Consider:\nA) a first claim\nB) a second claim\nWhich holds?"
    row["Incorrect Answer 2"] = "two lines\nof text"
    assert gpqa.prepare is not None and gpqa.prompt_key is not None
    base = gpqa.to_sample(row, 0)
    for seed in range(10):
        asked = gpqa.prepare(base, seed, {})
        assert gpqa.prompt_key(asked.messages[-1][1]) == gpqa.prompt_key(base.messages[-1][1])


# -- the grader ---------------------------------------------------------------------------------


def test_grader_details_and_reasons(gpqa: Task):
    assert gpqa.prepare is not None
    asked = gpqa.prepare(gpqa.to_sample(_gpqa_row(8), 0), None, {"permutation": [2, 0, 3, 1]})
    assert asked.target == "B"

    def grade(text: str):  # type: ignore[no-untyped-def]
        return asyncio.run(gpqa.grader(text, asked))

    right = grade("Option A fails.\n\nAnswer: B")
    assert (right.extracted, right.correct, right.reason) == ("B", True, "match (answer)")
    assert right.details == {"permutation": [2, 0, 3, 1], "gold_letter": "B", "how": "answer"}
    wrong = grade("\\boxed{D}")
    assert (wrong.extracted, wrong.correct, wrong.reason) == ("D", False, "mismatch (boxed)")
    by_text = grade("Answer: right 8")
    assert (by_text.extracted, by_text.correct, by_text.details["how"]) == ("B", True,
                                                                            "answer text")
    missing = grade("I am not sure.")
    assert (missing.extracted, missing.correct, missing.reason) == (None, False, "no answer found")
    invalid = grade("Answer: E")
    assert (invalid.correct, invalid.reason) == (False, "invalid letter")


def test_grader_without_choices_metadata_accepts_its_alphabet():
    grader = choice_grader(alphabet="ABCD")
    sample = Sample(id="x", messages=(("user", "q"),), target="c")
    assert asyncio.run(grader("Answer: C", sample)).correct is True
    assert asyncio.run(grader("Answer: E", sample)).reason == "invalid letter"
    bad = Sample(id="y", messages=(("user", "q"),), target="A",
                 metadata=(("choices", '["a","b"]'), ("permutation", "[0,0]")))
    with pytest.raises(ValueError, match="permutation"):
        asyncio.run(grader("Answer: A", bad))


# -- the dataset rows ---------------------------------------------------------------------------


def test_gpqa_fixture_and_shaped_sample_load(gpqa: Task):
    from evals.data import load_task_data

    fixture = load_task_data(gpqa, GPQA_FIXTURE)
    assert len(fixture.samples) == 12
    by_id = {s.id: s for s in fixture.samples}
    # CSV readers turn "2" into 2; the option is text again.
    assert json.loads(str(dict(by_id["fx-chem-01"].metadata)["choices"]))[0] == "2"
    assert "\n" in by_id["fx-phys-04"].messages[-1][1].split("\n\nA) ")[0]
    assert {dict(s.metadata)["domain"] for s in fixture.samples} == {"Physics", "Chemistry",
                                                                     "Biology"}
    shaped = load_task_data(gpqa,
                            benchmark_path("mmlu_pro_sample/gpqa_shaped_from_mmlu_pro.jsonl"))
    assert len(shaped.samples) == 200 and all(s.target == "A" for s in shaped.samples)


def test_gpqa_row_errors_name_the_field():
    from evals_tasks.multiple_choice import gpqa_question

    row = _gpqa_row(9)
    del row["Incorrect Answer 2"]
    with pytest.raises(KeyError, match="Incorrect Answer 2"):
        gpqa_question(row, 0)
    row = _gpqa_row(9) | {"Question": "   "}
    with pytest.raises(ValueError, match="Question"):
        gpqa_question(row, 0)


def test_mmlu_pro_rows(mmlu: Task):
    from evals_tasks.multiple_choice import mmlu_pro_question

    from evals.data import load_task_data

    loaded = load_task_data(mmlu, benchmark_path(MMLU_PRO))
    assert len(loaded.samples) == 200
    assert Counter(dict(s.metadata)["category"] for s in loaded.samples) == {
        "physics": 70, "chemistry": 70, "biology": 60}
    rows = [json.loads(line) for line in benchmark_path(MMLU_PRO).read_text().splitlines()]
    assert all(s.target == r["answer"] for s, r in zip(loaded.samples, rows, strict=True))
    padded = dict(rows[0], options=["N/A", *rows[0]["options"], "N/A"],
                  answer=ALPHABET[rows[0]["answer_index"] + 1],
                  answer_index=rows[0]["answer_index"] + 1)
    q = mmlu_pro_question(padded, 0)
    assert q.choices == tuple(rows[0]["options"]) and q.gold == rows[0]["answer_index"]
    with pytest.raises(ValueError, match="disagrees"):
        mmlu_pro_question(dict(rows[0], answer="J"), 0)
    with pytest.raises(ValueError, match="N/A"):
        mmlu_pro_question(dict(rows[0], options=["N/A", "x"], answer="A", answer_index=0), 0)
    with pytest.raises(ValueError, match="answer_index"):
        mmlu_pro_question(dict(rows[0], answer=None, answer_index=42), 0)


# -- the gated dataset --------------------------------------------------------------------------

_DENYING_HUB = r"""
import http.server, sys
class Deny(http.server.BaseHTTPRequestHandler):
    def deny(self):
        # What the hub answers for a gated repository without an accepted request.
        message = ("Access to dataset Idavidrein/gpqa is restricted. You must have access "
                   "to it and be authenticated to access it. Please log in.")
        body = ('{"error": "%s"}' % message).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Error-Code", "GatedRepo")
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    do_GET = do_HEAD = do_POST = deny
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Deny)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_LOAD_GPQA = r"""
import os
from evals.data import load_task_data
from evals.errors import DataError
from evals.registry import Registry
task = Registry(entry_points=False).get("gpqa_diamond")
for token in (None, "hf_not_granted_0123"):
    if token:
        os.environ["HF_TOKEN"] = token
    try:
        load_task_data(task)
    except DataError as exc:
        print(exc)
    else:
        print("LOADED")
"""


def test_gated_gpqa_gives_one_message_with_the_page_and_the_variable(tmp_path):
    """A local server answers 401 the way the hub does for a gated dataset. ``datasets``
    reads HF_ENDPOINT when imported, so the loads run in a fresh interpreter: one without a
    token, one with a token that was not granted access."""
    server = subprocess.Popen([sys.executable, "-c", _DENYING_HUB], stdout=subprocess.PIPE,
                              text=True)
    token = "hf_not_granted_0123"
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
        env.update(HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HOME=str(tmp_path / "hf"),
                   HF_DATASETS_CACHE=str(tmp_path / "ds"), EVALS_CACHE_DIR=str(tmp_path / "c"))
        done = subprocess.run([sys.executable, "-c", _LOAD_GPQA], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    assert done.returncode == 0, done.stderr
    messages = done.stdout.strip().splitlines()
    assert len(messages) == 2, done.stdout  # one line each: a single message, no cascade
    for message in messages:
        assert "https://huggingface.co/datasets/Idavidrein/gpqa" in message, message
        assert "accept its terms" in message and "HF_TOKEN" in message
        assert "--data gpqa_diamond=PATH" in message
        assert message.count("HF_TOKEN") <= 2
    assert "HF_TOKEN is not set" in messages[0]
    assert "refused that token" in messages[1] and token not in messages[1]
