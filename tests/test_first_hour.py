"""A newcomer's first hour, through the command line as a user types it.

Every bad input gets one line (the shared ``error:`` prefix, no traceback) before any
request is sent, a run that could not score everything exits non-zero, resume is visible,
and the README's Python example runs as written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pandas as pd
import pytest

from tests.helpers import read_log

EVALS = [sys.executable, "-m", "evals.cli"]
README = Path(__file__).resolve().parents[1] / "README.md"


def _evals(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return subprocess.run([*EVALS, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd=cwd)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), done.stderr
    return done.stderr


def _mmlu_rows() -> list[dict[str, object]]:
    """Three MMLU-Pro-shaped rows of our own; the second contradicts itself (its answer
    letter disagrees with its index, as one row of a published dump does)."""
    base = {"options": ["2", "3", "4", "5"], "category": "math", "src": "ours",
            "cot_content": ""}
    return [
        {**base, "question_id": 1, "question": "What is 1 + 1?", "answer": "A",
         "answer_index": 0},
        {**base, "question_id": 2, "question": "What is 1 + 2?", "answer": "C",
         "answer_index": 1},
        {**base, "question_id": 3, "question": "What is 2 + 2?", "answer": "C",
         "answer_index": 2},
    ]


@pytest.mark.parametrize(("args", "expected"), [
    (["--limit", "-1"], "--limit -1: give a number of problems of at least 1"),
    (["--limit", "0"], "--limit 0: give a number of problems of at least 1"),
    (["--n", "0"], "--n 0: the number of repeats must be at least 1"),
    (["--max-cost", "0"], "--max-cost 0.0: give a budget in USD above 0"),
    (["--option", "nonsense=1"], "No task of this run accepts the option(s) nonsense"),
    (["--profile", "magistrall-1.2"], "Did you mean"),
], ids=["limit-negative", "limit-zero", "n-zero", "budget-zero", "unknown-option",
        "unknown-profile"])
def test_bad_flags_get_one_line_before_any_request(simulator, aime2025_path, tmp_path, args,
                                                   expected):
    with simulator({"aime2025": aime2025_path}, accuracy=1.0) as sim:
        done = _evals("run", "aime2025", "--model", "m", "--base-url", sim.base_url, "--data",
                      str(aime2025_path), "--out", str(tmp_path / "run"), *args)
        assert read_log(sim.request_log) == []
    assert expected in _one_error_line(done)


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "http:///v1", "http://h:99999/v1"],
                         ids=["no-scheme", "no-host", "bad-port"])
def test_a_malformed_base_url_is_refused(aime2025_path, tmp_path, url):
    done = _evals("run", "aime2025", "--model", "m", "--base-url", url, "--data",
                  str(aime2025_path), "--out", str(tmp_path / "run"))
    assert "is not an http(s) URL with a host" in _one_error_line(done)
    assert not (tmp_path / "run").exists()


def test_an_out_folder_that_cannot_be_written(simulator, aime2025_path, tmp_path):
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    with simulator({"aime2025": aime2025_path}, accuracy=1.0) as sim:
        for out in (in_the_way / "run", Path("/proc/evals-run")):
            done = _evals("run", "aime2025", "--model", "m", "--base-url", sim.base_url,
                          "--data", str(aime2025_path), "--out", str(out))
            assert f"--out {out}: cannot write the run folder there" in _one_error_line(done)
        assert read_log(sim.request_log) == []
    assert in_the_way.read_text() == "not a folder"  # nothing lost


def test_a_malformed_jsonl_line_is_named_once(aime2025_path, tmp_path):
    lines = aime2025_path.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:3], '{"problem": "x", "answer": ', *lines[3:5]]) + "\n")
    done = _evals("run", "aime2025", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                  "--data", str(bad), "--out", str(tmp_path / "run"))
    text = _one_error_line(done)
    assert "line 4 is not valid JSON" in text
    assert text.count("line 4") == 1 and "position" not in text


def test_rows_missing_a_field_give_one_line_per_problem(aime2025_path, tmp_path):
    rows = [json.loads(line) for line in aime2025_path.read_text().splitlines()]
    broken = tmp_path / "broken.jsonl"
    with broken.open("w") as fh:
        for i, row in enumerate(rows):
            for key in ("answer", "answer_str", "Answer"):
                row.pop(key, None)
            if i == 3:
                row["answer"] = "twelve"
            fh.write(json.dumps(row) + "\n")
    done = _evals("run", "aime2025", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                  "--data", str(broken), "--out", str(tmp_path / "run"))
    text = _one_error_line(done)
    assert f"{len(rows)} of {len(rows)} row(s)" in text
    assert re.search(rf"{len(rows) - 1} x KeyError: none of the fields answer", text)
    assert "1 x ValueError: answer 'twelve' is not an integer (row 4)" in text
    assert text.count("none of the fields") == 1


def test_skip_bad_rows_grades_the_rest_and_lists_what_it_skipped(simulator, tmp_path):
    data = tmp_path / "mmlu.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _mmlu_rows()))
    refused = _evals("run", "mmlu_pro", "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                     "--data", str(data), "--out", str(tmp_path / "refused"))
    assert "answer 'C' disagrees with answer_index 1 (row 2)" in _one_error_line(refused)
    assert "--skip-bad-rows" in refused.stderr
    out = tmp_path / "run"
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for i, r in enumerate(_mmlu_rows()) if i != 1))
    with simulator({"mmlu_pro": good}, accuracy=1.0) as sim:
        done = _evals("run", "mmlu_pro", "--model", "m", "--base-url", sim.base_url, "--data",
                      str(data), "--out", str(out), "--skip-bad-rows")
    assert done.returncode == 0, done.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    skipped = manifest["datasets"]["mmlu_pro"]["skipped_rows"]
    assert [s["row"] for s in skipped] == [2]
    assert "1 data row(s) of mmlu_pro skipped" in (out / "summary.md").read_text()
    assert manifest["attempts"] == 2


def test_a_run_with_failed_requests_exits_3_and_says_how_to_finish(simulator, aime2025_path,
                                                                   tmp_path):
    out = tmp_path / "run"
    args = ["run", "aime2025", "--model", "m", "--data", str(aime2025_path), "--n", "1",
            "--out", str(out), "--max-retries", "0"]
    with simulator({"aime2025": aime2025_path}, accuracy=1.0, fault_500=0.3, seed=5) as sim:
        done = _evals(*args, "--base-url", sim.base_url)
    assert done.returncode == 3, done.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    failed = manifest["counts"]["error"]
    assert failed > 0 and manifest["status"] == "incomplete"
    assert f"{failed} attempt(s) not scored: their requests failed" in done.stdout
    assert "Rerunning the same command retries exactly those." in done.stdout
    summary = (out / "summary.md").read_text()
    assert f"**{failed} attempt(s) not scored**" in summary
    assert "Rerunning the same command retries exactly those" in summary
    # The rerun asks only the failed ones, says what it resumed, and completes.
    with simulator({"aime2025": aime2025_path}, accuracy=1.0) as sim:
        again = _evals(*args, "--base-url", sim.base_url)
        asked = len(read_log(sim.request_log))
    assert again.returncode == 0, again.stderr
    assert asked == failed
    assert f"Attempts: {failed} asked, {30 - failed} resumed from the store." in again.stdout
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["status"] == "complete"
    assert (manifest["attempts_asked"], manifest["attempts_resumed"]) == (failed, 30 - failed)
    assert f"{failed} asked, {30 - failed} resumed" in (out / "summary.md").read_text()


def test_the_samples_table_reads_as_documented(simulator, aime2025_path, tmp_path):
    out = tmp_path / "run"
    with simulator({"aime2025": aime2025_path}, accuracy=1.0) as sim:
        done = _evals("run", "aime2025", "--model", "m", "--base-url", sim.base_url, "--data",
                      str(aime2025_path), "--out", str(out), "--n", "1", "--limit", "2",
                      "--system-prompt", "Be brief.")
    assert done.returncode == 0, done.stderr
    table = pd.read_parquet(out / "samples.parquet")
    messages = json.loads(table["messages"][0])
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["role"] == "user" and "boxed" in messages[1]["content"]
    first = orjson.loads((out / "samples.jsonl").read_bytes().splitlines()[0])
    assert isinstance(first["metadata"], dict) and isinstance(first["messages"], list)
    # The README's column names are the table's.
    readme = README.read_text()
    for column in table.columns:
        assert f"`{column}`" in readme, column


def test_the_readme_python_example_runs_offline_as_written(tmp_path):
    text = README.read_text()
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    done = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "demo_math" in done.stdout
    assert (tmp_path / "results" / "api-demo" / "samples.parquet").is_file()


def test_the_api_takes_plain_values_and_lists_its_names(aime2025_path, tmp_path):
    import evals

    cfg = evals.RunConfig(tasks="aime2025", model="m", data={"aime2025": str(aime2025_path)},
                          out=str(tmp_path / "x"), tasks_dirs=str(tmp_path))
    assert cfg.tasks == ("aime2025",)
    assert cfg.data == (("aime2025", aime2025_path),)
    assert cfg.out == tmp_path / "x" and cfg.tasks_dirs == (tmp_path,)
    listed = dir(evals)
    for name in evals.__all__:
        assert name in listed


def test_help_and_simulate_point_the_way(aime2025_path):
    top = _evals("--help")
    for kind in ("AIME", "MATH-500", "GPQA", "MMLU-Pro", "LiveCodeBench", "HumanEval"):
        assert kind in top.stdout
    run_help = _evals("run", "--help")
    assert "[default: (the task's)]" in run_help.stdout
    process = subprocess.Popen([*EVALS, "simulate", "--task", "aime2025", "--data",
                                str(aime2025_path), "--port", "0"], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None
        first, second = process.stdout.readline(), process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert "listening on http://127.0.0.1:" in first
    assert re.match(r"\s+evals run aime2025 --base-url http://127.0.0.1:\d+/v1 --model "
                    r"sim-model --data ", second)


def test_a_run_off_a_terminal_prints_progress_before_it_ends(simulator, aime2025_path,
                                                             tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["EVALS_PROGRESS_INTERVAL"] = "0.2"
    with simulator({"aime2025": aime2025_path}, accuracy=0.7, latency_ms=60) as sim:
        process = subprocess.Popen(
            [*EVALS, "run", "aime2025", "--model", "m", "--base-url", sim.base_url, "--data",
             str(aime2025_path), "--n", "2", "--concurrency", "2", "--out",
             str(tmp_path / "run")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env)
        assert process.stdout is not None
        first = process.stdout.readline()
        running = process.poll() is None
        rest, errors = process.communicate(timeout=300)
    assert process.returncode == 0, errors
    assert running, "the first progress line came only once the run had ended"
    assert re.match(r"progress: \d+/60 attempts \(\d+%\), score so far ", first)
    lines = [first, *rest.splitlines()]
    progress = [line for line in lines if line.startswith("progress: ")]
    assert len(progress) >= 2 and progress[-1].startswith("progress: 60/60 attempts (100%)")
    assert "Attempts: 60 asked, 0 resumed from the store." in rest


def test_a_401_without_a_key_is_one_sentence(simulator, aime2025_path, tmp_path):
    with simulator({"aime2025": aime2025_path}, accuracy=1.0, api_key="secret") as sim:
        done = _evals("run", "aime2025", "--model", "m", "--base-url", sim.base_url, "--data",
                      str(aime2025_path), "--out", str(tmp_path / "run"), "--n", "1")
        asked = len(read_log(sim.request_log))
    text = _one_error_line(done)
    assert "answered 401" in text and "the API key is missing" in text
    assert text.count("--api-key-env") == 1 and len(text.strip().splitlines()) == 1
    assert asked <= 1  # refused at once: no retry can fix a key
