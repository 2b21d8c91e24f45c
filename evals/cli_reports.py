"""The reporting commands: ``evals report``, ``evals compare``, ``evals runs``.

Thin over ``evals.api``, ``evals.comparison``, ``evals.html_report``, ``evals.runs`` and
``evals.plots``; ``evals.cli`` registers them on the main group. Exit statuses: 0 done;
1 only from ``compare --fail-on-drop`` when the gate fails; 2 for a bad input (one line on
stderr naming the input and the fix), as for click's own usage errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar

import click

from evals.errors import EvalsError

if TYPE_CHECKING:
    from evals.api import Run

__all__ = ["compare", "report", "runs"]

T = TypeVar("T")


def _fail(exc: BaseException) -> NoReturn:
    message = " ".join(str(exc).split())
    click.echo(f"error: {message}", err=True)
    raise click.exceptions.Exit(2)


def _guard(action: Callable[[], T]) -> T:
    """Run ``action``; a harness error (or a missing/unreadable file) becomes one line on
    stderr and exit status 2."""
    try:
        return action()
    except (EvalsError, OSError) as exc:
        _fail(exc)


def _fmt(value: Any, digits: int = 1, scale: float = 100.0) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"{scale * number:.{digits}f}"


def _print_run_table(console: Any, run: Run) -> None:
    from rich.table import Table

    title = f"{run.name}: {run.model}" + (" (SIMULATED model server)" if run.simulated else "")
    table = Table(title=title)
    for column in ("task", "score", "95% CI", "published", "verdict", "mean tokens",
                   "cost (USD)"):
        table.add_column(column)
    summary = run.summary
    for r in summary.to_dict("records") if not summary.empty else []:
        task = str(r["task"]) + (f"  {r['subset']}={r['value']}" if r.get("subset") else "")
        verdict = r.get("verdict") if isinstance(r.get("verdict"), str) else ""
        table.add_row(task, _fmt(r.get("score")),
                      f"[{_fmt(r.get('ci_low'))}, {_fmt(r.get('ci_high'))}]",
                      _fmt(r.get("published"), 2, 1.0), verdict or "",
                      _fmt(r.get("mean_completion_tokens"), 0, 1.0),
                      _fmt(r.get("cost"), 4, 1.0))
    console.print(table)


@click.command(name="report", short_help="Summary tables, figures and report.html of runs.")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path),
              help="Folder for report.html and figures/ (default: the run folder; for "
              "several runs, report-<hash> beside them).")
def report(runs: tuple[Path, ...], out: Path | None) -> None:
    """Print the summary of each RUN folder and write report.html (with the figures as
    PNG and SVG). Several RUNs give one page comparing them, the first as the base."""
    from rich.console import Console

    from evals.api import load_run
    from evals.html_report import write_report

    loaded = _guard(lambda: [load_run(r) for r in runs])
    console = Console(highlight=False)
    for run in loaded:
        _print_run_table(console, run)
    page = _guard(lambda: write_report(loaded, out))
    console.print(f"Report: {page}")
    console.print(f"Figures (PNG and SVG): {page.parent / 'figures'}")


@click.command(name="compare", short_help="Compare two runs, paired by problem; gate CI.")
@click.argument("base", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--fail-on-drop", type=float, default=None, metavar="POINTS",
              help="Exit 1 when a task's score fell by more than POINTS (0-100) and its "
              "paired 95% interval excludes zero.")
@click.option("--format", "fmt", type=click.Choice(["text", "md"]), default="text",
              show_default=True, help="text for a terminal or log; md for a pull-request "
              "comment or $GITHUB_STEP_SUMMARY.")
def compare(base: Path, new: Path, fail_on_drop: float | None,
            fmt: Literal["text", "md"]) -> None:
    """Compare run NEW with run BASE, task by task, paired by problem and repeat: the
    difference with a bootstrap interval, the problems that flipped each way, and the
    settings that differ between the two manifests."""
    from evals.api import compare as compare_runs

    if fail_on_drop is not None and fail_on_drop < 0:
        _fail(ValueError(f"--fail-on-drop {fail_on_drop:g}: give a drop in points >= 0, "
                         "e.g. --fail-on-drop 2."))
    result = _guard(lambda: compare_runs(base, new))
    text = result.to_markdown(fail_on_drop) if fmt == "md" else result.to_text(fail_on_drop)
    click.echo(text, nl=False)
    if fail_on_drop is not None and result.dropped(fail_on_drop):
        raise click.exceptions.Exit(1)


@click.command(name="runs", short_help="The runs under results/ (or DIR) as one table.")
@click.argument("folder", required=False, default=Path("results"),
                type=click.Path(path_type=Path), metavar="[DIR]")
@click.option("--plot", is_flag=True, default=False,
              help="Also draw score over time per model and task (DIR/runs_history.png "
              "and .svg).")
def runs(folder: Path, plot: bool) -> None:
    """List the runs under DIR (default: results), a row per run and task: date, model,
    endpoint, tasks, n, score, interval, status, cost."""
    from rich.console import Console
    from rich.table import Table

    from evals.runs import list_runs

    table = _guard(lambda: list_runs(folder))
    console = Console(highlight=False)
    if table.empty:
        console.print(f"No runs under {folder}.")
        return
    out = Table(title=f"Runs under {folder}")
    for column in ("date", "run", "model", "endpoint", "task", "n", "score", "95% CI",
                   "status", "cost (USD)"):
        out.add_column(column)
    for r in table.itertuples():
        model = str(r.model) + (" (simulated)" if r.simulated else "")
        out.add_row(str(r.date or "-")[:19], str(r.run), model, str(r.endpoint or "-"),
                    str(r.task), str(r.n), _fmt(r.score),
                    f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]", str(r.status),
                    _fmt(r.cost, 4, 1.0))
    console.print(out)
    if plot:
        from evals.plots import plot_score_history, save_figure

        png, svg = _guard(lambda: save_figure(plot_score_history(table), folder,
                                              "runs_history"))
        console.print(f"Plot: {png} and {svg}")
