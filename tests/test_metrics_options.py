"""pass@k, summaries with per-task columns, and task options (--since/--release/--option)."""

from __future__ import annotations

import csv
import itertools
import math
import random
from pathlib import Path

import orjson
import pytest
from helpers import read_log, run_sync

from evals.errors import ConfigError
from evals.metrics import pass_at_k, summarize
from evals.registry import Registry
from evals.report import write_summary
from evals.runner import RunConfig, run


@pytest.mark.parametrize(("n", "c", "k"), [(1, 0, 1), (1, 1, 1), (5, 2, 3), (10, 3, 2),
                                           (20, 0, 5), (20, 19, 20), (200, 7, 100)])
def test_pass_at_k_equals_the_combinatorial_formula(n, c, k):
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_is_the_chance_that_some_of_k_draws_is_correct():
    # Enumerate every k-subset of a fixed attempt list: the estimator is that average.
    attempts = [True, False, False, True, False, False]
    for k in range(1, len(attempts) + 1):
        subsets = list(itertools.combinations(attempts, k))
        expected = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(len(attempts), sum(attempts), k) == pytest.approx(expected)


def test_pass_at_k_rejects_impossible_arguments():
    with pytest.raises(ValueError, match="pass@4"):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError, match="c = 5"):
        pass_at_k(3, 5, 1)


def _rows(task: str, results: dict[str, list[bool]]) -> list[dict[str, object]]:
    return [{"task": task, "sample_id": pid, "repeat": r, "outcome": "answered",
             "correct": ok, "metadata": orjson.dumps({"kind": pid[0]}).decode()}
            for pid, oks in results.items() for r, ok in enumerate(oks)]


def test_summary_reports_pass_at_k_only_for_tasks_that_ask(tmp_path):
    code = {"a1": [True, False, False], "a2": [False, False, False], "b1": [True, True, False]}
    math_rows = _rows("maths", {"x": [True], "y": [False]})
    rows = _rows("code", code) + math_rows
    summary = summarize(rows, {"code": ("kind",)}, frozenset({"code"}))
    top = {r["task"]: r for r in summary if not r["subset"]}
    expected = {k: sum(pass_at_k(3, sum(v), k) for v in code.values()) / 3 for k in (1, 2, 3)}
    for k, value in expected.items():
        assert top["code"][f"pass@{k}"] == pytest.approx(value)
    assert top["code"]["pass@1"] == pytest.approx(top["code"]["score"])
    assert not any(key.startswith("pass@") for key in top["maths"])
    by_kind = {r["value"]: r for r in summary if r["subset"] == "kind"}
    assert by_kind["b"]["pass@2"] == pytest.approx(pass_at_k(3, 2, 2))
    # summary.csv holds the union of the columns; the markdown has a pass@k table.
    write_summary(tmp_path, summary, {"config": {"model": "m"}})
    with (tmp_path / "summary.csv").open() as fh:
        read = list(csv.DictReader(fh))
    assert {"pass@3", "score"} <= set(read[0])
    assert next(r for r in read if r["task"] == "maths")["pass@3"] == ""
    assert "| pass@1 | pass@2 | pass@3 |" in (tmp_path / "summary.md").read_text()


DATED_PLUGIN = '''
from evals import Task, DatasetSpec, task
from evals.errors import ConfigError
from evals.grading.aime import grade_aime
from evals_tasks.aime import aime_sample

def _dated(row, index):
    sample = aime_sample(row, index)
    day = 1 + (index % 28)
    return type(sample)(sample.id, sample.messages, sample.target,
                        sample.metadata + (("date", f"2025-02-{day:02d}"),))

def _configure(base, options):
    since, until = options.get("since", ""), options.get("until", "9999")
    if "release" in options:
        if options["release"] not in ("early", "late"):
            raise ConfigError(f"--release {options['release']!r}: use early or late")
        since, until = (("", "2025-02-14") if options["release"] == "early"
                        else ("2025-02-15", "9999"))
    keep = lambda s: since <= dict(s.metadata)["date"] <= until
    return Task(**{**base, "keep": keep})

@task("dated")
def make() -> Task:
    """AIME with made-up dates, to test task options."""
    base = dict(name="dated", dataset=DatasetSpec("me/dated", split="test"),
                to_sample=_dated, grader=grade_aime, options=("since", "until", "release"))
    return Task(**base, configure=lambda options: _configure(base, options))
'''


@pytest.fixture
def dated_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "dated.py").write_text(DATED_PLUGIN)
    return folder


