"""The Python API (load_run, summarize), the figures, report.html and `evals runs`,
on real simulated runs of AIME 2025 (the page itself in a browser: test_report_browser)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from evals import api, plots
from evals.cli_reports import report, runs
from evals.errors import DataError
from evals.runner import RunConfig, run
from evals.runs import list_runs
from evals.simulator import AnswerBook, SimConfig, SimulatorThread


def _make_run(out: Path, data: Path, accuracy: float, run_seed: int, model: str,
              truncate: float = 0.0) -> Path:
    book = AnswerBook.from_tasks(["aime2025"], {"aime2025": data})
    with SimulatorThread(SimConfig(accuracy=accuracy, truncate=truncate), book) as sim:
        cfg = RunConfig(tasks=("aime2025",), model=model, provider="simulator",
                        base_url=sim.base_url, n=3, data=(("aime2025", data),),
                        seed=run_seed, out=out, concurrency=32)
        asyncio.run(run(cfg))
    return out


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, aime2025_path: Path) -> list[Path]:
    root = tmp_path_factory.mktemp("reports")
    # A model with published AIME 2025 scores, so the published comparison is filled in.
    return [_make_run(root / "results" / "night1", aime2025_path, 0.8, 1,
                      "magistral-small-2509", truncate=0.1),
            _make_run(root / "results" / "night2", aime2025_path, 0.6, 2, "sim-reasoner")]


def test_load_run_decodes_the_json_columns(two_runs):
    loaded = api.load_run(two_runs[0])
    df = loaded.attempts
    assert len(df) == 90 and loaded.model == "magistral-small-2509" and loaded.simulated
    assert all(isinstance(m, dict) for m in df["metadata"])
    assert set(df["meta_contest"]) == {"AIME I", "AIME II"}
    assert loaded.manifest["status"] == "complete"
    assert loaded.subsets == {"aime2025": ("contest",)}
    assert loaded.pass_k_tasks == frozenset()
    assert api.load_run(loaded) is loaded


def test_summarize_gives_the_numbers_of_summary_csv(two_runs):
    loaded = api.load_run(two_runs[0])
    ours = api.summarize(loaded)
    written = pd.read_csv(two_runs[0] / "summary.csv")
    for column in ("score", "se", "ci_low", "ci_high", "problems", "scored", "truncated"):
        assert list(ours[column]) == pytest.approx(list(written[column])), column
    assert list(ours["subset"]) == ["", "contest", "contest"]


def test_summarize_a_slice_of_the_table(two_runs):
    df = api.load_run(two_runs[0]).attempts
    hard = df[df["meta_contest"] == "AIME II"]
    table = api.summarize(hard)
    assert list(table["subset"]) == [""] and table.iloc[0].problems == 15
    direct = hard.groupby("sample_id")["correct"].mean().mean()
    assert table.iloc[0].score == pytest.approx(direct)
    assert api.summarize(two_runs[0]).iloc[0].score == api.load_run(
        two_runs[0]).summary.iloc[0].score


def test_load_run_names_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="no manifest.json"):
        api.load_run(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(DataError, match="'running'.*rerun its command"):
        api.load_run(tmp_path)


def test_prompts_come_from_the_store_when_no_column_has_them(two_runs):
    prompts = api.prompts_from_store(api.load_run(two_runs[1]))
    assert len(prompts) == 30
    messages = prompts[("aime2025", "2025-I-1")]
    assert messages[-1]["role"] == "user" and "boxed" in messages[-1]["content"]
    assert not list(two_runs[1].glob("store.sqlite-*"))  # reading leaves no file behind


@pytest.mark.parametrize("name", ["published", "grid", "length", "usage", "pass_at_k"])
def test_every_figure_has_a_title_axis_labels_and_a_legend(two_runs, name):
    loaded = api.load_run(two_runs[0])
    fig = {
        "published": lambda: plots.plot_published([loaded, api.load_run(two_runs[1])]),
        "grid": lambda: plots.plot_verdict_grid(loaded),
        "length": lambda: plots.plot_score_vs_length(loaded),
        "usage": lambda: plots.plot_usage(loaded),
        "pass_at_k": lambda: plots.plot_pass_at_k(loaded, tasks=["aime2025"]),
    }[name]()
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), name
        assert ax.get_legend() is not None, name
        assert "(" in ax.get_xlabel() or "(" in ax.get_ylabel(), "units or meaning"


def test_truncations_are_marked_on_the_length_figure(two_runs):
    fig = plots.plot_score_vs_length(api.load_run(two_runs[0]))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("truncated" in label for label in labels)


def test_pass_at_k_of_a_run_without_code_tasks_says_so(two_runs):
    with pytest.raises(DataError, match="no code task"):
        plots.plot_pass_at_k(api.load_run(two_runs[0]))


def test_report_writes_the_page_and_the_figures(two_runs):
    result = CliRunner().invoke(report, [str(two_runs[0])])
    assert result.exit_code == 0, result.output
    page = two_runs[0] / "report.html"
    assert page.is_file() and str(page) in result.output.replace("\n", "")
    figures = two_runs[0] / "figures"
    for stem in ("published", "grid_aime2025", "score_vs_length", "usage"):
        assert (figures / f"{stem}.png").stat().st_size > 1000
        assert (figures / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    text = page.read_text()
    assert "77.34" in text and "consistent" in text  # the published comparison
    assert text.count('class="problem"') == 30
    assert "http://" not in text.replace(api.load_run(two_runs[0]).manifest["endpoint"][
        "base_url"], "") and "https://cdn" not in text


def test_several_runs_make_one_comparison_page(two_runs, tmp_path):
    result = CliRunner().invoke(report, [*map(str, two_runs), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cmp" / "report.html").read_text()
    assert "Comparison of runs: night1, night2" in text
    assert 'id="comparison"' in text and 'id="flipped"' in text
    assert (tmp_path / "cmp" / "figures" / "run2_grid_aime2025.png").is_file()


def test_model_text_is_escaped_in_the_page(two_runs, tmp_path):
    folder = tmp_path / "hostile"
    shutil.copytree(two_runs[1], folder)
    df = pd.read_parquet(folder / "samples.parquet")
    df.loc[0, "response"] = "<script>alert('x')</script> answer \\boxed{<b>5</b>}"
    df.to_parquet(folder / "samples.parquet")
    result = CliRunner().invoke(report, [str(folder)])
    assert result.exit_code == 0, result.output
    text = (folder / "report.html").read_text()
    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)" in text


def test_report_of_a_missing_run_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(report, [str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_runs_lists_every_run_and_plots_the_history(two_runs):
    root = two_runs[0].parent
    unfinished = root / "night3"
    unfinished.mkdir()
    (unfinished / "manifest.json").write_text(json.dumps(
        {"kind": "run", "status": "running", "started": "2030-01-01T00:00:00+00:00",
         "config": {"model": "m", "tasks": ["aime2025"], "n": 2}}))
    table = list_runs(root)
    assert list(table["run"]) == ["night3", "night2", "night1"]  # newest first
    assert table.iloc[0].status == "running" and pd.isna(table.iloc[0].score)
    assert table.iloc[2].model == "magistral-small-2509" and table.iloc[2].n == 3
    assert 0 < table.iloc[2].score < 1 and table.iloc[2].ci_low < table.iloc[2].score
    result = CliRunner().invoke(runs, [str(root), "--plot"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "night1" in result.output and "running" in result.output
    assert (root / "runs_history.png").is_file() and (root / "runs_history.svg").is_file()


def test_runs_of_a_missing_folder_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(runs, [str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_failed_requests_are_shown_as_not_scored(tmp_path, aime2025_path):
    out = tmp_path / "faulty"
    book = AnswerBook.from_tasks(["aime2025"], {"aime2025": aime2025_path})
    with SimulatorThread(SimConfig(accuracy=0.7, fault_500=0.3, seed=3), book) as sim:
        asyncio.run(run(RunConfig(tasks=("aime2025",), model="m", provider="simulator",
                                  base_url=sim.base_url, n=2, max_retries=0, seed=1,
                                  data=(("aime2025", aime2025_path),), out=out)))
    loaded = api.load_run(out)
    errors = int((loaded.attempts["outcome"] == "error").sum())
    assert errors > 0
    fig = plots.plot_verdict_grid(loaded)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "not scored" in labels
    table = api.summarize(loaded)
    assert table.iloc[0].error == errors and table.iloc[0].scored == 60 - errors
    from evals.html_report import write_report

    text = write_report([loaded]).read_text()
    assert text.count("not scored (error)") == errors
