"""Suites: the shipped ones load, user files load, malformed files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.errors import ConfigError
from evals.profiles import get_profile
from evals.suites import Suite, SuiteTask, load_suite, shipped_suites

KNOWN_TASKS = {"aime2024", "aime2025", "math500", "gpqa_diamond", "mmlu_pro", "livecodebench",
               "humaneval"}
SHIPPED = ["deepseek-r1", "magistral-medium-1.2", "magistral-small-1.0", "magistral-small-1.2",
           "qwen3-thinking"]


def test_the_shipped_suites_are_listed() -> None:
    assert [suite.name for suite in shipped_suites()] == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_suite_loads_and_is_consistent(name: str) -> None:
    suite = load_suite(name)
    assert suite.name == name
    assert suite.description and suite.source and suite.source.startswith("https://")
    assert suite.tasks
    assert {task.name for task in suite.tasks} <= KNOWN_TASKS
    if suite.profile is not None:
        get_profile(suite.profile)  # raises on an unknown profile


def test_deepseek_r1_suite_matches_the_readme() -> None:
    suite = load_suite("deepseek-r1")
    tasks = {task.name: task for task in suite.tasks}
    assert all(task.n == 64 and task.max_tokens == 32768 for task in suite.tasks)
    assert dict(tasks["livecodebench"].options) == {
        "release": "release_v5", "since": "2024-08-01", "until": "2025-01-31"}
    assert dict(tasks["aime2024"].options) == {"prompt": "r1"}


def test_a_user_suite_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'description = "quick check"\nmodel = "Qwen/Qwen3-8B"\n\n'
        '[[task]]\nname = "aime2025"\nn = 4\n\n'
        '[[task]]\nname = "livecodebench"\n'
        "options = { since = 2024-08-01, release = \"release_v5\", strict = true }\n")
    suite = load_suite(str(path))
    assert suite == Suite(
        name="mine", description="quick check", model="Qwen/Qwen3-8B", profile=None,
        source=None, path=str(path),
        tasks=(SuiteTask("aime2025", 4, None, ()),
               SuiteTask("livecodebench", None, None,
                         (("since", "2024-08-01"), ("release", "release_v5"),
                          ("strict", "true")))))
    assert load_suite(path) == suite  # a Path works too


def test_unknown_suite_name_suggests_and_lists() -> None:
    with pytest.raises(ConfigError) as info:
        load_suite("deepseek-r2")
    message = str(info.value)
    assert "Unknown suite 'deepseek-r2'" in message
    assert "Did you mean: deepseek-r1" in message
    assert "magistral-small-1.2" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read suite file"):
        load_suite(str(tmp_path / "nope.toml"))


TASK = '[[task]]\nname = "aime2024"\n'
MALFORMED = [
    pytest.param('nme = "x"\n' + TASK, ["unknown key 'nme'", "Did you mean: name"],
                 id="unknown-top-level-key"),
    pytest.param('[[task]]\nname = "aime2024"\nsamples = 4\n',
                 ["task 'aime2024'", "unknown key 'samples'"], id="unknown-task-key"),
    pytest.param('[[task]]\nname = "aime2024"\nn = 0\n',
                 ["task 'aime2024'", "'n' must be a positive integer"], id="n-zero"),
    pytest.param('[[task]]\nname = "aime2024"\nn = "16"\n',
                 ["'n' must be a positive integer"], id="n-a-string"),
    pytest.param('[[task]]\nname = "aime2024"\nn = true\n',
                 ["'n' must be a positive integer"], id="n-a-boolean"),
    pytest.param('[[task]]\nname = "aime2024"\nmax_tokens = 1.5\n',
                 ["'max_tokens' must be a positive integer"], id="max-tokens-a-float"),
    pytest.param('name = "x"\n', ["has no tasks", "[[task]]"], id="no-tasks"),
    pytest.param('[task]\nname = "aime2024"\n', ["must be [[task]] tables"], id="single-table"),
    pytest.param(TASK + TASK, ["task 'aime2024' is listed twice"], id="duplicate-task"),
    pytest.param("[[task]]\nn = 4\n", ["[[task]] #1 needs name"], id="task-without-name"),
    pytest.param('[[task]]\nname = "aime2024"\noptions = "r1"\n',
                 ["'options' must be a table"], id="options-not-a-table"),
    pytest.param('[[task]]\nname = "aime2024"\noptions = { prompt = ["r1"] }\n',
                 ["option 'prompt' must be a string"], id="option-a-list"),
    pytest.param('model = 7\n' + TASK, ["'model' must be a non-empty string"], id="model-an-int"),
    pytest.param('name = "x\n' + TASK, ["not valid TOML"], id="bad-toml"),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_suites_name_the_file_and_field(tmp_path: Path, text: str,
                                                  expected: list[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message