def test_options_filter_the_problems_and_change_the_run_folder(simulator, aime2025_path,
                                                              tmp_path, dated_dir):
    registry = Registry(tasks_dirs=(dated_dir,))
    with simulator({"aime2025": aime2025_path}) as sim:
        def go(options: tuple[tuple[str, str], ...]) -> tuple[int, str]:
            cfg = RunConfig(tasks=("dated",), model="m", base_url=sim.base_url,
                            data=(("dated", aime2025_path),), n=1, options=options,
                            tasks_dirs=(dated_dir,), results_dir=tmp_path / "results")
            result = run_sync(run(cfg))
            return int(result.summary_rows[0]["problems"]), cfg.identity()

        everything, ident_all = go(())
        window, ident_window = go((("since", "2025-02-10"), ("until", "2025-02-20")))
        late, _ = go((("release", "late"),))
    assert everything == 30
    dates = [1 + (i % 28) for i in range(30)]
    assert window == sum(10 <= d <= 20 for d in dates)
    assert late == sum(d >= 15 for d in dates)
    assert ident_all != ident_window  # another selection, another run folder
    assert registry.get("dated").options == ("since", "until", "release")


def test_bad_options_are_refused_with_the_options_accepted(dated_dir, aime2025_path, tmp_path):
    def go(tasks: tuple[str, ...], options: tuple[tuple[str, str], ...]) -> None:
        cfg = RunConfig(tasks=tasks, model="m", base_url="http://127.0.0.1:9/v1",
                        data=tuple((t, aime2025_path) for t in tasks), options=options,
                        tasks_dirs=(dated_dir,), results_dir=tmp_path)
        run_sync(run(cfg))

    with pytest.raises(ConfigError, match=r"accepts the option\(s\) shuffle.*dated: since"):
        go(("dated",), (("shuffle", "yes"),))
    with pytest.raises(ConfigError, match="--release 'v9': use early or late"):
        go(("dated",), (("release", "v9"),))
    with pytest.raises(ConfigError, match=r"aime2025: prompt"):
        go(("aime2025",), (("since", "2025-01-01"),))
    with pytest.raises(ConfigError, match="does not accept"):
        Registry().get("aime2025").with_options({"since": "2025-01-01"})


def test_cli_option_parsing():
    from evals.cli import task_options

    assert task_options("2024-08-01", None, "v5", ["shuffle=true", " x = y "]) == (
        ("release", "v5"), ("shuffle", "true"), ("since", "2024-08-01"), ("x", "y"))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        task_options(None, None, None, ["shuffle"])


def test_attempt_requests_are_the_same_on_rerun_with_prepare(simulator, aime2025_path,
                                                             tmp_path):
    """A task whose prompt varies per attempt (prepare) resumes without re-asking."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "varied.py").write_text('''
from evals import Task, DatasetSpec, task
from evals.grading.aime import grade_aime
from evals_tasks.aime import aime_sample
import random

def prepare(sample, seed, given):
    tag = random.Random(seed).randint(0, 10**9) if seed is not None else "none"
    role, text = sample.messages[0]
    return type(sample)(sample.id, ((role, text + f" [variant {tag}]"),), sample.target,
                        sample.metadata + (("variant", str(tag)),))

@task("varied")
def make() -> Task:
    return Task(name="varied", dataset=DatasetSpec("me/v", split="test"),
                to_sample=aime_sample, grader=grade_aime, prepare=prepare,
                prompt_key=lambda prompt: prompt.split(" [variant")[0])
''')
    from evals.simulator import AnswerBook, SimConfig, SimulatorThread

    book = AnswerBook.from_tasks(["varied"], {"varied": aime2025_path}, (folder,))
    log = tmp_path / "log.jsonl"
    with SimulatorThread(SimConfig(accuracy=1.0), book, request_log=log) as sim:
        cfg = RunConfig(tasks=("varied",), model="m", base_url=sim.base_url, n=3,
                        data=(("varied", aime2025_path),), tasks_dirs=(folder,),
                        out=tmp_path / "run", seed=random.Random(1).randint(0, 99))
        first = run_sync(run(cfg))
        second = run_sync(run(cfg))
    served = read_log(log)
    assert len(served) == 90  # the rerun asked nothing again
    assert all(entry["task"] == "varied" for entry in served)  # every variant recognised
    assert first.summary_rows[0]["score"] == 1.0 == second.summary_rows[0]["score"]
